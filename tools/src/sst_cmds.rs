//! Commands on SST files: scan, check, verify, raw, properties, recompress.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use lightning_db::inspect::{
    read_options_file, split_internal_key, SstFile, TableLayout, TableProperties, ValueKind,
};
use serde::Serialize;

use crate::fmt::{human, kind_name, parse_hex, JsonBytes, JsonIKey, Problem};
use crate::{emit_json, expand, vanished, Ctx, Input};

/// Separator and key-range user keys are cut at this many bytes in `raw`.
const KEY_DISPLAY_MAX: usize = 32;
/// At most this many problems of one kind per file are listed one by one.
const MAX_PROBLEMS_PER_KIND: usize = 10;

fn is_sst(name: &str) -> bool {
    name.ends_with(".sst")
}

/// Opens every SST input; problems for those that do not open. Calls `f`
/// for each open file.
fn for_each_sst(
    ctx: &mut Ctx<'_>,
    mut f: impl FnMut(&mut Ctx<'_>, &Path, Result<SstFile, Problem>) -> io::Result<()>,
) -> io::Result<()> {
    let inputs = expand(ctx, "*.sst files", is_sst);
    for input in inputs {
        match SstFile::open(&input.path) {
            Ok(sst) => f(ctx, &input.path, Ok(sst))?,
            Err(e) if vanished(&input, &e) => note_vanished(&input),
            Err(e) => f(ctx, &input.path, Err(Problem::from_error(&input.path, &e)))?,
        }
    }
    Ok(())
}

fn note_vanished(input: &Input) {
    eprintln!(
        "sst-dump: note: {} was deleted after the directory was listed (a live database compacted it); skipped",
        input.path.display()
    );
}

// ---------------------------------------------------------------------------
// Properties

/// The properties block in JSON.
#[derive(Debug, Clone, Serialize)]
pub struct JsonProps {
    num_entries: u64,
    num_deletions: u64,
    smallest_key: JsonIKey,
    largest_key: JsonIKey,
    smallest_seq: u64,
    largest_seq: u64,
    raw_key_size: u64,
    raw_value_size: u64,
    data_size: u64,
    num_data_blocks: u64,
    index_size: u64,
    num_index_pages: u64,
    index_depth: u64,
    filter_size: u64,
    bloom_bits_per_key: u64,
    compression: String,
    creation_time: u64,
    /// (raw_key_size + raw_value_size) / data_size.
    compression_ratio: f64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl JsonProps {
    fn new(p: &TableProperties) -> JsonProps {
        JsonProps {
            num_entries: p.num_entries,
            num_deletions: p.num_deletions,
            smallest_key: JsonIKey::new(&p.smallest_key, None),
            largest_key: JsonIKey::new(&p.largest_key, None),
            smallest_seq: p.smallest_seq,
            largest_seq: p.largest_seq,
            raw_key_size: p.raw_key_size,
            raw_value_size: p.raw_value_size,
            data_size: p.data_size,
            num_data_blocks: p.num_data_blocks,
            index_size: p.index_size,
            num_index_pages: p.num_index_pages,
            index_depth: p.index_depth,
            filter_size: p.filter_size,
            bloom_bits_per_key: p.bloom_bits_per_key,
            compression: p.compression.clone(),
            creation_time: p.creation_time,
            compression_ratio: ratio(p.raw_key_size + p.raw_value_size, p.data_size),
        }
    }
}

fn write_props(ctx: &mut Ctx<'_>, path: &Path, p: &TableProperties) -> io::Result<()> {
    let s = ctx.style;
    let o = &mut ctx.out;
    writeln!(o, "Table properties of {}:", path.display())?;
    writeln!(o, "  num_entries:        {}", p.num_entries)?;
    writeln!(o, "  num_deletions:      {}", p.num_deletions)?;
    writeln!(o, "  smallest_key:       {}", s.ikey(&p.smallest_key, None))?;
    writeln!(o, "  largest_key:        {}", s.ikey(&p.largest_key, None))?;
    writeln!(o, "  smallest_seq:       {}", p.smallest_seq)?;
    writeln!(o, "  largest_seq:        {}", p.largest_seq)?;
    writeln!(o, "  raw_key_size:       {}", p.raw_key_size)?;
    writeln!(o, "  raw_value_size:     {}", p.raw_value_size)?;
    writeln!(o, "  data_size:          {}", p.data_size)?;
    writeln!(o, "  num_data_blocks:    {}", p.num_data_blocks)?;
    writeln!(o, "  index_size:         {}", p.index_size)?;
    writeln!(o, "  num_index_pages:    {}", p.num_index_pages)?;
    writeln!(o, "  index_depth:        {}", p.index_depth)?;
    writeln!(o, "  filter_size:        {}", p.filter_size)?;
    writeln!(o, "  bloom_bits_per_key: {}", p.bloom_bits_per_key)?;
    writeln!(o, "  compression:        {}", p.compression)?;
    writeln!(o, "  creation_time:      {}", p.creation_time)?;
    writeln!(
        o,
        "  compression ratio:  {:.2} (raw key+value bytes / data size)",
        ratio(p.raw_key_size + p.raw_value_size, p.data_size)
    )
}

#[derive(Serialize)]
struct PropsFile {
    file: String,
    file_size: Option<u64>,
    properties: Option<JsonProps>,
    error: Option<Problem>,
}

/// `--command=properties`.
pub fn properties(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let mut files = Vec::new();
    for_each_sst(ctx, |ctx, path, sst| {
        match sst {
            Ok(sst) => {
                if ctx.args.json {
                    files.push(PropsFile {
                        file: path.display().to_string(),
                        file_size: Some(sst.file_size()),
                        properties: Some(JsonProps::new(sst.properties())),
                        error: None,
                    });
                } else {
                    write_props(ctx, path, sst.properties())?;
                }
            }
            Err(p) => {
                files.push(PropsFile {
                    file: path.display().to_string(),
                    file_size: None,
                    properties: None,
                    error: Some(p.clone()),
                });
                ctx.problem(p);
            }
        }
        Ok(())
    })?;
    if ctx.args.json {
        #[derive(Serialize)]
        struct Body {
            files: Vec<PropsFile>,
        }
        emit_json(ctx, Body { files })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Scan

#[derive(Serialize)]
struct ScanEntry {
    key: JsonBytes,
    seq: u64,
    kind: &'static str,
    /// Null for a tombstone.
    value: Option<JsonBytes>,
}

#[derive(Serialize)]
struct ScanFile {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<JsonProps>,
    entries: Vec<ScanEntry>,
    /// The error that ended the scan of this file (entries before it are
    /// sound).
    error: Option<Problem>,
}

struct Bounds {
    start: Option<Vec<u8>>,
    to: Option<Vec<u8>>,
    prefix: Option<Vec<u8>>,
}

fn bounds(ctx: &Ctx<'_>) -> Result<Bounds, String> {
    let parse = |s: &Option<String>| -> Result<Option<Vec<u8>>, String> {
        match s {
            None => Ok(None),
            Some(s) if ctx.args.input_hex => parse_hex(s).map(Some),
            Some(s) => Ok(Some(s.as_bytes().to_vec())),
        }
    };
    let from = parse(&ctx.args.from)?;
    let to = parse(&ctx.args.to)?;
    let prefix = parse(&ctx.args.prefix)?;
    let start = match (from, &prefix) {
        (Some(f), Some(p)) => Some(std::cmp::max(f, p.clone())),
        (f, p) => f.or_else(|| p.clone()),
    };
    Ok(Bounds { start, to, prefix })
}

/// `--command=scan`.
pub fn scan(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let b = match bounds(ctx) {
        Ok(b) => b,
        Err(m) => {
            ctx.problem(Problem::other(
                Path::new("--from/--to/--prefix"),
                "invalid_argument",
                m,
            ));
            return if ctx.args.json {
                emit_json(ctx, ScanBody { files: Vec::new() })
            } else {
                Ok(())
            };
        }
    };
    let several = ctx.args.files.len() > 1 || ctx.args.files.first().is_some_and(|f| f.is_dir());
    let mut files = Vec::new();
    for_each_sst(ctx, |ctx, path, sst| {
        let mut jf = ScanFile {
            file: path.display().to_string(),
            properties: None,
            entries: Vec::new(),
            error: None,
        };
        if several && !ctx.args.json {
            writeln!(ctx.out, "# {}", path.display())?;
        }
        let sst = match sst {
            Ok(s) => s,
            Err(p) => {
                jf.error = Some(p.clone());
                files.push(jf);
                ctx.problem(p);
                return Ok(());
            }
        };
        if ctx.args.show_properties {
            if ctx.args.json {
                jf.properties = Some(JsonProps::new(sst.properties()));
            } else {
                write_props(ctx, path, sst.properties())?;
            }
        }
        let it = match &b.start {
            Some(s) => sst.entries_from(s),
            None => sst.entries(),
        };
        let progress = ctx.progress(sst.properties().num_entries, "entries");
        let mut last: Option<lightning_db::Bytes> = None;
        let mut shown = 0u64;
        for r in it {
            progress.inc(1);
            let e = match r {
                Ok(e) => e,
                Err(err) => {
                    let p = Problem::from_error(path, &err);
                    jf.error = Some(p.clone());
                    ctx.problem(p);
                    break;
                }
            };
            if b.to.as_deref().is_some_and(|t| e.key[..] >= *t)
                || b.prefix.as_deref().is_some_and(|p| !e.key.starts_with(p))
            {
                break;
            }
            if !ctx.args.show_all_versions && last.as_ref() == Some(&e.key) {
                continue;
            }
            if ctx.args.limit.is_some_and(|l| shown >= l) {
                break;
            }
            shown += 1;
            if ctx.args.json {
                jf.entries.push(ScanEntry {
                    key: JsonBytes::full(&e.key),
                    seq: e.seq,
                    kind: kind_name(e.kind),
                    value: (e.kind == ValueKind::Value)
                        .then(|| JsonBytes::cut(&e.value, ctx.style.width)),
                });
            } else {
                let s = ctx.style;
                match e.kind {
                    ValueKind::Value => writeln!(
                        ctx.out,
                        "{} @ {} : put => {}",
                        s.bytes(&e.key),
                        e.seq,
                        s.value(&e.value)
                    )?,
                    ValueKind::Delete => {
                        writeln!(ctx.out, "{} @ {} : delete", s.bytes(&e.key), e.seq)?
                    }
                }
            }
            last = Some(e.key);
        }
        files.push(jf);
        Ok(())
    })?;
    if ctx.args.json {
        emit_json(ctx, ScanBody { files })?;
    }
    Ok(())
}

#[derive(Serialize)]
struct ScanBody {
    files: Vec<ScanFile>,
}

// ---------------------------------------------------------------------------
// Check and verify

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

type IKey<'a> = (&'a [u8], u64, ValueKind);

fn trailer(seq: u64, kind: ValueKind) -> u64 {
    (seq << 8) | kind as u64
}

/// Internal-key order: user key ascending, then trailer descending.
fn cmp_ikey(a: IKey<'_>, b: IKey<'_>) -> Ordering {
    a.0.cmp(b.0)
        .then_with(|| trailer(b.1, b.2).cmp(&trailer(a.1, a.2)))
}

fn encode_ikey(uk: &[u8], seq: u64, kind: ValueKind) -> Vec<u8> {
    let mut v = uk.to_vec();
    v.extend_from_slice(&trailer(seq, kind).to_le_bytes());
    v
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

#[derive(Serialize)]
struct JsonHandle {
    offset: u64,
    size: u64,
}

#[derive(Serialize)]
struct JsonFooter {
    index_root: JsonHandle,
    filter: Option<JsonHandle>,
    properties: JsonHandle,
    index_depth: u32,
    version: u32,
}

#[derive(Serialize)]
struct MinAvgMax {
    min: f64,
    avg: f64,
    max: f64,
}

impl MinAvgMax {
    fn of(v: &[f64]) -> MinAvgMax {
        if v.is_empty() {
            return MinAvgMax {
                min: 0.0,
                avg: 0.0,
                max: 0.0,
            };
        }
        MinAvgMax {
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            avg: v.iter().sum::<f64>() / v.len() as f64,
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

#[derive(Serialize)]
struct JsonIndexPage {
    offset: u64,
    size: u64,
    uncompressed_size: u64,
    compression: &'static str,
    entries: usize,
    /// Fraction of index_page_size used by the uncompressed page.
    fill: f64,
    /// Separator internal keys, user keys cut at 32 bytes.
    separators: Vec<JsonIKey>,
}

#[derive(Serialize)]
struct JsonIndexLevel {
    /// Height above the data blocks: 1 = leaf pages; the first level
    /// listed is the root.
    level: u32,
    pages: usize,
    fanout: MinAvgMax,
    fill: MinAvgMax,
    page_list: Vec<JsonIndexPage>,
}

#[derive(Serialize)]
struct JsonIndex {
    depth: u32,
    pages: usize,
    index_page_size: u64,
    levels: Vec<JsonIndexLevel>,
}

#[derive(Serialize)]
struct JsonFilter {
    offset: u64,
    size: u64,
    num_bytes: usize,
    num_bits: u64,
    num_probes: u8,
    bits_per_key: u64,
    /// Distinct user keys in the file.
    num_keys: u64,
    /// Every probe of a key in one 64-byte line (format version 2).
    cache_local: bool,
    /// See `fp_rate`.
    estimated_fp_rate: f64,
}

#[derive(Serialize)]
struct JsonDataBlock {
    offset: u64,
    size: u64,
    stored_size: u64,
    uncompressed_size: u64,
    compression: &'static str,
    entries: usize,
    restarts: usize,
    first_key: Option<JsonIKey>,
    last_key: Option<JsonIKey>,
}

#[derive(Serialize)]
struct RawFile {
    file: String,
    file_size: u64,
    footer: JsonFooter,
    properties: JsonProps,
    index: JsonIndex,
    filter: Option<JsonFilter>,
    data_blocks: Vec<JsonDataBlock>,
}

fn index_page_size(ctx: &Ctx<'_>, path: &Path) -> u64 {
    if let Some(s) = ctx.args.index_page_size {
        return s;
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let opts = crate::files_in(dir, |n| n.starts_with("OPTIONS-") && !n.ends_with(".tmp"))
        .ok()
        .and_then(|v| v.last().cloned());
    opts.and_then(|f| read_options_file(f).ok())
        .map(|o| o.index_page_size as u64)
        .unwrap_or(4096)
}

/// Expected false-positive rate of a bloom filter of `m` bits, `n` keys and
/// `k` probes: `(1 - e^(-k·n/m))^k` when probes go anywhere in the array;
/// for the cache-local layout (every probe of a key in one 512-bit line)
/// the same formula averaged over the Poisson-distributed number of keys
/// per line, which is a little higher.
fn fp_rate(k: f64, n: f64, m: f64, cache_local: bool) -> f64 {
    if m == 0.0 {
        return 1.0;
    }
    if !cache_local {
        return (1.0 - (-k * n / m).exp()).powf(k);
    }
    const LINE_BITS: f64 = 512.0;
    let lambda = n * LINE_BITS / m;
    // Keys per line ~ Poisson(lambda); sum far enough into the tail.
    let mut p = (-lambda).exp();
    let mut sum = 0.0;
    let terms = (lambda * 4.0) as u64 + 64;
    for x in 0..terms {
        if x > 0 {
            p *= lambda / x as f64;
        }
        sum += p * (1.0 - (1.0 - 1.0 / LINE_BITS).powf(k * x as f64)).powf(k);
    }
    sum
}

fn raw_file(
    ctx: &Ctx<'_>,
    path: &Path,
    sst: &SstFile,
    l: &TableLayout,
) -> Result<RawFile, lightning_db::Error> {
    let page_size = index_page_size(ctx, path);
    let mut levels = Vec::new();
    let mut npages = 0;
    for lv in &l.index_levels {
        npages += lv.pages.len();
        let fan: Vec<f64> = lv.pages.iter().map(|p| p.entries as f64).collect();
        let fill: Vec<f64> = lv
            .pages
            .iter()
            .map(|p| p.uncompressed_size as f64 / page_size.max(1) as f64)
            .collect();
        levels.push(JsonIndexLevel {
            level: lv.level,
            pages: lv.pages.len(),
            fanout: MinAvgMax::of(&fan),
            fill: MinAvgMax::of(&fill),
            page_list: lv
                .pages
                .iter()
                .map(|p| JsonIndexPage {
                    offset: p.handle.offset,
                    size: p.handle.size,
                    uncompressed_size: p.uncompressed_size,
                    compression: p.compression,
                    entries: p.entries,
                    fill: p.uncompressed_size as f64 / page_size.max(1) as f64,
                    separators: p
                        .separators
                        .iter()
                        .map(|s| JsonIKey::new(s, Some(KEY_DISPLAY_MAX)))
                        .collect(),
                })
                .collect(),
        });
    }
    let filter = match &l.filter {
        Some(f) => {
            let mut n = 0u64;
            let mut last: Option<lightning_db::Bytes> = None;
            for e in sst.entries() {
                let e = e?;
                if last.as_ref() != Some(&e.key) {
                    n += 1;
                    last = Some(e.key);
                }
            }
            let m = f.num_bytes as u64 * 8;
            Some(JsonFilter {
                offset: f.handle.offset,
                size: f.handle.size,
                num_bytes: f.num_bytes,
                num_bits: m,
                num_probes: f.num_probes,
                bits_per_key: f.bits_per_key,
                num_keys: n,
                cache_local: f.cache_local,
                estimated_fp_rate: fp_rate(f.num_probes as f64, n as f64, m as f64, f.cache_local),
            })
        }
        None => None,
    };
    let mut blocks = Vec::new();
    for d in &l.data_blocks {
        let b = sst.data_block(d.handle)?;
        let ik = |e: &lightning_db::inspect::Entry| {
            JsonIKey::new(&encode_ikey(&e.key, e.seq, e.kind), Some(KEY_DISPLAY_MAX))
        };
        blocks.push(JsonDataBlock {
            offset: d.handle.offset,
            size: d.handle.size,
            stored_size: d.stored_size,
            uncompressed_size: d.uncompressed_size,
            compression: d.compression,
            entries: d.entries,
            restarts: d.restarts,
            first_key: b.entries.first().map(ik),
            last_key: b.entries.last().map(ik),
        });
    }
    let f = &l.footer;
    Ok(RawFile {
        file: path.display().to_string(),
        file_size: l.file_size,
        footer: JsonFooter {
            index_root: JsonHandle {
                offset: f.index_root.offset,
                size: f.index_root.size,
            },
            filter: f.has_filter().then_some(JsonHandle {
                offset: f.filter.offset,
                size: f.filter.size,
            }),
            properties: JsonHandle {
                offset: f.properties.offset,
                size: f.properties.size,
            },
            index_depth: f.index_depth,
            version: f.version,
        },
        properties: JsonProps::new(&l.properties),
        index: JsonIndex {
            depth: f.index_depth,
            pages: npages,
            index_page_size: page_size,
            levels,
        },
        filter,
        data_blocks: blocks,
    })
}

fn ikey_text(ctx: &Ctx<'_>, k: &JsonIKey) -> String {
    let b = parse_hex(&k.key.hex).unwrap_or_default();
    let mut s = ctx.style.bytes(&b);
    if k.key.truncated {
        s.push_str(&format!("…({} bytes)", k.key.size));
    }
    match (k.seq, k.kind) {
        (Some(seq), Some(kind)) => format!("{s} @ {} : {kind}", crate::fmt::seq_text(seq)),
        _ => format!("<invalid internal key {s}>"),
    }
}

fn write_raw(ctx: &mut Ctx<'_>, r: &RawFile, l: &TableLayout) -> io::Result<()> {
    let path = PathBuf::from(&r.file);
    writeln!(
        ctx.out,
        "File: {} ({} bytes, {})",
        r.file,
        r.file_size,
        human(r.file_size)
    )?;
    let f = &r.footer;
    writeln!(ctx.out, "Footer (format version {}):", f.version)?;
    writeln!(
        ctx.out,
        "  index root: offset {} size {}, depth {}",
        f.index_root.offset, f.index_root.size, f.index_depth
    )?;
    match &f.filter {
        Some(h) => writeln!(ctx.out, "  filter:     offset {} size {}", h.offset, h.size)?,
        None => writeln!(ctx.out, "  filter:     none")?,
    }
    writeln!(
        ctx.out,
        "  properties: offset {} size {}",
        f.properties.offset, f.properties.size
    )?;
    write_props(ctx, &path, &l.properties)?;
    let ix = &r.index;
    writeln!(
        ctx.out,
        "Index (B+Tree): depth {}, {} page{}, index_page_size {}",
        ix.depth,
        ix.pages,
        if ix.pages == 1 { "" } else { "s" },
        ix.index_page_size
    )?;
    for (i, lv) in ix.levels.iter().enumerate() {
        let role = match (i, lv.level) {
            (0, 1) => "root, leaf",
            (0, _) => "root",
            (_, 1) => "leaf",
            _ => "internal",
        };
        writeln!(
            ctx.out,
            "  level {} ({role}): {} page{}, fan-out min/avg/max {:.0}/{:.1}/{:.0}, fill min/avg/max {:.0}%/{:.0}%/{:.0}%",
            lv.level,
            lv.pages,
            if lv.pages == 1 { "" } else { "s" },
            lv.fanout.min,
            lv.fanout.avg,
            lv.fanout.max,
            lv.fill.min * 100.0,
            lv.fill.avg * 100.0,
            lv.fill.max * 100.0
        )?;
        for (j, p) in lv.page_list.iter().enumerate() {
            writeln!(
                ctx.out,
                "    page {j}: offset {} size {} (uncompressed {}, {}), {} entries, fill {:.0}%",
                p.offset,
                p.size,
                p.uncompressed_size,
                p.compression,
                p.entries,
                p.fill * 100.0
            )?;
            for s in &p.separators {
                writeln!(ctx.out, "      {}", ikey_text(ctx, s))?;
            }
        }
    }
    match &r.filter {
        Some(fl) => writeln!(
            ctx.out,
            "Filter: offset {} size {}: {} bytes ({} bits{}), {} probes, {} bits/key, {} keys, estimated false-positive rate {:.4}%",
            fl.offset,
            fl.size,
            fl.num_bytes,
            fl.num_bits,
            if fl.cache_local { ", cache-local 512-bit lines" } else { "" },
            fl.num_probes,
            fl.bits_per_key,
            fl.num_keys,
            fl.estimated_fp_rate * 100.0
        )?,
        None => writeln!(ctx.out, "Filter: none")?,
    }
    writeln!(ctx.out, "Data blocks: {}", r.data_blocks.len())?;
    writeln!(
        ctx.out,
        "  {:>5} {:>10} {:>8} {:>8} {:>5} {:>7} {:>8}  key range",
        "#", "offset", "size", "uncomp", "comp", "entries", "restarts"
    )?;
    for (i, d) in r.data_blocks.iter().enumerate() {
        let range = match (&d.first_key, &d.last_key) {
            (Some(a), Some(b)) => format!("{} .. {}", ikey_text(ctx, a), ikey_text(ctx, b)),
            _ => String::new(),
        };
        writeln!(
            ctx.out,
            "  {:>5} {:>10} {:>8} {:>8} {:>5} {:>7} {:>8}  {range}",
            i, d.offset, d.size, d.uncompressed_size, d.compression, d.entries, d.restarts
        )?;
    }
    Ok(())
}

/// `--command=raw`.
pub fn raw(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let mut files = Vec::new();
    for_each_sst(ctx, |ctx, path, sst| {
        let sst = match sst {
            Ok(s) => s,
            Err(p) => {
                ctx.problem(p);
                return Ok(());
            }
        };
        let r = sst
            .layout()
            .and_then(|l| raw_file(ctx, path, &sst, &l).map(|r| (r, l)));
        match r {
            Ok((r, l)) => {
                if ctx.args.json {
                    files.push(r);
                } else {
                    write_raw(ctx, &r, &l)?;
                }
            }
            Err(e) => ctx.error(path, &e),
        }
        Ok(())
    })?;
    if ctx.args.json {
        #[derive(Serialize)]
        struct Body {
            files: Vec<RawFile>,
        }
        emit_json(ctx, Body { files })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Recompress

/// A compression setting to try.
#[derive(Debug, Clone, Copy)]
struct Setting {
    /// None: no compression.
    zstd_level: Option<i32>,
}

impl Setting {
    fn parse(s: &str) -> Result<Setting, String> {
        match s {
            "none" => Ok(Setting { zstd_level: None }),
            "zstd" => Ok(Setting {
                zstd_level: Some(3),
            }),
            _ => {
                let lvl = s
                    .strip_prefix("zstd:")
                    .and_then(|l| l.parse::<i32>().ok())
                    .filter(|l| (1..=22).contains(l))
                    .ok_or_else(|| {
                        format!(
                            "--compression {s:?}: expected none, zstd or zstd:N with N in 1..=22"
                        )
                    })?;
                Ok(Setting {
                    zstd_level: Some(lvl),
                })
            }
        }
    }

    fn name(&self) -> String {
        match self.zstd_level {
            None => "none".into(),
            Some(l) => format!("zstd:{l}"),
        }
    }
}

#[derive(Serialize, Clone)]
struct RecompressResult {
    compression: String,
    /// Bytes the data blocks would take, with their 5-byte trailers (a
    /// block is stored compressed only when that saves 1/8 of it, as the
    /// engine does).
    data_size: u64,
    /// Blocks that would be stored compressed.
    blocks_compressed: u64,
    /// uncompressed_size / data_size.
    ratio: f64,
    /// Time spent compressing, in milliseconds.
    compress_ms: f64,
}

#[derive(Serialize)]
struct RecompressFile {
    file: String,
    data_blocks: u64,
    /// Uncompressed data block contents, with trailers.
    uncompressed_size: u64,
    /// What the data blocks take now (properties' data_size).
    current_data_size: u64,
    current_compression: String,
    results: Vec<RecompressResult>,
}

/// `--command=recompress`.
pub fn recompress(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let specs = if ctx.args.compression.is_empty() {
        vec![
            "none".into(),
            "zstd:1".into(),
            "zstd:3".into(),
            "zstd:9".into(),
        ]
    } else {
        ctx.args.compression.clone()
    };
    let mut settings = Vec::new();
    for s in &specs {
        match Setting::parse(s) {
            Ok(s) => settings.push(s),
            Err(m) => ctx.problem(Problem::other(
                Path::new("--compression"),
                "invalid_argument",
                m,
            )),
        }
    }
    if !ctx.problems.is_empty() {
        return if ctx.args.json {
            emit_json(
                ctx,
                RecompressBody {
                    files: Vec::new(),
                    total: None,
                },
            )
        } else {
            Ok(())
        };
    }
    let mut files: Vec<RecompressFile> = Vec::new();
    for_each_sst(ctx, |ctx, path, sst| {
        let sst = match sst {
            Ok(s) => s,
            Err(p) => {
                ctx.problem(p);
                return Ok(());
            }
        };
        if ctx.args.show_properties && !ctx.args.json {
            write_props(ctx, path, sst.properties())?;
        }
        let refs = match sst.data_block_refs() {
            Ok(r) => r,
            Err(e) => {
                ctx.error(path, &e);
                return Ok(());
            }
        };
        let mut rf = RecompressFile {
            file: path.display().to_string(),
            data_blocks: refs.len() as u64,
            uncompressed_size: 0,
            current_data_size: sst.properties().data_size,
            current_compression: sst.properties().compression.clone(),
            results: settings
                .iter()
                .map(|s| RecompressResult {
                    compression: s.name(),
                    data_size: 0,
                    blocks_compressed: 0,
                    ratio: 0.0,
                    compress_ms: 0.0,
                })
                .collect(),
        };
        let progress = ctx.progress(refs.len() as u64, "blocks");
        for r in &refs {
            progress.inc(1);
            let b = match sst.data_block(r.handle) {
                Ok(b) => b,
                Err(e) => {
                    ctx.error(path, &e);
                    return Ok(());
                }
            };
            let raw = &b.contents[..];
            rf.uncompressed_size += raw.len() as u64 + 5;
            for (s, res) in settings.iter().zip(rf.results.iter_mut()) {
                let mut stored = raw.len() as u64;
                if let Some(level) = s.zstd_level {
                    if raw.len() >= 64 {
                        let t = Instant::now();
                        let c = zstd::bulk::compress(raw, level)?;
                        res.compress_ms += t.elapsed().as_secs_f64() * 1000.0;
                        if c.len() <= raw.len() - raw.len() / 8 {
                            stored = c.len() as u64;
                            res.blocks_compressed += 1;
                        }
                    }
                }
                res.data_size += stored + 5;
            }
        }
        for res in &mut rf.results {
            res.ratio = ratio(rf.uncompressed_size, res.data_size);
        }
        if !ctx.args.json {
            write_recompress(ctx, &rf)?;
        }
        files.push(rf);
        Ok(())
    })?;
    let total = (files.len() > 1).then(|| {
        let mut t = RecompressFile {
            file: "(total)".into(),
            data_blocks: files.iter().map(|f| f.data_blocks).sum(),
            uncompressed_size: files.iter().map(|f| f.uncompressed_size).sum(),
            current_data_size: files.iter().map(|f| f.current_data_size).sum(),
            current_compression: "mixed".into(),
            results: files[0].results.clone(),
        };
        for (i, r) in t.results.iter_mut().enumerate() {
            r.data_size = files.iter().map(|f| f.results[i].data_size).sum();
            r.blocks_compressed = files.iter().map(|f| f.results[i].blocks_compressed).sum();
            r.compress_ms = files.iter().map(|f| f.results[i].compress_ms).sum();
            r.ratio = ratio(t.uncompressed_size, r.data_size);
        }
        t
    });
    if ctx.args.json {
        emit_json(ctx, RecompressBody { files, total })?;
    } else if let Some(t) = &total {
        write_recompress(ctx, t)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct RecompressBody {
    files: Vec<RecompressFile>,
    /// Sums over all files (null with one file).
    total: Option<RecompressFile>,
}

fn write_recompress(ctx: &mut Ctx<'_>, f: &RecompressFile) -> io::Result<()> {
    writeln!(
        ctx.out,
        "{}: {} data blocks, {} uncompressed, now {} ({})",
        f.file,
        f.data_blocks,
        human(f.uncompressed_size),
        human(f.current_data_size),
        f.current_compression
    )?;
    writeln!(
        ctx.out,
        "  {:<10} {:>12} {:>10} {:>7} {:>12} {:>10}",
        "setting", "data size", "", "ratio", "compressed", "time"
    )?;
    for r in &f.results {
        writeln!(
            ctx.out,
            "  {:<10} {:>12} {:>10} {:>7.2} {:>12} {:>8.1}ms",
            r.compression,
            r.data_size,
            human(r.data_size),
            r.ratio,
            format!("{}/{}", r.blocks_compressed, f.data_blocks),
            r.compress_ms
        )?;
    }
    Ok(())
}
