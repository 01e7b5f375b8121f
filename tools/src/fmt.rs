//! Rendering bytes, keys, sizes and problems.

use std::path::Path;

use lightning_db::inspect::{split_internal_key, ValueKind};
use lightning_db::Error;
use serde::Serialize;

/// Printable ASCII as itself, `'` and `\` backslash-escaped, every other
/// byte as `\xNN`.
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\'' => s.push_str("\\'"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Lower-case hex, no prefix.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for &c in b {
        s.push_str(&format!("{c:02x}"));
    }
    s
}

/// Parses hex digits (an optional `0x` prefix) into bytes.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if !t.len().is_multiple_of(2) {
        return Err(format!("{s:?}: odd number of hex digits"));
    }
    (0..t.len())
        .step_by(2)
        .map(|i| {
            t.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("{s:?}: not hex"))
        })
        .collect()
}

/// How bytes are shown: quoted escaped text or `0x` hex.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Hex instead of text.
    pub hex: bool,
    /// Values longer than this are cut (None: never).
    pub width: Option<usize>,
}

impl Style {
    /// `'escaped'` or `0xhex`.
    pub fn bytes(&self, b: &[u8]) -> String {
        if self.hex {
            format!("0x{}", hex(b))
        } else {
            format!("'{}'", escape(b))
        }
    }

    /// Like [`Style::bytes`], cut at `width` bytes with a `…(N bytes)` marker.
    pub fn value(&self, b: &[u8]) -> String {
        match self.width {
            Some(w) if b.len() > w => {
                format!("{}…({} bytes)", self.bytes(&b[..w]), b.len())
            }
            _ => self.bytes(b),
        }
    }

    /// An internal key: `'user' @ seq : put|delete`, the user key cut at
    /// `max` bytes when given; hex of the whole key if it does not parse.
    pub fn ikey(&self, ikey: &[u8], max: Option<usize>) -> String {
        match split_internal_key(ikey) {
            Some((uk, seq, kind)) => {
                let shown = match max {
                    Some(m) if uk.len() > m => {
                        format!("{}…({} bytes)", self.bytes(&uk[..m]), uk.len())
                    }
                    _ => self.bytes(uk),
                };
                format!("{shown} @ {} : {}", seq_text(seq), kind_name(kind))
            }
            None => format!("<invalid internal key 0x{}>", hex(ikey)),
        }
    }
}

/// The largest sequence number (2^56 - 1): index separators carry it.
pub const MAX_SEQUENCE: u64 = (1 << 56) - 1;

/// A sequence number, `max` for [`MAX_SEQUENCE`].
pub fn seq_text(seq: u64) -> String {
    if seq == MAX_SEQUENCE {
        "max".into()
    } else {
        seq.to_string()
    }
}

/// `put`, `delete`, `blob` (a put whose value is in a blob file) or
/// `merge` (a merge operand).
pub fn kind_name(k: ValueKind) -> &'static str {
    match k {
        ValueKind::Value => "put",
        ValueKind::Delete => "delete",
        ValueKind::BlobIndex => "blob",
        ValueKind::Merge => "merge",
        ValueKind::TimedValue => "put_timed",
        _ => "unknown",
    }
}

/// Bytes shown in JSON: text (escaped like the text output, without
/// quotes) and hex, possibly cut.
#[derive(Debug, Clone, Serialize)]
pub struct JsonBytes {
    /// Escaped text (printable ASCII as is, `\xNN` otherwise).
    pub text: String,
    /// Lower-case hex.
    pub hex: String,
    /// Full length in bytes.
    pub size: usize,
    /// True when `text` and `hex` hold only the first bytes.
    pub truncated: bool,
}

impl JsonBytes {
    /// All of `b`.
    pub fn full(b: &[u8]) -> Self {
        Self::cut(b, None)
    }

    /// The first `width` bytes of `b` at most.
    pub fn cut(b: &[u8], width: Option<usize>) -> Self {
        let shown = match width {
            Some(w) if b.len() > w => &b[..w],
            _ => b,
        };
        JsonBytes {
            text: escape(shown),
            hex: hex(shown),
            size: b.len(),
            truncated: shown.len() < b.len(),
        }
    }
}

/// An internal key in JSON.
#[derive(Debug, Clone, Serialize)]
pub struct JsonIKey {
    /// The user key (cut when a limit applies).
    pub key: JsonBytes,
    /// Sequence number (null when the key does not parse).
    pub seq: Option<u64>,
    /// `put` or `delete` (null when the key does not parse).
    pub kind: Option<&'static str>,
}

impl JsonIKey {
    /// Decodes `ikey`; the user key cut at `max` bytes when given.
    pub fn new(ikey: &[u8], max: Option<usize>) -> Self {
        match split_internal_key(ikey) {
            Some((uk, seq, kind)) => JsonIKey {
                key: JsonBytes::cut(uk, max),
                seq: Some(seq),
                kind: Some(kind_name(kind)),
            },
            None => JsonIKey {
                key: JsonBytes::cut(ikey, max),
                seq: None,
                kind: None,
            },
        }
    }
}

/// `1.5 KiB`-style size.
pub use lightning_compaction::config::units::human_size as human;

/// One thing found wrong. Every problem makes the exit code 1.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The file (or directory) concerned.
    pub file: String,
    /// Byte offset in the file, when known.
    pub offset: Option<u64>,
    /// `corruption`, `io`, `unsupported_version`, `invalid_argument`,
    /// `verify` (a check of `verify` failed) or `other`.
    pub kind: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem from an engine error about `path`.
    pub fn from_error(path: &Path, e: &Error) -> Problem {
        match e {
            Error::Corruption {
                file,
                offset,
                reason,
            } => Problem {
                file: file.display().to_string(),
                offset: Some(*offset),
                kind: "corruption",
                message: reason.clone(),
            },
            Error::Io { path: p, source } => Problem {
                file: p.display().to_string(),
                offset: None,
                kind: "io",
                message: source.to_string(),
            },
            Error::UnsupportedVersion { file, .. } => Problem {
                file: file.display().to_string(),
                offset: None,
                kind: "unsupported_version",
                message: e.to_string(),
            },
            Error::InvalidArgument(m) => Problem {
                file: path.display().to_string(),
                offset: None,
                kind: "invalid_argument",
                message: m.clone(),
            },
            other => Problem {
                file: path.display().to_string(),
                offset: None,
                kind: "other",
                message: other.to_string(),
            },
        }
    }

    /// A failed check of `verify`.
    pub fn verify(path: &Path, offset: Option<u64>, message: impl Into<String>) -> Problem {
        Problem {
            file: path.display().to_string(),
            offset,
            kind: "verify",
            message: message.into(),
        }
    }

    /// A problem without an offset.
    pub fn other(path: &Path, kind: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            file: path.display().to_string(),
            offset: None,
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.message.starts_with(&self.file) {
            write!(f, "{}: ", self.file)?;
        }
        match (self.kind, self.offset) {
            ("corruption", Some(o)) => write!(f, "corruption at offset {o}: ")?,
            ("verify", Some(o)) => write!(f, "verify failed at offset {o}: ")?,
            ("verify", None) => write!(f, "verify failed: ")?,
            (k, Some(o)) => write!(f, "{k} error at offset {o}: ")?,
            ("unsupported_version" | "invalid_argument", None) => {}
            (k, None) => write!(f, "{k} error: ")?,
        }
        write!(f, "{}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape(b"ab c"), "ab c");
        assert_eq!(escape(b"a'\\\x00\xff"), "a\\'\\\\\\x00\\xff");
        assert_eq!(parse_hex("0x6b65").unwrap(), b"ke");
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        let s = Style {
            hex: false,
            width: Some(3),
        };
        assert_eq!(s.value(b"abcdef"), "'abc'…(6 bytes)");
        assert_eq!(s.value(b"abc"), "'abc'");
        let h = Style {
            hex: true,
            width: None,
        };
        assert_eq!(h.value(b"ke"), "0x6b65");
    }

    #[test]
    fn sizes() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
