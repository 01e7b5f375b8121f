use super::*;
use proptest::prelude::*;

fn t(start: &[u8], end: &[u8], seq: u64) -> RangeTombstone {
    RangeTombstone {
        start: start.to_vec(),
        end: end.to_vec(),
        seq,
    }
}

/// The rule itself, on the raw tombstones.
fn naive_max(ts: &[RangeTombstone], key: &[u8], read_seq: u64) -> u64 {
    ts.iter()
        .filter(|t| t.start.as_slice() <= key && key < t.end.as_slice() && t.seq <= read_seq)
        .map(|t| t.seq)
        .max()
        .unwrap_or(0)
}

fn arb_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..4, 0..3)
}

fn arb_tombstones() -> impl Strategy<Value = Vec<RangeTombstone>> {
    prop::collection::vec(
        (arb_key(), arb_key(), 1u64..40).prop_map(|(a, b, s)| t(&a, &b, s)),
        0..12,
    )
}

/// Many tombstones, so that sets get a cover filter; keys of up to 10
/// bytes, so that their 8-byte prefixes both differ and tie.
fn arb_many_tombstones() -> impl Strategy<Value = Vec<RangeTombstone>> {
    let k = || {
        prop_oneof![
            prop::collection::vec(0u8..4, 0..3),
            prop::collection::vec(prop::sample::select(vec![0u8, 1, 0x7f, 0xff]), 7..11),
        ]
    };
    prop::collection::vec(
        (k(), k(), 1u64..200).prop_map(|(a, b, s)| t(&a, &b, s)),
        0..80,
    )
}

/// Every key of the small alphabet, and a few past it.
fn all_keys() -> Vec<Vec<u8>> {
    let mut keys = vec![Vec::new()];
    for a in 0u8..5 {
        keys.push(vec![a]);
        for b in 0u8..5 {
            keys.push(vec![a, b]);
            for c in 0u8..5 {
                keys.push(vec![a, b, c]);
            }
        }
    }
    keys
}

#[test]
fn overlapping_tombstones_are_cut_into_pieces() {
    let f = FragmentedTombstones::new([t(b"a", b"e", 5), t(b"c", b"g", 9)]);
    let got: Vec<(&[u8], &[u8], &[u64])> = f
        .fragments()
        .iter()
        .map(|f| (f.start.as_slice(), f.end.as_slice(), f.seqs.as_slice()))
        .collect();
    assert_eq!(
        got,
        vec![
            (&b"a"[..], &b"c"[..], &[5u64][..]),
            (&b"c"[..], &b"e"[..], &[9, 5][..]),
            (&b"e"[..], &b"g"[..], &[9][..]),
        ]
    );
    assert_eq!(f.max_covering_seq(b"d", 7), 5);
    assert_eq!(f.max_covering_seq(b"d", 9), 9);
    assert_eq!(f.max_covering_seq(b"g", 100), 0);
    assert!(f.deletes(b"b", 4, 5));
    assert!(!f.deletes(b"b", 5, 100));
    assert_eq!(f.len(), 4);
}

#[test]
fn empty_ranges_are_ignored_and_neighbours_join() {
    let f = FragmentedTombstones::new([t(b"b", b"b", 5), t(b"a", b"c", 3), t(b"c", b"d", 3)]);
    assert_eq!(f.fragments().len(), 1);
    assert_eq!(f.bounds(), Some((&b"a"[..], &b"d"[..])));
}

#[test]
fn from_fragments_refuses_what_new_never_makes() {
    let frag = |s: &[u8], e: &[u8], seqs: &[u64]| Fragment {
        start: s.to_vec(),
        end: e.to_vec(),
        seqs: seqs.to_vec(),
    };
    let bad = [
        vec![frag(b"b", b"a", &[1])],
        vec![frag(b"a", b"b", &[])],
        vec![frag(b"a", b"b", &[1, 2])],
        vec![frag(b"a", b"b", &[2, 2])],
        vec![frag(b"a", b"c", &[1]), frag(b"b", b"d", &[1])],
    ];
    for b in bad {
        assert!(FragmentedTombstones::from_fragments(b).is_err());
    }
    let ok = vec![frag(b"a", b"b", &[3, 1]), frag(b"b", b"d", &[1])];
    assert!(FragmentedTombstones::from_fragments(ok).is_ok());
}

#[test]
fn forward_cursor_agrees_with_search() {
    let f = FragmentedTombstones::new([t(b"b", b"d", 2), t(b"f", b"h", 4), t(b"g", b"k", 6)]);
    let mut c = f.cursor();
    for k in [
        &b"a"[..],
        b"b",
        b"c",
        b"d",
        b"e",
        b"f",
        b"g",
        b"h",
        b"j",
        b"k",
        b"z",
    ] {
        assert_eq!(c.fragment_at(k), f.fragment_at(k), "key {k:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn large_sets_answer_as_the_raw_tombstones(
        ts in arb_many_tombstones(),
        probes in prop::collection::vec(
            prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 3, 0x7f, 0x80, 0xff]), 0..11),
            64,
        ),
        read in 0u64..210,
    ) {
        let f = FragmentedTombstones::new(ts.clone());
        let probes = probes.into_iter().chain(ts.iter().flat_map(|t| [t.start.clone(), t.end.clone()]));
        for k in probes {
            prop_assert_eq!(f.max_covering_seq(&k, read), naive_max(&ts, &k, read), "key {:?}", k);
        }
    }

    #[test]
    fn fragments_answer_as_the_raw_tombstones(ts in arb_tombstones(), read in 0u64..45) {
        let f = FragmentedTombstones::new(ts.clone());
        prop_assert!(FragmentedTombstones::from_fragments(f.fragments().to_vec()).is_ok());
        let mut cursor = f.cursor();
        for k in all_keys() {
            prop_assert_eq!(f.max_covering_seq(&k, read), naive_max(&ts, &k, read), "key {:?}", k);
            prop_assert_eq!(cursor.fragment_at(&k), f.fragment_at(&k));
        }
        // Fragmenting the fragments gives the same set.
        prop_assert_eq!(FragmentedTombstones::new(f.tombstones()), f.clone());
        let merged = FragmentedTombstones::merge([&f, &FragmentedTombstones::empty()]);
        prop_assert_eq!(merged, f);
    }

    #[test]
    fn clip_keeps_exactly_the_keys_inside(
        ts in arb_tombstones(),
        lo in prop::option::of(arb_key()),
        hi in prop::option::of(arb_key()),
    ) {
        let f = FragmentedTombstones::new(ts);
        let c = f.clip(lo.as_deref(), hi.as_deref());
        prop_assert!(FragmentedTombstones::from_fragments(c.fragments().to_vec()).is_ok());
        for k in all_keys() {
            let inside = lo.as_ref().is_none_or(|l| k >= *l) && hi.as_ref().is_none_or(|h| k < *h);
            let want = if inside { f.max_covering_seq(&k, u64::MAX) } else { 0 };
            prop_assert_eq!(c.max_covering_seq(&k, u64::MAX), want, "key {:?}", k);
        }
    }

    #[test]
    fn garbage_collection_changes_no_answer_that_matters(
        ts in arb_tombstones(),
        mut snapshots in prop::collection::vec(1u64..40, 0..4),
        bottommost in any::<bool>(),
    ) {
        snapshots.sort_unstable();
        snapshots.dedup();
        let f = FragmentedTombstones::new(ts);
        let g = f.collect_garbage(&snapshots, bottommost);
        prop_assert!(FragmentedTombstones::from_fragments(g.fragments().to_vec()).is_ok());
        let stripe = |s: u64| snapshots.partition_point(|&x| x < s);
        let readers: Vec<u64> = snapshots.iter().copied().chain([u64::MAX]).collect();
        for k in all_keys() {
            for s in 0..42 {
                // On the bottommost level the earliest stripe's versions
                // are dropped with the tombstones that delete them.
                if bottommost && stripe(s) == 0 {
                    continue;
                }
                for &r in &readers {
                    prop_assert_eq!(
                        g.deletes(&k, s, r),
                        f.deletes(&k, s, r),
                        "key {:?} seq {} reader {}", k, s, r
                    );
                }
            }
        }
        prop_assert!(g.len() <= f.len());
    }
}

#[test]
fn large_sets_get_a_cover_filter_that_rejects_gaps() {
    let ts: Vec<RangeTombstone> = (0u32..100)
        .map(|i| t(&(i * 10).to_be_bytes(), &(i * 10 + 3).to_be_bytes(), 5))
        .collect();
    let f = FragmentedTombstones::new(ts.clone());
    assert_eq!(f.fragments().len(), 100);
    let c = f
        .cover
        .as_ref()
        .expect("a set of 100 fragments has a filter");
    for k in 0u32..1010 {
        let key = k.to_be_bytes();
        assert_eq!(
            f.max_covering_seq(&key, 9),
            naive_max(&ts, &key, 9),
            "key {k}"
        );
    }
    // Most gaps are rejected by the filter alone.
    let rejected = (0u32..1000)
        .filter(|k| k % 10 >= 3 && !c.may_cover(key_prefix(&k.to_be_bytes())))
        .count();
    assert!(rejected > 500, "{rejected} of 700 gap keys rejected");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `deletes_all` is true only when every version in the file's ranges
    /// is deleted in its own stripe (checked key by key over the alphabet).
    #[test]
    fn deletes_all_only_when_every_version_goes(
        ts in arb_tombstones(),
        a in arb_key(),
        b in arb_key(),
        last_inclusive in any::<bool>(),
        s1 in 1u64..40,
        s2 in 1u64..40,
        mut snapshots in prop::collection::vec(1u64..40, 0..3),
    ) {
        snapshots.sort_unstable();
        snapshots.dedup();
        let (min_seq, max_seq) = (s1.min(s2), s1.max(s2));
        let f = FragmentedTombstones::new(ts);
        if f.deletes_all(&a, &b, last_inclusive, min_seq, max_seq, &snapshots) {
            let stripe = |s: u64| snapshots.partition_point(|&x| x < s);
            for k in all_keys() {
                let inside = a <= k && (k < b || (last_inclusive && k == b));
                if !inside {
                    continue;
                }
                for s in min_seq..=max_seq {
                    let frag = f.fragment_at(&k);
                    let t = frag.and_then(|fr| fr.oldest_above(s));
                    prop_assert!(
                        t.is_some_and(|t| stripe(t) == stripe(s)),
                        "key {:?} seq {} survives", k, s
                    );
                }
            }
        }
    }
}

#[test]
fn deletes_all_sees_a_whole_file_under_a_newer_tombstone() {
    let f = FragmentedTombstones::new([t(b"a", b"m", 50), t(b"k", b"z", 60)]);
    assert!(f.deletes_all(b"b", b"x", true, 10, 40, &[]));
    assert!(f.deletes_all(b"b", b"z", false, 10, 40, &[]));
    assert!(
        !f.deletes_all(b"b", b"z", true, 10, 40, &[]),
        "z itself is not deleted"
    );
    assert!(
        !f.deletes_all(b"b", b"x", true, 10, 55, &[]),
        "versions at 51..55 in b..k survive"
    );
    assert!(
        !f.deletes_all(b"b", b"x", true, 10, 40, &[45]),
        "a snapshot at 45 still sees them"
    );
    assert!(
        !f.deletes_all(b"0", b"x", true, 10, 40, &[]),
        "keys below a are not deleted"
    );
}
