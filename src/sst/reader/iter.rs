//! [`TableIterator`]: a bidirectional cursor over a table's entries.

use super::*;

/// Where to stand in a freshly loaded block.
#[derive(Clone, Copy)]
enum Pos<'a> {
    First,
    Last,
    Seek(&'a [u8]),
}

/// A bidirectional cursor over all entries of one table, in internal-key
/// order. Holds a stack of index-page cursors (root first) and one
/// data-block cursor; key and value borrow from the current block (no copy
/// for uncompressed blocks except the reused key buffer).
pub struct TableIterator {
    table: Arc<Table>,
    /// Release pages behind a forward pass ([`Table::iter_releasing`]).
    pub(super) release_behind: bool,
    /// Pages below this offset were released.
    released_upto: u64,
    /// `pages[0]` is the root; `pages[depth - 1]` a leaf page.
    pages: Vec<BlockIter>,
    data: BlockIter,
    err: Option<Error>,
}

fn empty_block() -> Block {
    static EMPTY: [u8; 8] = [0, 0, 0, 0, 1, 0, 0, 0];
    match Block::new(Bytes::from_static(&EMPTY), 0, false) {
        Ok(b) => b,
        Err(_) => unreachable!("the empty block is well formed"),
    }
}

impl TableIterator {
    pub(super) fn new(table: Arc<Table>) -> Self {
        let depth = table.footer.index_depth as usize;
        let pages = (0..depth)
            .map(|_| BlockIter::new(empty_block(), take_key_buf()))
            .collect();
        TableIterator {
            table,
            release_behind: false,
            released_upto: 0,
            pages,
            data: BlockIter::new(empty_block(), take_key_buf()),
            err: None,
        }
    }

    fn depth(&self) -> usize {
        self.pages.len()
    }

    fn level_mut(&mut self, l: usize) -> Option<&mut BlockIter> {
        if l == self.pages.len() {
            Some(&mut self.data)
        } else {
            self.pages.get_mut(l)
        }
    }

    fn fail(&mut self, e: Error) {
        self.err = Some(e);
        self.data.reset(empty_block());
    }

    /// Loads the block of level `l` (0: root; `depth`: data) from the
    /// current entry of level `l - 1`.
    fn load(&mut self, l: usize) -> bool {
        let block = if l == 0 {
            Ok(self.table.root.clone())
        } else {
            let depth = self.depth();
            let what = if l == depth {
                "data block"
            } else {
                "index page"
            };
            match self.pages.get(l - 1) {
                Some(parent) => self.table.child_handle(parent).and_then(|h| {
                    if self.release_behind && l == depth {
                        self.release_before(h.offset);
                    }
                    self.table.read_block(h, what, Access::Scan)
                }),
                None => Err(Error::corruption(&self.table.path, 0, "iterator level")),
            }
        };
        match block {
            Ok(b) => {
                if let Some(it) = self.level_mut(l) {
                    it.reset(b);
                }
                true
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// With `release_behind`, releases the file's pages below `offset` once
    /// at least 1 MiB accumulated since the last release.
    fn release_before(&mut self, offset: u64) {
        const STEP: u64 = 1 << 20;
        if offset >= self.released_upto + STEP {
            self.table.release_below(self.released_upto, offset);
            self.released_upto = offset;
        }
    }

    /// Converts a decoding error of level `l` into the iterator's status.
    fn check(&mut self, l: usize) -> bool {
        let depth = self.depth();
        let Some(it) = self.level_mut(l) else {
            return false;
        };
        match it.error() {
            None => true,
            Some(e) => {
                let what = if l == depth {
                    "data block"
                } else {
                    "index page"
                };
                let err = self.table.block_error(
                    if l == depth {
                        self.data.block()
                    } else {
                        match self.pages.get(l) {
                            Some(p) => p.block(),
                            None => self.data.block(),
                        }
                    },
                    e,
                    what,
                );
                self.fail(err);
                false
            }
        }
    }

    /// Positions levels `l..=depth`. With `climb`, level `l` is exhausted
    /// and the walk first steps an ancestor in the direction of travel.
    fn walk(&mut self, mut l: usize, mut pos: Pos<'_>, forward: bool, mut climb: bool) {
        let depth = self.depth();
        loop {
            if climb {
                loop {
                    if l == 0 {
                        self.data.reset(empty_block());
                        return;
                    }
                    l -= 1;
                    let Some(it) = self.level_mut(l) else { return };
                    if forward {
                        it.next()
                    } else {
                        it.prev()
                    }
                    if !self.check(l) {
                        return;
                    }
                    if self.level_mut(l).is_some_and(|it| it.valid()) {
                        break;
                    }
                }
                l += 1;
                pos = if forward { Pos::First } else { Pos::Last };
                climb = false;
            }
            if !self.load(l) {
                return;
            }
            let Some(it) = self.level_mut(l) else { return };
            match pos {
                Pos::First => it.seek_to_first(),
                Pos::Last => it.seek_to_last(),
                Pos::Seek(t) => it.seek(t),
            }
            if !self.check(l) {
                return;
            }
            if self.level_mut(l).is_some_and(|it| it.valid()) {
                if l == depth {
                    return;
                }
                l += 1;
            } else {
                climb = true;
            }
        }
    }
}

impl Drop for TableIterator {
    fn drop(&mut self) {
        give_key_buf(self.data.take_key_buf());
        for p in &mut self.pages {
            give_key_buf(p.take_key_buf());
        }
    }
}

thread_local! {
    /// Key buffers of dropped table cursors, for the next ones: a seek
    /// opens a cursor per file, each with a key buffer per index level and
    /// one for its data block, which would otherwise allocate anew.
    static SPARE_KEY_BUFS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers kept per thread, and the largest one kept.
const SPARE_KEY_BUFS_MAX: usize = 64;
const SPARE_KEY_BUF_BYTES: usize = 4096;

/// A key buffer from this thread's spares, or a new empty one.
fn take_key_buf() -> Vec<u8> {
    SPARE_KEY_BUFS
        .try_with(|c| c.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Keeps `buf` for a later cursor unless it is empty, large, or the
/// thread already keeps enough.
fn give_key_buf(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > SPARE_KEY_BUF_BYTES {
        return;
    }
    buf.clear();
    let _ = SPARE_KEY_BUFS.try_with(|c| {
        let mut spares = c.borrow_mut();
        if spares.len() < SPARE_KEY_BUFS_MAX {
            spares.push(buf);
        }
    });
}

impl InternalIterator for TableIterator {
    fn valid(&self) -> bool {
        self.err.is_none() && self.data.valid()
    }

    fn seek_to_first(&mut self) {
        self.err = None;
        self.walk(0, Pos::First, true, false);
    }

    fn seek_to_last(&mut self) {
        self.err = None;
        self.walk(0, Pos::Last, false, false);
    }

    fn seek(&mut self, target: &[u8]) {
        self.err = None;
        self.walk(0, Pos::Seek(target), true, false);
    }

    fn seek_for_prev(&mut self, target: &[u8]) {
        self.seek(target);
        if self.valid() {
            if compare_internal(self.data.key(), target) == Ordering::Greater {
                self.prev();
            }
        } else if self.err.is_none() {
            self.seek_to_last();
        }
    }

    fn next(&mut self) {
        debug_assert!(self.valid());
        let depth = self.depth();
        self.data.next();
        if self.check(depth) && !self.data.valid() {
            self.walk(depth, Pos::First, true, true);
        }
    }

    fn prev(&mut self) {
        debug_assert!(self.valid());
        let depth = self.depth();
        self.data.prev();
        if self.check(depth) && !self.data.valid() {
            self.walk(depth, Pos::Last, false, true);
        }
    }

    fn key(&self) -> &[u8] {
        self.data.key()
    }

    fn value(&self) -> &[u8] {
        self.data.value()
    }

    fn value_bytes(&self) -> Bytes {
        self.data.value_bytes()
    }

    fn status(&self) -> Result<()> {
        match &self.err {
            None => Ok(()),
            // Of the same kind: a failed read stays `Error::Io`.
            Some(e) => Err(e.clone()),
        }
    }
}
