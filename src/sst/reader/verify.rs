//! [`Table::verify`]: a walk of the whole file that checks everything.

use super::*;

/// What [`crate::inspect::SstFile::verify`] walked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries in data blocks.
    pub num_entries: u64,
    /// Tombstones in data blocks.
    pub num_deletions: u64,
    /// Data blocks.
    pub num_data_blocks: u64,
    /// Index pages, root included.
    pub num_index_pages: u64,
    /// Stored bytes of data blocks with trailers.
    pub data_size: u64,
    /// Stored bytes of index pages with trailers.
    pub index_size: u64,
    /// Sum of internal key lengths.
    pub raw_key_size: u64,
    /// Sum of value lengths.
    pub raw_value_size: u64,
}

impl Table {
    /// Walks every index page and data block: verifies every checksum and
    /// decoding, that keys are strictly increasing within and across
    /// blocks, the separator invariant (every key of child `i` is `<= s_i`
    /// and `> s_{i-1}`, a page's last separator equals its entry in the
    /// parent), that the filter knows every user key, and that the counts,
    /// sizes, key range and sequence range in the properties match. Returns
    /// the first problem as `Error::Corruption`.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut v = Verifier {
            t: self,
            r: VerifyReport::default(),
            first_key: None,
            last_key: Vec::new(),
            smallest_seq: u64::MAX,
            largest_seq: 0,
        };
        v.r.num_index_pages = 1;
        v.r.index_size = self.footer.index_root.size + BLOCK_TRAILER_LEN as u64;
        v.page(self.root.clone(), self.footer.index_depth, None, None)?;
        let p = &self.props;
        let r = &v.r;
        let checks: [(&str, u64, u64); 10] = [
            ("num_entries", p.num_entries, r.num_entries),
            ("num_deletions", p.num_deletions, r.num_deletions),
            ("num_data_blocks", p.num_data_blocks, r.num_data_blocks),
            ("num_index_pages", p.num_index_pages, r.num_index_pages),
            ("data_size", p.data_size, r.data_size),
            ("index_size", p.index_size, r.index_size),
            ("raw_key_size", p.raw_key_size, r.raw_key_size),
            ("raw_value_size", p.raw_value_size, r.raw_value_size),
            ("smallest_seq", p.smallest_seq, v.smallest_seq),
            ("largest_seq", p.largest_seq, v.largest_seq),
        ];
        let perr =
            |reason: String| Error::corruption(&self.path, self.footer.properties.offset, reason);
        for (name, said, found) in checks {
            if said != found {
                return Err(perr(format!(
                    "properties say {name} = {said}, the blocks hold {found}"
                )));
            }
        }
        if v.first_key.as_deref() != Some(&p.smallest_key[..]) || v.last_key != p.largest_key {
            return Err(perr("properties key range differs from the blocks".into()));
        }
        Ok(v.r)
    }
}

struct Verifier<'a> {
    t: &'a Table,
    r: VerifyReport,
    first_key: Option<Vec<u8>>,
    last_key: Vec<u8>,
    smallest_seq: u64,
    largest_seq: u64,
}

impl Verifier<'_> {
    fn err(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::corruption(&self.t.path, offset, reason)
    }

    /// Checks the page `block` at `level` whose keys must lie in
    /// `(lower, upper]`, with its last key equal to `upper` when given.
    fn page(
        &mut self,
        block: Block,
        level: u32,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Result<()> {
        let at = block.error_offset(&DecodeError {
            offset: 0,
            reason: "",
        });
        let mut it = BlockIter::new(block, Vec::new());
        it.seek_to_first();
        let mut prev: Option<Vec<u8>> = lower.map(<[u8]>::to_vec);
        let mut n = 0;
        while it.valid() {
            let sep = it.key().to_vec();
            if let Some(p) = &prev {
                if compare_internal(p, &sep) != Ordering::Less {
                    return Err(self.err(at, "index separators out of order"));
                }
            }
            if let Some(u) = upper {
                if compare_internal(&sep, u) == Ordering::Greater {
                    return Err(self.err(at, "index separator above its parent's separator"));
                }
            }
            let h = self.t.child_handle(&it)?;
            if level > 1 {
                let child = self.t.read_block(h, "index page", Access::Scan)?;
                self.r.num_index_pages += 1;
                self.r.index_size += h.size + BLOCK_TRAILER_LEN as u64;
                self.page(child, level - 1, prev.as_deref(), Some(&sep))?;
            } else {
                let child = self.t.read_block(h, "data block", Access::Scan)?;
                self.r.num_data_blocks += 1;
                self.r.data_size += h.size + BLOCK_TRAILER_LEN as u64;
                self.data_block(child, h, prev.as_deref(), &sep)?;
            }
            prev = Some(sep);
            n += 1;
            it.next();
        }
        if let Some(e) = it.error() {
            return Err(self.t.block_error(it.block(), e, "index page"));
        }
        if n == 0 {
            return Err(self.err(at, "empty index page"));
        }
        if let (Some(u), Some(p)) = (upper, &prev) {
            if u != &p[..] {
                return Err(self.err(at, "page's last separator differs from its parent's entry"));
            }
        }
        Ok(())
    }

    fn data_block(
        &mut self,
        block: Block,
        h: BlockHandle,
        lower: Option<&[u8]>,
        upper: &[u8],
    ) -> Result<()> {
        let mut it = BlockIter::new(block, Vec::new());
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            let k = it.key();
            let ordered =
                self.first_key.is_none() || compare_internal(&self.last_key, k) == Ordering::Less;
            if !ordered {
                return Err(self.err(h.offset, "data block keys out of order"));
            }
            if lower.is_some_and(|l| compare_internal(k, l) != Ordering::Greater)
                || compare_internal(k, upper) == Ordering::Greater
            {
                return Err(self.err(h.offset, "data block key outside its index separators"));
            }
            let Some(p) = parse_internal_key(k) else {
                return Err(self.err(h.offset, "invalid internal key"));
            };
            if (self.first_key.is_none() || user_key(&self.last_key) != p.user_key)
                && !self.t.may_contain(p.user_key)
            {
                return Err(self.err(
                    self.t.footer.filter.offset,
                    "filter misses a key of the file",
                ));
            }
            self.r.num_entries += 1;
            if p.kind == ValueKind::Delete {
                self.r.num_deletions += 1;
            }
            self.r.raw_key_size += k.len() as u64;
            self.r.raw_value_size += it.value().len() as u64;
            self.smallest_seq = self.smallest_seq.min(p.seq);
            self.largest_seq = self.largest_seq.max(p.seq);
            if self.first_key.is_none() {
                self.first_key = Some(k.to_vec());
            }
            self.last_key.clear();
            self.last_key.extend_from_slice(k);
            n += 1;
            it.next();
        }
        if let Some(e) = it.error() {
            return Err(self.t.block_error(it.block(), e, "data block"));
        }
        if n == 0 {
            return Err(self.err(h.offset, "empty data block"));
        }
        Ok(())
    }
}
