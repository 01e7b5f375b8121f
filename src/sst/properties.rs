//! The properties block: statistics of one SST file.
//!
//! Encoding: fields `tag: varint, value: lp-bytes` with strictly increasing
//! tags; integer fields hold exactly one varint inside their lp-bytes.
//! Tags 1–13 are required; unknown tags are skipped (written by a newer
//! writer of the same major version).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::coding::{put_length_prefixed, put_varint64, Cursor, DecodeError};

/// Statistics of one SST file, stored in its properties block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableProperties {
    /// Number of entries (values and tombstones).
    pub num_entries: u64,
    /// Number of tombstones.
    pub num_deletions: u64,
    /// Smallest internal key of the file.
    pub smallest_key: Vec<u8>,
    /// Largest internal key of the file.
    pub largest_key: Vec<u8>,
    /// Smallest sequence number of any entry.
    pub smallest_seq: u64,
    /// Largest sequence number of any entry.
    pub largest_seq: u64,
    /// Sum of the internal key lengths.
    pub raw_key_size: u64,
    /// Sum of the value lengths.
    pub raw_value_size: u64,
    /// Stored bytes of the data blocks, trailers included.
    pub data_size: u64,
    /// Number of data blocks.
    pub num_data_blocks: u64,
    /// Stored bytes of the index pages, trailers included.
    pub index_size: u64,
    /// Number of index pages.
    pub num_index_pages: u64,
    /// Levels of the index B+Tree (1 when the root is a leaf page).
    pub index_depth: u64,
    /// Stored bytes of the filter block with its trailer (0: no filter).
    pub filter_size: u64,
    /// Bloom bits per key the filter was built with (0: no filter).
    pub bloom_bits_per_key: u64,
    /// Compression the writer used: `"none"` or `"zstd:LEVEL"`.
    pub compression: String,
    /// Creation time, seconds since the Unix epoch.
    pub creation_time: u64,
    /// Range tombstones stored: (fragment, sequence number) pairs of the
    /// range-deletion block (SST format 4; 0 without one).
    pub num_range_deletions: u64,
    /// Offset of the range-deletion block (0 without one).
    pub range_deletions_offset: u64,
    /// Stored size of the range-deletion block, without its trailer.
    pub range_deletions_size: u64,
    /// Name of the prefix extractor whose prefixes the filter also holds
    /// (empty: none).
    pub prefix_extractor: String,
}

const TAG_COMPRESSION: u64 = 16;
const TAG_PREFIX_EXTRACTOR: u64 = 21;
const NUM_REQUIRED: u64 = 13;

impl TableProperties {
    /// Appends the encoded properties block contents.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        let ints: [(u64, u64); 2] = [(1, self.num_entries), (2, self.num_deletions)];
        for (tag, v) in ints {
            put_int(out, tag, v);
        }
        put_varint64(out, 3);
        put_length_prefixed(out, &self.smallest_key);
        put_varint64(out, 4);
        put_length_prefixed(out, &self.largest_key);
        let ints: [(u64, u64); 11] = [
            (5, self.smallest_seq),
            (6, self.largest_seq),
            (7, self.raw_key_size),
            (8, self.raw_value_size),
            (9, self.data_size),
            (10, self.num_data_blocks),
            (11, self.index_size),
            (12, self.num_index_pages),
            (13, self.index_depth),
            (14, self.filter_size),
            (15, self.bloom_bits_per_key),
        ];
        for (tag, v) in ints {
            put_int(out, tag, v);
        }
        put_varint64(out, TAG_COMPRESSION);
        put_length_prefixed(out, self.compression.as_bytes());
        put_int(out, 17, self.creation_time);
        if self.num_range_deletions > 0 {
            put_int(out, 18, self.num_range_deletions);
            put_int(out, 19, self.range_deletions_offset);
            put_int(out, 20, self.range_deletions_size);
        }
        if !self.prefix_extractor.is_empty() {
            put_varint64(out, TAG_PREFIX_EXTRACTOR);
            put_length_prefixed(out, self.prefix_extractor.as_bytes());
        }
    }

    /// Decodes properties block contents. Errors carry the offset inside
    /// `buf` of the failing field.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut p = TableProperties::default();
        let mut c = Cursor::new(buf);
        let mut last_tag = 0u64;
        let mut seen_required = 0u64;
        while !c.is_empty() {
            let at = c.position();
            let tag = c.varint64("bad property tag")?;
            if tag <= last_tag {
                return Err(DecodeError {
                    offset: at,
                    reason: "property tags not strictly increasing",
                });
            }
            last_tag = tag;
            let vat = c.position();
            let value = c.length_prefixed("bad property value length")?;
            let int = || -> Result<u64, DecodeError> {
                let mut vc = Cursor::new(value);
                let v = vc
                    .varint64("bad integer property")
                    .map_err(|e| DecodeError {
                        offset: vat,
                        reason: e.reason,
                    })?;
                if !vc.is_empty() {
                    return Err(DecodeError {
                        offset: vat,
                        reason: "integer property has trailing bytes",
                    });
                }
                Ok(v)
            };
            if tag <= NUM_REQUIRED {
                seen_required += 1;
            }
            match tag {
                1 => p.num_entries = int()?,
                2 => p.num_deletions = int()?,
                3 => p.smallest_key = value.to_vec(),
                4 => p.largest_key = value.to_vec(),
                5 => p.smallest_seq = int()?,
                6 => p.largest_seq = int()?,
                7 => p.raw_key_size = int()?,
                8 => p.raw_value_size = int()?,
                9 => p.data_size = int()?,
                10 => p.num_data_blocks = int()?,
                11 => p.index_size = int()?,
                12 => p.num_index_pages = int()?,
                13 => p.index_depth = int()?,
                14 => p.filter_size = int()?,
                15 => p.bloom_bits_per_key = int()?,
                TAG_COMPRESSION => {
                    p.compression = std::str::from_utf8(value)
                        .map_err(|_| DecodeError {
                            offset: vat,
                            reason: "compression property is not UTF-8",
                        })?
                        .to_owned()
                }
                17 => p.creation_time = int()?,
                18 => p.num_range_deletions = int()?,
                19 => p.range_deletions_offset = int()?,
                20 => p.range_deletions_size = int()?,
                TAG_PREFIX_EXTRACTOR => {
                    p.prefix_extractor = std::str::from_utf8(value)
                        .map_err(|_| DecodeError {
                            offset: vat,
                            reason: "prefix extractor property is not UTF-8",
                        })?
                        .to_owned()
                }
                _ => {}
            }
        }
        if seen_required != NUM_REQUIRED {
            return Err(DecodeError {
                offset: buf.len(),
                reason: "properties block lacks a required property (tags 1-13)",
            });
        }
        Ok(p)
    }
}

fn put_int(out: &mut Vec<u8>, tag: u64, v: u64) {
    put_varint64(out, tag);
    let mut tmp = Vec::with_capacity(10);
    put_varint64(&mut tmp, v);
    put_length_prefixed(out, &tmp);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> TableProperties {
        TableProperties {
            num_entries: 10,
            num_deletions: 2,
            smallest_key: b"a\x01\0\0\0\0\0\0\0".to_vec(),
            largest_key: vec![],
            smallest_seq: 1,
            largest_seq: u64::MAX >> 8,
            raw_key_size: 100,
            raw_value_size: 1 << 40,
            data_size: 4096,
            num_data_blocks: 3,
            index_size: 50,
            num_index_pages: 1,
            index_depth: 1,
            filter_size: 20,
            bloom_bits_per_key: 10,
            compression: "zstd:3".into(),
            creation_time: 1_700_000_000,
            num_range_deletions: 3,
            range_deletions_offset: 9000,
            range_deletions_size: 77,
            prefix_extractor: "fixed:8".into(),
        }
    }

    #[test]
    fn round_trip() {
        let p = sample();
        let mut b = Vec::new();
        p.encode_to(&mut b);
        assert_eq!(TableProperties::decode(&b).unwrap(), p);
    }

    #[test]
    fn skips_unknown_tags_and_rejects_bad_input() {
        let p = sample();
        let mut b = Vec::new();
        p.encode_to(&mut b);
        let mut ext = b.clone();
        put_varint64(&mut ext, 99);
        put_length_prefixed(&mut ext, b"future");
        assert_eq!(TableProperties::decode(&ext).unwrap(), p);
        // Repeated tag.
        let mut rep = b.clone();
        put_int(&mut rep, 17, 1);
        assert!(TableProperties::decode(&rep).is_err());
        // Missing required tags.
        let mut only = Vec::new();
        put_int(&mut only, 1, 5);
        assert!(TableProperties::decode(&only).is_err());
        // Every truncation fails cleanly.
        // Truncations fail, or (cut between optional fields) keep every
        // required field.
        for n in 0..b.len() {
            if let Ok(q) = TableProperties::decode(&b[..n]) {
                assert_eq!(q.index_depth, p.index_depth);
                assert_eq!(q.largest_key, p.largest_key);
                assert_eq!(q.num_entries, p.num_entries);
            }
        }
        // Integer with trailing bytes.
        let mut bad = Vec::new();
        put_varint64(&mut bad, 1);
        put_length_prefixed(&mut bad, &[5, 0]);
        assert!(TableProperties::decode(&bad).is_err());
    }
}
