//! Constants and small encodings of the log framing: block and fragment
//! header sizes, fragment types, and the header record that starts every
//! log file.
//!
//! Fragment header (7 bytes): `checksum: u32` over `type ‖ payload`,
//! `length: u16`, `type: u8`. Header record payload (20 bytes): magic (8),
//! format version `u32`, file number `u64`. The version is per kind of log
//! ([`LogKind::format_version`]).

use crate::coding::checksum_parts;

/// Size of a log block. Fragments never cross a block boundary.
pub(crate) const BLOCK_SIZE: usize = 32 * 1024;

/// Bytes of a fragment header: checksum (4), length (2), type (1).
pub(crate) const HEADER_LEN: usize = 7;

/// Largest payload of one fragment (a whole block minus its header).
pub(crate) const MAX_FRAGMENT_PAYLOAD: usize = BLOCK_SIZE - HEADER_LEN;

/// Bytes of the header record's payload: magic, version, file number.
pub(crate) const FILE_HEADER_PAYLOAD_LEN: usize = 8 + 4 + 8;

/// Bytes of the whole header record on disk (one `FULL` fragment at offset 0).
pub(crate) const FILE_HEADER_LEN: usize = HEADER_LEN + FILE_HEADER_PAYLOAD_LEN;

/// Type byte of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FragmentType {
    /// A whole record in one fragment.
    Full = 1,
    /// The first fragment of a record split over several.
    First = 2,
    /// A fragment between `First` and `Last`.
    Middle = 3,
    /// The last fragment of a split record.
    Last = 4,
}

impl FragmentType {
    /// Decodes a type byte; `None` for unknown types (0 is what zero-filled
    /// space looks like).
    pub(crate) fn from_u8(b: u8) -> Option<FragmentType> {
        match b {
            1 => Some(FragmentType::Full),
            2 => Some(FragmentType::First),
            3 => Some(FragmentType::Middle),
            4 => Some(FragmentType::Last),
            _ => None,
        }
    }
}

/// Which kind of log a file is; decides the magic of its header record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogKind {
    /// A write-ahead log (`NNNNNN.log`) holding write batches.
    Wal,
    /// A manifest (`MANIFEST-NNNNNN`) holding version edits.
    Manifest,
}

impl LogKind {
    /// The 8-byte magic at the start of the header record's payload.
    pub(crate) fn magic(self) -> &'static [u8; 8] {
        match self {
            LogKind::Wal => b"LDB-WAL\0",
            LogKind::Manifest => b"LDB-MANI",
        }
    }

    /// The highest format version this build reads for this kind of log,
    /// and what [`crate::log::LogWriter::new`] writes. WAL 2: the write
    /// batch header is two varints (version 1, still read: fixed 8 + 4
    /// bytes); WAL 3: range deletions (kind 3); WAL 4: operations in a
    /// keyspace (kinds 4-6, [`crate::batch::KEYSPACE_WAL_VERSION`]); WAL 5:
    /// merges (kinds 7, 8, [`crate::batch::MERGE_WAL_VERSION`]); WAL 6:
    /// timed puts (kinds 9, 10, [`crate::batch::TTL_WAL_VERSION`]); WAL 7:
    /// blob references (kinds 11, 12, [`crate::batch::BLOB_WAL_VERSION`]).
    /// Manifest 2: blob file tags; manifest 3: keyspace tags (a manifest
    /// is written in the oldest version that holds its edits, see
    /// `VersionSet::start_manifest`).
    pub(crate) fn format_version(self) -> u32 {
        match self {
            LogKind::Wal => crate::batch::BLOB_WAL_VERSION,
            LogKind::Manifest => crate::version::edit::KEYSPACE_MANIFEST_VERSION,
        }
    }

    /// A name for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LogKind::Wal => "write-ahead log",
            LogKind::Manifest => "manifest",
        }
    }
}

/// The checksum stored in a fragment header.
#[inline]
pub(crate) fn fragment_checksum(ty: u8, payload: &[u8]) -> u32 {
    checksum_parts(&[&[ty], payload])
}

/// Encodes a fragment header.
#[inline]
pub(crate) fn encode_fragment_header(ty: FragmentType, payload: &[u8]) -> [u8; HEADER_LEN] {
    debug_assert!(payload.len() <= MAX_FRAGMENT_PAYLOAD);
    let mut h = [0u8; HEADER_LEN];
    let sum = fragment_checksum(ty as u8, payload).to_le_bytes();
    let len = (payload.len() as u16).to_le_bytes();
    h[..4].copy_from_slice(&sum);
    h[4..6].copy_from_slice(&len);
    h[6] = ty as u8;
    h
}

/// The payload of the header record of a log of `kind` numbered
/// `file_number`, in format `version`.
pub(crate) fn encode_file_header_payload(
    kind: LogKind,
    file_number: u64,
    version: u32,
) -> [u8; FILE_HEADER_PAYLOAD_LEN] {
    let mut p = [0u8; FILE_HEADER_PAYLOAD_LEN];
    p[..8].copy_from_slice(kind.magic());
    p[8..12].copy_from_slice(&version.to_le_bytes());
    p[12..20].copy_from_slice(&file_number.to_le_bytes());
    p
}

/// The exact bytes a writer of format `version` puts at the start of a log
/// of `kind` numbered `file_number`: one `FULL` fragment holding the
/// header payload.
pub(crate) fn encode_file_header(
    kind: LogKind,
    file_number: u64,
    version: u32,
) -> [u8; FILE_HEADER_LEN] {
    let payload = encode_file_header_payload(kind, file_number, version);
    let header = encode_fragment_header(FragmentType::Full, &payload);
    let mut out = [0u8; FILE_HEADER_LEN];
    out[..HEADER_LEN].copy_from_slice(&header);
    out[HEADER_LEN..].copy_from_slice(&payload);
    out
}
