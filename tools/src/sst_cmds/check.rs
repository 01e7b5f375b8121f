//! `--command=check` and `--command=verify`: every problem of each SST file, capped per kind.

use super::*;

#[derive(Serialize)]
struct CheckFile {
    file: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<JsonProps>,
    /// Data blocks found through the index (null when the file or its
    /// index could not be read).
    data_blocks: Option<u64>,
    /// Entries in the data blocks that could be read.
    entries: u64,
    problems: Vec<Problem>,
}

/// Problems of one file, capped per kind.
struct FileProblems {
    path: PathBuf,
    list: Vec<Problem>,
    counts: HashMap<&'static str, usize>,
}

impl FileProblems {
    fn add(&mut self, what: &'static str, p: Problem) {
        let n = self.counts.entry(what).or_insert(0);
        *n += 1;
        if *n <= MAX_PROBLEMS_PER_KIND {
            self.list.push(p);
        }
    }

    fn verify(&mut self, what: &'static str, offset: Option<u64>, msg: String) {
        let p = Problem::verify(&self.path, offset, msg);
        self.add(what, p);
    }

    fn finish(mut self) -> Vec<Problem> {
        let mut extra: Vec<_> = self
            .counts
            .iter()
            .filter(|(_, &n)| n > MAX_PROBLEMS_PER_KIND)
            .map(|(&w, &n)| (w, n))
            .collect();
        extra.sort();
        for (what, n) in extra {
            self.list.push(Problem::verify(
                &self.path,
                None,
                format!(
                    "{} more problems of the kind \"{what}\" not listed",
                    n - MAX_PROBLEMS_PER_KIND
                ),
            ));
        }
        self.list
    }
}

/// Running totals of `verify` over the blocks.
#[derive(Default)]
struct Totals {
    entries: u64,
    deletions: u64,
    raw_key_size: u64,
    raw_value_size: u64,
    data_size: u64,
    smallest: Option<Vec<u8>>,
    largest: Vec<u8>,
    min_seq: u64,
    max_seq: u64,
}

fn check_file(
    ctx: &Ctx<'_>,
    path: &Path,
    sst: &SstFile,
    verify: bool,
) -> (CheckFile, Vec<Problem>) {
    let mut fp = FileProblems {
        path: path.to_path_buf(),
        list: Vec::new(),
        counts: HashMap::new(),
    };
    let mut cf = CheckFile {
        file: path.display().to_string(),
        ok: true,
        properties: (ctx.args.show_properties && ctx.args.json)
            .then(|| JsonProps::new(sst.properties())),
        data_blocks: None,
        entries: 0,
        problems: Vec::new(),
    };
    let refs = match sst.data_block_refs() {
        Ok(r) => r,
        Err(e) => {
            fp.add("index", Problem::from_error(path, &e));
            let list = fp.finish();
            cf.ok = false;
            cf.problems = list.clone();
            return (cf, list);
        }
    };
    cf.data_blocks = Some(refs.len() as u64);
    let mut t = Totals {
        min_seq: u64::MAX,
        ..Totals::default()
    };
    let mut all_blocks_read = true;
    let mut prev: Option<(Vec<u8>, u64, ValueKind)> = None;
    let mut prev_sep: Option<(Vec<u8>, u64, ValueKind)> = None;
    let progress = ctx.progress(refs.len() as u64, "blocks");
    let filter_offset = sst.footer().filter.offset;
    for r in &refs {
        progress.inc(1);
        t.data_size += r.handle.size + 5;
        let sep = split_internal_key(&r.separator).map(|(u, s, k)| (u.to_vec(), s, k));
        if verify {
            match (&sep, &prev_sep) {
                (None, _) => fp.verify(
                    "index",
                    Some(r.handle.offset),
                    format!(
                        "index separator of the data block at offset {} is not an internal key",
                        r.handle.offset
                    ),
                ),
                (Some(s), Some(p))
                    if cmp_ikey((&p.0, p.1, p.2), (&s.0, s.1, s.2)) != Ordering::Less =>
                {
                    fp.verify(
                        "index",
                        Some(r.handle.offset),
                        format!(
                            "index separators out of order before the data block at offset {}",
                            r.handle.offset
                        ),
                    )
                }
                _ => {}
            }
        }
        let block = match sst.data_block(r.handle) {
            Ok(b) => b,
            Err(e) => {
                fp.add("block", Problem::from_error(path, &e));
                all_blocks_read = false;
                prev = None;
                prev_sep = sep;
                continue;
            }
        };
        cf.entries += block.entries.len() as u64;
        if !verify {
            prev_sep = sep;
            continue;
        }
        if block.entries.is_empty() {
            fp.verify("block", Some(r.handle.offset), "empty data block".into());
        }
        let mut order_reported = false;
        let mut index_reported = false;
        for e in &block.entries {
            let cur = (&e.key[..], e.seq, e.kind);
            if let Some(p) = &prev {
                if !order_reported && cmp_ikey((&p.0, p.1, p.2), cur) != Ordering::Less {
                    order_reported = true;
                    fp.verify(
                        "order",
                        Some(r.handle.offset),
                        format!(
                            "keys out of order in or before the data block at offset {}: {} then {}",
                            r.handle.offset,
                            ctx.style.ikey(&encode_ikey(&p.0, p.1, p.2), Some(KEY_DISPLAY_MAX)),
                            ctx.style.ikey(&encode_ikey(cur.0, cur.1, cur.2), Some(KEY_DISPLAY_MAX)),
                        ),
                    );
                }
            }
            let above = sep
                .as_ref()
                .is_some_and(|s| cmp_ikey(cur, (&s.0, s.1, s.2)) == Ordering::Greater);
            let below = prev_sep
                .as_ref()
                .is_some_and(|s| cmp_ikey(cur, (&s.0, s.1, s.2)) != Ordering::Greater);
            if !index_reported && (above || below) {
                index_reported = true;
                fp.verify(
                    "index",
                    Some(r.handle.offset),
                    format!(
                        "data block at offset {} holds {}, outside its index separators",
                        r.handle.offset,
                        ctx.style
                            .ikey(&encode_ikey(cur.0, cur.1, cur.2), Some(KEY_DISPLAY_MAX))
                    ),
                );
            }
            let new_user_key = prev.as_ref().is_none_or(|p| p.0[..] != e.key[..]);
            if new_user_key && !sst.may_contain(&e.key) {
                fp.verify(
                    "filter",
                    Some(filter_offset),
                    format!(
                        "the bloom filter misses key {} (point reads of it would find nothing)",
                        ctx.style.bytes(&e.key)
                    ),
                );
            }
            t.entries += 1;
            if e.kind == ValueKind::Delete {
                t.deletions += 1;
            }
            t.raw_key_size += e.key.len() as u64 + 8;
            t.raw_value_size += e.value.len() as u64;
            t.min_seq = t.min_seq.min(e.seq);
            t.max_seq = t.max_seq.max(e.seq);
            let ik = encode_ikey(&e.key, e.seq, e.kind);
            if t.smallest.is_none() {
                t.smallest = Some(ik.clone());
            }
            t.largest = ik;
            prev = Some((e.key.to_vec(), e.seq, e.kind));
        }
        prev_sep = sep;
    }
    drop(progress);
    if verify && all_blocks_read {
        let p = sst.properties();
        let props_at = Some(sst.footer().properties.offset);
        let checks: [(&str, u64, u64); 10] = [
            ("num_entries", p.num_entries, t.entries),
            ("num_deletions", p.num_deletions, t.deletions),
            ("num_data_blocks", p.num_data_blocks, refs.len() as u64),
            ("data_size", p.data_size, t.data_size),
            ("raw_key_size", p.raw_key_size, t.raw_key_size),
            ("raw_value_size", p.raw_value_size, t.raw_value_size),
            ("smallest_seq", p.smallest_seq, t.min_seq),
            ("largest_seq", p.largest_seq, t.max_seq),
            (
                "index_depth",
                p.index_depth,
                u64::from(sst.footer().index_depth),
            ),
            (
                "filter_size",
                p.filter_size,
                if sst.footer().filter.size == 0 && sst.footer().filter.offset == 0 {
                    0
                } else {
                    sst.footer().filter.size + 5
                },
            ),
        ];
        for (name, said, found) in checks {
            if said != found {
                fp.verify(
                    "properties",
                    props_at,
                    format!("properties say {name} = {said}, the file holds {found}"),
                );
            }
        }
        if t.smallest.as_deref() != Some(&p.smallest_key[..]) {
            fp.verify(
                "properties",
                props_at,
                format!(
                    "properties say smallest_key = {}, the first entry is {}",
                    ctx.style.ikey(&p.smallest_key, Some(KEY_DISPLAY_MAX)),
                    t.smallest
                        .as_deref()
                        .map(|k| ctx.style.ikey(k, Some(KEY_DISPLAY_MAX)))
                        .unwrap_or_else(|| "none".into())
                ),
            );
        }
        if t.largest != p.largest_key {
            fp.verify(
                "properties",
                props_at,
                format!(
                    "properties say largest_key = {}, the last entry is {}",
                    ctx.style.ikey(&p.largest_key, Some(KEY_DISPLAY_MAX)),
                    ctx.style.ikey(&t.largest, Some(KEY_DISPLAY_MAX))
                ),
            );
        }
        // The engine's own verification also walks the index pages
        // (separator invariant between levels, page counts and sizes).
        if fp.list.is_empty() {
            if let Err(e) = sst.verify() {
                fp.add("engine", Problem::from_error(path, &e));
            }
        }
    }
    let list = fp.finish();
    cf.ok = list.is_empty();
    cf.problems = list.clone();
    (cf, list)
}

/// `--command=check` and `--command=verify`.
pub fn check(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let verify = ctx.args.command == crate::cli::Command::Verify;
    let mut files = Vec::new();
    let (mut n_ok, mut n_bad) = (0, 0);
    for_each_sst(ctx, |ctx, path, sst| {
        let (cf, problems) = match sst {
            Ok(sst) => {
                if ctx.args.show_properties && !ctx.args.json {
                    write_props(ctx, path, sst.properties())?;
                }
                check_file(ctx, path, &sst, verify)
            }
            Err(p) => (
                CheckFile {
                    file: path.display().to_string(),
                    ok: false,
                    properties: None,
                    data_blocks: None,
                    entries: 0,
                    problems: vec![p.clone()],
                },
                vec![p],
            ),
        };
        if cf.ok {
            n_ok += 1;
        } else {
            n_bad += 1;
        }
        if !ctx.args.json {
            if cf.ok {
                writeln!(
                    ctx.out,
                    "OK      {} ({} data blocks, {} entries)",
                    cf.file,
                    cf.data_blocks.unwrap_or(0),
                    cf.entries
                )?;
            } else {
                writeln!(
                    ctx.out,
                    "FAILED  {} ({} problem{})",
                    cf.file,
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                )?;
                for p in &problems {
                    writeln!(ctx.out, "  {p}")?;
                }
            }
        }
        for p in problems {
            ctx.problem(p);
        }
        files.push(cf);
        Ok(())
    })?;
    if ctx.args.json {
        #[derive(Serialize)]
        struct Body {
            files: Vec<CheckFile>,
            files_ok: u64,
            files_failed: u64,
        }
        emit_json(
            ctx,
            Body {
                files,
                files_ok: n_ok,
                files_failed: n_bad,
            },
        )?;
    } else {
        let problems = ctx.problems.len();
        writeln!(
            ctx.out,
            "{} file{} checked: {n_ok} OK, {n_bad} failed, {problems} problem{}",
            n_ok + n_bad,
            if n_ok + n_bad == 1 { "" } else { "s" },
            if problems == 1 { "" } else { "s" }
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Raw
