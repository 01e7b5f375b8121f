//! A backup's metadata file, `meta/<id>` (docs/format.md, "Backup
//! metadata"): what the backup holds, each file with its size and
//! checksum, the whole protected by a checksum line.
//!
//! ```text
//! lightning-backup 1
//! id <decimal>
//! created_ms <decimal>
//! file <stored path> <size> <xxh3-64 hex> <name in the database>
//! ...
//! checksum <xxh3-64 hex of every byte before this line>
//! ```
//!
//! Lines end with `\n`; fields are separated by one space; stored paths
//! and names hold no space or newline (they are engine file names). The
//! reader refuses anything else with [`Error::Corruption`] naming the file
//! and the byte offset of the bad line.

use std::path::Path;

use crate::error::{Error, Result};

/// The format version this build writes and reads.
pub(crate) const META_VERSION: u32 = 1;

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaFile {
    /// Path under the backup directory (`shared/...` or `private/...`).
    pub(crate) stored: String,
    /// Bytes.
    pub(crate) size: u64,
    /// xxh3-64 of the contents.
    pub(crate) checksum: u64,
    /// The file's name in a restored database.
    pub(crate) name: String,
}

/// A backup's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) id: u64,
    pub(crate) created_ms: u64,
    pub(crate) files: Vec<MetaFile>,
}

/// True for a name that can be a field: non-empty, no space, no control
/// character.
fn is_field(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c == ' ' || c.is_control())
}

impl Meta {
    /// The file's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut s = format!(
            "lightning-backup {META_VERSION}\nid {}\ncreated_ms {}\n",
            self.id, self.created_ms
        );
        for f in &self.files {
            debug_assert!(is_field(&f.stored) && is_field(&f.name));
            s.push_str(&format!(
                "file {} {} {:016x} {}\n",
                f.stored, f.size, f.checksum, f.name
            ));
        }
        let sum = xxhash_rust::xxh3::xxh3_64(s.as_bytes());
        s.push_str(&format!("checksum {sum:016x}\n"));
        s.into_bytes()
    }

    /// Parses and checks `data`, the content of `path`.
    pub(crate) fn decode(path: &Path, data: &[u8]) -> Result<Meta> {
        let bad =
            |offset: usize, why: &str| Error::corruption(path, offset as u64, why.to_string());
        let text = std::str::from_utf8(data).map_err(|e| bad(e.valid_up_to(), "not UTF-8"))?;
        if !text.ends_with('\n') {
            return Err(bad(data.len(), "truncated: no final newline"));
        }
        let mut offset = 0usize;
        let mut lines = Vec::new();
        for line in text.split_terminator('\n') {
            lines.push((offset, line));
            offset += line.len() + 1;
        }
        let Some(&(sum_at, sum_line)) = lines.last() else {
            return Err(bad(0, "empty"));
        };
        let want = sum_line
            .strip_prefix("checksum ")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or_else(|| bad(sum_at, "last line is not `checksum <hex>`"))?;
        let got = xxhash_rust::xxh3::xxh3_64(data.get(..sum_at).unwrap_or_default());
        if got != want {
            return Err(bad(sum_at, "checksum mismatch: the metadata is damaged"));
        }
        let body = lines.get(..lines.len() - 1).unwrap_or_default();
        let mut it = body.iter();
        let mut field = |name: &str| -> Result<u64> {
            let &(at, line) = it
                .next()
                .ok_or_else(|| bad(sum_at, "missing header line"))?;
            line.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(at, &format!("expected `{name} <number>`")))
        };
        let version = field("lightning-backup")?;
        if version != u64::from(META_VERSION) {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: u32::try_from(version).unwrap_or(u32::MAX),
                supported: META_VERSION,
            });
        }
        let id = field("id")?;
        let created_ms = field("created_ms")?;
        let mut files = Vec::new();
        for &(at, line) in body.iter().skip(3) {
            let parts: Vec<&str> = line.split(' ').collect();
            let [tag, stored, size, sum, name] = parts[..] else {
                return Err(bad(at, "expected `file <path> <size> <checksum> <name>`"));
            };
            let (Ok(size), Ok(checksum)) = (size.parse(), u64::from_str_radix(sum, 16)) else {
                return Err(bad(at, "bad size or checksum"));
            };
            if tag != "file" || !is_field(stored) || !is_field(name) || stored.contains("..") {
                return Err(bad(at, "bad file line"));
            }
            files.push(MetaFile {
                stored: stored.to_string(),
                size,
                checksum,
                name: name.to_string(),
            });
        }
        Ok(Meta {
            id,
            created_ms,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Meta {
        Meta {
            id: 3,
            created_ms: 1_700_000_000_000,
            files: vec![
                MetaFile {
                    stored: "shared/000012.sst_00000000000000ff_4096".into(),
                    size: 4096,
                    checksum: 0xff,
                    name: "000012.sst".into(),
                },
                MetaFile {
                    stored: "private/3/CURRENT".into(),
                    size: 16,
                    checksum: 7,
                    name: "CURRENT".into(),
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_every_damage_is_refused() {
        let m = sample();
        let bytes = m.encode();
        let p = Path::new("meta/3");
        assert_eq!(Meta::decode(p, &bytes).unwrap(), m);
        // Every single-byte change and every truncation is refused, never
        // a panic and never a different result.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(Meta::decode(p, &b).is_err(), "flip at {i} accepted");
            assert!(Meta::decode(p, &bytes[..i]).is_err(), "cut at {i} accepted");
        }
    }

    #[test]
    fn a_newer_version_is_unsupported_not_corrupt() {
        let text = String::from_utf8(sample().encode()).unwrap();
        let body = text.replacen("lightning-backup 1", "lightning-backup 2", 1);
        let body = &body[..body.rfind("checksum ").unwrap()];
        let sum = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
        let again = format!("{body}checksum {sum:016x}\n");
        let e = Meta::decode(Path::new("m"), again.as_bytes()).unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e}");
    }
}
