//! `CURRENT`: the file naming the live manifest (docs/format.md, "CURRENT").
//!
//! Exactly three lines, each ending in `\n`:
//!
//! ```text
//! LIGHTNING-DB CURRENT 1
//! MANIFEST-000007
//! checksum 1a2b3c4d
//! ```
//!
//! The checksum covers the bytes of the first two lines. `CURRENT` is only
//! ever replaced atomically (write `CURRENT.tmp`, fsync, rename, fsync the
//! directory), so a reader sees the old or the new content, never a mix.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use crate::coding::checksum;
use crate::error::{Error, Result};
use crate::filename::{
    current_file_name, manifest_base_name, parse_file_name, temp_file_name, FileKind,
};

/// Format version of `CURRENT` written and read by this build.
const CURRENT_VERSION: u32 = 1;

/// First line up to the version number.
const FIRST_LINE_PREFIX: &str = "LIGHTNING-DB CURRENT ";

/// Largest `CURRENT` accepted; a valid one is well below this.
const MAX_CURRENT_LEN: usize = 256;

/// The content of a `CURRENT` naming manifest `manifest_number`.
pub(crate) fn encode_current(manifest_number: u64) -> String {
    let body = format!(
        "{FIRST_LINE_PREFIX}{CURRENT_VERSION}\n{}\n",
        manifest_base_name(manifest_number)
    );
    let sum = checksum(body.as_bytes());
    format!("{body}checksum {sum:08x}\n")
}

/// Atomically makes `dir/CURRENT` name manifest `manifest_number`: writes
/// `CURRENT.tmp`, syncs it, renames it over `CURRENT` and syncs `dir`.
pub(crate) fn write_current(
    fs: &dyn crate::fs::FileSystem,
    dir: &Path,
    manifest_number: u64,
) -> Result<()> {
    let tmp = temp_file_name(dir, "CURRENT");
    let content = encode_current(manifest_number);
    let mut f = fs.create(&tmp)?;
    f.append(content.as_bytes())?;
    f.sync_data()?;
    drop(f);
    fs.rename(&tmp, &current_file_name(dir))?;
    fs.sync_dir(dir)
}

/// Reads `dir/CURRENT` and returns the number of the manifest it names.
/// A missing file is [`Error::Io`] (not found); anything not matching the
/// exact shape, or with a wrong checksum, is [`Error::Corruption`]; a first
/// line naming a newer version is [`Error::UnsupportedVersion`].
pub(crate) fn read_current(fs: &dyn crate::fs::FileSystem, dir: &Path) -> Result<u64> {
    let path = current_file_name(dir);
    let data = crate::fs::read_file_retrying(fs, &path)?;
    parse_current(&path, &data)
}

/// Parses the content of a `CURRENT` file read from `path`; see
/// [`read_current`].
pub(crate) fn parse_current(path: &Path, data: &[u8]) -> Result<u64> {
    let corrupt = |offset: usize, reason: &str| Error::corruption(path, offset as u64, reason);
    if data.len() > MAX_CURRENT_LEN {
        return Err(corrupt(0, "CURRENT is too long"));
    }
    let text =
        std::str::from_utf8(data).map_err(|e| corrupt(e.valid_up_to(), "CURRENT is not UTF-8"))?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(corrupt(data.len(), "CURRENT does not end with a newline"));
    };
    let lines: Vec<&str> = body.split('\n').collect();
    let [first, second, third] = lines.as_slice() else {
        return Err(corrupt(0, "CURRENT does not have exactly three lines"));
    };
    let second_at = first.len() + 1;
    let third_at = second_at + second.len() + 1;

    let version = first
        .strip_prefix(FIRST_LINE_PREFIX)
        .and_then(|v| {
            let n: u32 = v.parse().ok()?;
            (n.to_string() == v).then_some(n)
        })
        .ok_or_else(|| corrupt(0, "CURRENT has a bad first line"))?;

    let sum_hex = third
        .strip_prefix("checksum ")
        .filter(|h| h.len() == 8 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| corrupt(third_at, "CURRENT has a bad checksum line"))?;
    let stored = u32::from_str_radix(sum_hex, 16)
        .map_err(|_| corrupt(third_at, "CURRENT has a bad checksum line"))?;
    let covered = text.get(..third_at).unwrap_or_default();
    if checksum(covered.as_bytes()) != stored {
        return Err(corrupt(third_at, "CURRENT checksum mismatch"));
    }

    if version != CURRENT_VERSION {
        if version > CURRENT_VERSION {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: version,
                supported: CURRENT_VERSION,
            });
        }
        return Err(corrupt(0, "CURRENT has version 0"));
    }
    match parse_file_name(second) {
        Some(FileKind::Manifest(n)) => Ok(n),
        _ => Err(corrupt(second_at, "CURRENT does not name a manifest")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, PosixFs};

    #[test]
    fn write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let fs = PosixFs;
        for n in [1u64, 7, 1_234_567, u64::MAX] {
            write_current(&fs, dir.path(), n).unwrap();
            assert_eq!(read_current(&fs, dir.path()).unwrap(), n);
        }
        assert!(!fs.exists(&dir.path().join("CURRENT.tmp")).unwrap());
        let text = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
        assert!(
            text.starts_with("LIGHTNING-DB CURRENT 1\nMANIFEST-18446744073709551615\nchecksum ")
        );
        assert_eq!(encode_current(7).lines().nth(1), Some("MANIFEST-000007"));
    }

    #[test]
    fn missing_current_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_current(&PosixFs, dir.path()).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
    }

    fn with_checksum(body: &str) -> String {
        format!("{body}checksum {:08x}\n", checksum(body.as_bytes()))
    }

    #[test]
    fn malformed_current_is_corruption() {
        let p = Path::new("CURRENT");
        let good = encode_current(7);
        assert_eq!(parse_current(p, good.as_bytes()).unwrap(), 7);
        let bad: Vec<Vec<u8>> = vec![
            vec![],
            b"\n".to_vec(),
            good.trim_end().as_bytes().to_vec(), // no final newline
            format!("{good}\n").into_bytes(),    // extra empty line
            format!("{good}extra\n").into_bytes(), // fourth line
            good.replace("000007", "000008").into_bytes(), // checksum mismatch
            good.replace("checksum ", "checksum  ").into_bytes(),
            good.replace("checksum", "CHECKSUM").into_bytes(),
            good.to_uppercase().into_bytes(),
            good.replace('\n', "\r\n").into_bytes(),
            with_checksum("LIGHTNING-DB CURRENT 1\nMANIFEST-7\n").into_bytes(),
            with_checksum("LIGHTNING-DB CURRENT 1\n000007.log\n").into_bytes(),
            with_checksum("LIGHTNING-DB CURRENT 01\nMANIFEST-000007\n").into_bytes(),
            with_checksum("LIGHTNING-DB CURRENT 0\nMANIFEST-000007\n").into_bytes(),
            with_checksum("LEVELDB CURRENT 1\nMANIFEST-000007\n").into_bytes(),
            with_checksum("LIGHTNING-DB CURRENT 1\nMANIFEST-000007\n")
                .replace(
                    |c: char| c.is_ascii_hexdigit() && c.is_ascii_lowercase(),
                    "A",
                )
                .into_bytes(),
            vec![0xff, 0xfe, b'\n'],
            vec![b'a'; 1000],
        ];
        for b in bad {
            let e = parse_current(p, &b).unwrap_err();
            assert!(e.is_corruption(), "{:?}: {e}", String::from_utf8_lossy(&b));
        }
        // A newer version with a valid checksum.
        let newer = with_checksum("LIGHTNING-DB CURRENT 2\nMANIFEST-000007\n");
        let e = parse_current(p, newer.as_bytes()).unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedVersion { found: 2, .. }),
            "{e}"
        );
        // A flip of any bit is caught.
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.as_bytes().to_vec();
                b[i] ^= 1 << bit;
                assert!(parse_current(p, &b).is_err(), "byte {i} bit {bit}");
            }
        }
    }
}
