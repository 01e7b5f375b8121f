//! Doubly linked lists over one slab of nodes, addressed by `u32` index.
//!
//! The cache keeps up to four lists (ARC's T1, T2, B1, B2) whose nodes
//! move between them; keeping every node in one `Vec` with a free list
//! means a move or an eviction allocates nothing once the slab has grown
//! to its working size.
//!
//! Invariant: every node index in use is on exactly one list, and its
//! `list` field names that list; free nodes are chained through `next`.

/// No node.
pub(crate) const NIL: u32 = u32::MAX;

/// One slab node: the payload and its links.
pub(crate) struct Node<T> {
    pub(crate) item: T,
    pub(crate) list: u8,
    prev: u32,
    next: u32,
}

/// Head, tail and total charge of one list. `head` is the most recently
/// used end, `tail` the least recently used.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListHead {
    head: u32,
    tail: u32,
    /// Sum of the charges of the nodes on the list.
    pub(crate) bytes: usize,
    pub(crate) len: usize,
}

impl ListHead {
    const EMPTY: ListHead = ListHead {
        head: NIL,
        tail: NIL,
        bytes: 0,
        len: 0,
    };
}

/// A slab of nodes and `N` lists threaded through it.
pub(crate) struct SlabLists<T, const N: usize> {
    nodes: Vec<Node<T>>,
    free: u32,
    pub(crate) lists: [ListHead; N],
}

impl<T, const N: usize> SlabLists<T, N> {
    pub(crate) fn new() -> Self {
        SlabLists {
            nodes: Vec::new(),
            free: NIL,
            lists: [ListHead::EMPTY; N],
        }
    }

    pub(crate) fn node(&self, i: u32) -> &Node<T> {
        &self.nodes[i as usize]
    }

    pub(crate) fn node_mut(&mut self, i: u32) -> &mut Node<T> {
        &mut self.nodes[i as usize]
    }

    /// The least recently used node of `list`, if any.
    pub(crate) fn tail(&self, list: u8) -> Option<u32> {
        let t = self.lists[list as usize].tail;
        (t != NIL).then_some(t)
    }

    /// Stores `item` in a new node at the head of `list`.
    pub(crate) fn push_front(&mut self, list: u8, item: T, charge: usize) -> u32 {
        let node = Node {
            item,
            list,
            prev: NIL,
            next: NIL,
        };
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.nodes[i as usize].next;
            self.nodes[i as usize] = node;
            i
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        self.link_front(list, i, charge);
        i
    }

    fn link_front(&mut self, list: u8, i: u32, charge: usize) {
        let h = &mut self.lists[list as usize];
        let old = h.head;
        h.head = i;
        if h.tail == NIL {
            h.tail = i;
        }
        h.bytes += charge;
        h.len += 1;
        let n = &mut self.nodes[i as usize];
        n.list = list;
        n.prev = NIL;
        n.next = old;
        if old != NIL {
            self.nodes[old as usize].prev = i;
        }
    }

    fn unlink(&mut self, i: u32, charge: usize) {
        let (list, prev, next) = {
            let n = &self.nodes[i as usize];
            (n.list, n.prev, n.next)
        };
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            self.lists[list as usize].head = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else {
            self.lists[list as usize].tail = prev;
        }
        let h = &mut self.lists[list as usize];
        h.bytes -= charge;
        h.len -= 1;
    }

    /// Moves node `i` (of charge `charge`) to the head of `to`.
    pub(crate) fn move_front(&mut self, i: u32, to: u8, charge: usize) {
        self.unlink(i, charge);
        self.link_front(to, i, charge);
    }

    /// Unlinks node `i` and returns its slot to the free list. The item
    /// stays in the slot until the slot is reused.
    pub(crate) fn remove(&mut self, i: u32, charge: usize) {
        self.unlink(i, charge);
        self.nodes[i as usize].next = self.free;
        self.free = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &SlabLists<u32, 2>, list: u8) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = s.lists[list as usize].head;
        while i != NIL {
            out.push(s.node(i).item);
            i = s.nodes[i as usize].next;
        }
        out
    }

    #[test]
    fn push_move_remove_keep_lists_consistent() {
        let mut s: SlabLists<u32, 2> = SlabLists::new();
        let a = s.push_front(0, 1, 10);
        let b = s.push_front(0, 2, 20);
        let c = s.push_front(0, 3, 30);
        assert_eq!(items(&s, 0), vec![3, 2, 1]);
        assert_eq!(s.lists[0].bytes, 60);
        s.move_front(b, 1, 20);
        assert_eq!(items(&s, 0), vec![3, 1]);
        assert_eq!(items(&s, 1), vec![2]);
        assert_eq!((s.lists[0].bytes, s.lists[1].bytes), (40, 20));
        assert_eq!(s.tail(0), Some(a));
        s.remove(a, 10);
        assert_eq!(s.tail(0), Some(c));
        let d = s.push_front(1, 4, 5);
        assert_eq!(d, a, "a freed slot is reused");
        assert_eq!(items(&s, 1), vec![4, 2]);
        assert_eq!(s.lists[1].len, 2);
    }
}
