//! Commands on a database directory and its logs: summary, manifest, wal.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use lightning_db::inspect::{
    read_current, read_manifest, read_wal, split_internal_key, FileMetaData, SstFile, ValueKind,
    VersionEdit, WalOpKind,
};
use serde::Serialize;

use crate::fmt::{human, JsonBytes, JsonIKey, Problem};
use crate::{emit_json, expand, Ctx};

fn manifest_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("MANIFEST-{n:06}"))
}

fn sst_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.sst"))
}

// ---------------------------------------------------------------------------
// Manifest

#[derive(Serialize)]
struct JsonNewFile {
    level: u32,
    number: u64,
    file_size: u64,
    smallest: JsonIKey,
    largest: JsonIKey,
    smallest_seq: u64,
    largest_seq: u64,
    num_entries: u64,
    num_deletions: u64,
}

#[derive(Serialize)]
struct JsonDeletedFile {
    level: u32,
    number: u64,
}

#[derive(Serialize)]
struct JsonEdit {
    offset: u64,
    /// The keyspace the edit's files and log number belong to (0:
    /// `default`).
    keyspace: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyspace_added: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    keyspace_dropped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_keyspace_id: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keyspace_log_numbers: Vec<(u32, u64)>,
    log_number: Option<u64>,
    next_file_number: Option<u64>,
    last_sequence: Option<u64>,
    new_files: Vec<JsonNewFile>,
    deleted_files: Vec<JsonDeletedFile>,
}

impl JsonEdit {
    fn new(offset: u64, e: &VersionEdit) -> JsonEdit {
        JsonEdit {
            offset,
            keyspace: e.keyspace,
            keyspace_added: e.keyspace_added.clone(),
            keyspace_dropped: e.keyspace_dropped,
            max_keyspace_id: e.max_keyspace_id,
            keyspace_log_numbers: e.keyspace_log_numbers.clone(),
            log_number: e.log_number,
            next_file_number: e.next_file_number,
            last_sequence: e.last_sequence,
            new_files: e
                .new_files
                .iter()
                .map(|(level, f)| JsonNewFile {
                    level: *level,
                    number: f.number,
                    file_size: f.file_size,
                    smallest: JsonIKey::new(&f.smallest, None),
                    largest: JsonIKey::new(&f.largest, None),
                    smallest_seq: f.smallest_seq,
                    largest_seq: f.largest_seq,
                    num_entries: f.num_entries,
                    num_deletions: f.num_deletions,
                })
                .collect(),
            deleted_files: e
                .deleted_files
                .iter()
                .map(|&(level, number)| JsonDeletedFile { level, number })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct ManifestFile {
    file: String,
    edits: Vec<JsonEdit>,
    error: Option<Problem>,
}

/// The manifests to read: the files given, or for a directory the one its
/// CURRENT names.
fn manifest_inputs(ctx: &mut Ctx<'_>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in ctx.args.files.clone() {
        if p.is_dir() {
            match read_current(&p) {
                Ok(n) => out.push(manifest_path(&p, n)),
                Err(e) => ctx.error(&p.join("CURRENT"), &e),
            }
        } else {
            out.push(p);
        }
    }
    out
}

/// `--command=manifest`.
pub fn manifest(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let mut files = Vec::new();
    for path in manifest_inputs(ctx) {
        let mut mf = ManifestFile {
            file: path.display().to_string(),
            edits: Vec::new(),
            error: None,
        };
        match read_manifest(&path) {
            Ok(edits) => {
                if ctx.args.json {
                    mf.edits = edits.iter().map(|(o, e)| JsonEdit::new(*o, e)).collect();
                } else {
                    writeln!(ctx.out, "{} ({} edits)", path.display(), edits.len())?;
                    for (off, e) in &edits {
                        write_edit(ctx, *off, e)?;
                    }
                }
            }
            Err(e) => {
                let p = Problem::from_error(&path, &e);
                mf.error = Some(p.clone());
                ctx.problem(p);
            }
        }
        files.push(mf);
    }
    if ctx.args.json {
        #[derive(Serialize)]
        struct Body {
            files: Vec<ManifestFile>,
        }
        emit_json(ctx, Body { files })?;
    }
    Ok(())
}

fn write_edit(ctx: &mut Ctx<'_>, off: u64, e: &VersionEdit) -> io::Result<()> {
    let mut fields = Vec::new();
    if e.keyspace != 0 {
        fields.push(format!("keyspace {}", e.keyspace));
    }
    if let Some(name) = &e.keyspace_added {
        fields.push(format!("adds keyspace {:?}", name));
    }
    if e.keyspace_dropped {
        fields.push("drops the keyspace".to_string());
    }
    if let Some(n) = e.max_keyspace_id {
        fields.push(format!("max_keyspace_id {n}"));
    }
    if let Some(n) = e.log_number {
        fields.push(format!("log_number {n}"));
    }
    for (ks, n) in &e.keyspace_log_numbers {
        fields.push(format!("log_number {n} of keyspace {ks}"));
    }
    if let Some(n) = e.next_file_number {
        fields.push(format!("next_file_number {n}"));
    }
    if let Some(n) = e.last_sequence {
        fields.push(format!("last_sequence {n}"));
    }
    writeln!(ctx.out, "edit @ {off}: {}", fields.join(", "))?;
    for (level, f) in &e.new_files {
        writeln!(
            ctx.out,
            "  + L{level} #{:06} {} bytes, {} .. {}, seq {}..{}, {} entries, {} deletions",
            f.number,
            f.file_size,
            ctx.style.ikey(&f.smallest, Some(32)),
            ctx.style.ikey(&f.largest, Some(32)),
            f.smallest_seq,
            f.largest_seq,
            f.num_entries,
            f.num_deletions
        )?;
    }
    for (level, n) in &e.deleted_files {
        writeln!(ctx.out, "  - L{level} #{n:06}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// WAL

/// Serde's test for leaving a [`JsonOp`]'s keyspace out.
fn is_default_keyspace(ks: &u32) -> bool {
    *ks == 0
}

#[derive(Serialize)]
struct JsonOp {
    seq: u64,
    /// The operation's keyspace; left out for the default one (0).
    #[serde(skip_serializing_if = "is_default_keyspace")]
    keyspace: u32,
    kind: &'static str,
    key: JsonBytes,
    /// Null for a delete; the range's end for a delete_range.
    value: Option<JsonBytes>,
}

#[derive(Serialize)]
struct JsonBatch {
    offset: u64,
    sequence: u64,
    count: usize,
    ops: Vec<JsonOp>,
}

#[derive(Serialize)]
struct JsonTorn {
    offset: u64,
    reason: &'static str,
}

#[derive(Serialize)]
struct WalFile {
    file: String,
    file_number: Option<u64>,
    batches: Vec<JsonBatch>,
    /// A torn last record (normal after a crash; not a problem).
    torn_tail: Option<JsonTorn>,
    /// The database was open by a writer: the WAL was read as it was at
    /// that moment (a torn tail may be a write in progress).
    live: bool,
    error: Option<Problem>,
}

/// `--command=wal`.
pub fn wal(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let inputs = expand(ctx, "*.log files", |n| n.ends_with(".log"));
    let mut files = Vec::new();
    for input in inputs {
        let path = input.path;
        let mut wf = WalFile {
            file: path.display().to_string(),
            file_number: None,
            batches: Vec::new(),
            torn_tail: None,
            live: false,
            error: None,
        };
        match read_wal(&path) {
            Ok(w) => {
                wf.file_number = Some(w.file_number);
                wf.live = w.live;
                wf.torn_tail = w
                    .torn_tail
                    .map(|(offset, reason)| JsonTorn { offset, reason });
                let ops: usize = w.batches.iter().map(|b| b.ops.len()).sum();
                if !ctx.args.json {
                    writeln!(
                        ctx.out,
                        "{} (file number {}): {} batches, {} ops",
                        path.display(),
                        w.file_number,
                        w.batches.len(),
                        ops
                    )?;
                    if w.live {
                        writeln!(
                            ctx.out,
                            "(live: the database is open for writing; read as it was now, \
                             a torn tail may be a write in progress)"
                        )?;
                    }
                }
                let s = ctx.style;
                for b in &w.batches {
                    if ctx.args.json {
                        wf.batches.push(JsonBatch {
                            offset: b.offset,
                            sequence: b.sequence,
                            count: b.ops.len(),
                            ops: b
                                .ops
                                .iter()
                                .enumerate()
                                .zip(&b.keyspaces)
                                .map(|((i, (k, key, value)), ks)| JsonOp {
                                    seq: b.sequence + i as u64,
                                    keyspace: *ks,
                                    kind: k.name(),
                                    key: JsonBytes::full(key),
                                    value: (*k != WalOpKind::Delete)
                                        .then(|| JsonBytes::cut(value, s.width)),
                                })
                                .collect(),
                        });
                        continue;
                    }
                    writeln!(
                        ctx.out,
                        "batch @ {}: sequence {}, {} op{}",
                        b.offset,
                        b.sequence,
                        b.ops.len(),
                        if b.ops.len() == 1 { "" } else { "s" }
                    )?;
                    for ((i, (k, key, value)), ks) in b.ops.iter().enumerate().zip(&b.keyspaces) {
                        let seq = b.sequence + i as u64;
                        // The keyspace, only when not the default one.
                        let ks = match ks {
                            0 => String::new(),
                            n => format!("ks={n} "),
                        };
                        match k {
                            WalOpKind::Put | WalOpKind::Merge | WalOpKind::PutTimed => writeln!(
                                ctx.out,
                                "  {ks}{} @ {seq} : {} => {}",
                                s.bytes(key),
                                k.name(),
                                s.value(value)
                            )?,
                            WalOpKind::PutBlob => match lightning_db::inspect::decode_blob_reference(value) {
                                Some(r) => writeln!(
                                    ctx.out,
                                    "  {ks}{} @ {seq} : put_blob => file {} offset {} stored {} bytes, value {} bytes",
                                    s.bytes(key),
                                    r.file_number,
                                    r.offset,
                                    r.stored_len,
                                    r.value_len
                                )?,
                                None => writeln!(
                                    ctx.out,
                                    "  {ks}{} @ {seq} : put_blob => (bad reference {})",
                                    s.bytes(key),
                                    s.value(value)
                                )?,
                            },
                            WalOpKind::DeleteRange => writeln!(
                                ctx.out,
                                "  {ks}[{} .. {}) @ {seq} : delete_range",
                                s.bytes(key),
                                s.bytes(value)
                            )?,
                            k => {
                                writeln!(ctx.out, "  {ks}{} @ {seq} : {}", s.bytes(key), k.name())?
                            }
                        }
                    }
                }
                if let Some((off, reason)) = w.torn_tail {
                    if !ctx.args.json {
                        writeln!(
                            ctx.out,
                            "torn tail at offset {off}: {reason} ({})",
                            if w.live {
                                "a write in progress, or dropped as recovery does"
                            } else {
                                "dropped, as recovery does"
                            }
                        )?;
                    }
                }
            }
            Err(e) => {
                let p = Problem::from_error(&path, &e);
                wf.error = Some(p.clone());
                ctx.problem(p);
            }
        }
        files.push(wf);
    }
    if ctx.args.json {
        #[derive(Serialize)]
        struct Body {
            files: Vec<WalFile>,
        }
        emit_json(ctx, Body { files })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Summary

/// Power-of-two histogram: bucket 0 holds 0, bucket `i > 0` holds
/// `[2^(i-1), 2^i)`.
#[derive(Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: u64,
    max: u64,
}

impl Histogram {
    fn add(&mut self, v: u64) {
        let b = (64 - v.leading_zeros()) as usize;
        if self.buckets.len() <= b {
            self.buckets.resize(b + 1, 0);
        }
        self.buckets[b] += 1;
        self.count += 1;
        self.sum += v;
        self.max = self.max.max(v);
    }

    fn bounds(i: usize) -> (u64, u64) {
        if i == 0 {
            (0, 0)
        } else {
            (1u64 << (i - 1), (1u64 << i) - 1)
        }
    }

    fn json(&self) -> JsonHistogram {
        JsonHistogram {
            count: self.count,
            sum: self.sum,
            max: self.max,
            average: if self.count == 0 {
                0.0
            } else {
                self.sum as f64 / self.count as f64
            },
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &n)| {
                    let (min, max) = Self::bounds(i);
                    JsonBucket { min, max, count: n }
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct JsonBucket {
    /// Smallest size in the bucket (inclusive).
    min: u64,
    /// Largest size in the bucket (inclusive).
    max: u64,
    count: u64,
}

#[derive(Serialize)]
struct JsonHistogram {
    count: u64,
    sum: u64,
    max: u64,
    average: f64,
    /// Non-empty buckets only.
    buckets: Vec<JsonBucket>,
}

#[derive(Serialize)]
struct JsonLevel {
    /// The keyspace the level belongs to.
    keyspace: String,
    level: u32,
    files: usize,
    size: u64,
    entries: u64,
    deletions: u64,
    /// deletions / entries.
    tombstone_ratio: f64,
    /// (raw key + value bytes) / data size, over the files that opened.
    compression_ratio: f64,
    smallest_key: Option<JsonIKey>,
    largest_key: Option<JsonIKey>,
    smallest_seq: Option<u64>,
    largest_seq: Option<u64>,
    file_numbers: Vec<u64>,
}

#[derive(Serialize)]
struct JsonDb {
    dir: String,
    manifest: String,
    log_number: Option<u64>,
    next_file_number: Option<u64>,
    last_sequence: Option<u64>,
    levels: Vec<JsonLevel>,
    total_files: usize,
    total_size: u64,
    /// User key sizes of every entry (all versions) of the live files.
    key_sizes: JsonHistogram,
    /// Value sizes of every put (tombstones excluded) of the live files.
    value_sizes: JsonHistogram,
}

fn summarize(ctx: &mut Ctx<'_>, dir: &Path) -> io::Result<Option<JsonDb>> {
    let n = match read_current(dir) {
        Ok(n) => n,
        Err(e) => {
            ctx.error(&dir.join("CURRENT"), &e);
            return Ok(None);
        }
    };
    let mpath = manifest_path(dir, n);
    let edits = match read_manifest(&mpath) {
        Ok(e) => e,
        Err(e) => {
            ctx.error(&mpath, &e);
            return Ok(None);
        }
    };
    // (keyspace id, level) -> files; keyspace id -> (name, log number).
    let mut levels: BTreeMap<(u32, u32), BTreeMap<u64, FileMetaData>> = BTreeMap::new();
    let mut keyspaces: BTreeMap<u32, (String, Option<u64>)> =
        BTreeMap::from([(0, ("default".to_string(), None))]);
    let (mut next_file, mut last_seq) = (None, None);
    for (_, e) in edits {
        let ks = e.keyspace;
        if let Some(name) = &e.keyspace_added {
            keyspaces.insert(ks, (name.clone(), None));
        }
        if e.keyspace_dropped {
            keyspaces.remove(&ks);
            levels.retain(|(k, _), _| *k != ks);
        }
        for (level, num) in &e.deleted_files {
            if let Some(l) = levels.get_mut(&(ks, *level)) {
                l.remove(num);
            }
        }
        for (level, f) in e.new_files {
            levels.entry((ks, level)).or_default().insert(f.number, f);
        }
        if let (Some(n), Some(k)) = (e.log_number, keyspaces.get_mut(&ks)) {
            k.1 = Some(n);
        }
        for (other, n) in e.keyspace_log_numbers {
            if let Some(k) = keyspaces.get_mut(&other) {
                k.1 = Some(n);
            }
        }
        next_file = e.next_file_number.or(next_file);
        last_seq = e.last_sequence.or(last_seq);
    }
    // The oldest WAL some keyspace still needs.
    let log_number = keyspaces.values().filter_map(|(_, n)| *n).min();
    levels.retain(|_, files| !files.is_empty());
    let total_entries: u64 = levels
        .values()
        .flat_map(|l| l.values())
        .map(|f| f.num_entries)
        .sum();
    let progress = ctx.progress(total_entries, "entries");
    let mut keys = Histogram::default();
    let mut values = Histogram::default();
    let mut out_levels = Vec::new();
    for (&(ks, level), files) in &levels {
        let mut raw = 0u64;
        let mut data = 0u64;
        for f in files.values() {
            let path = sst_path(dir, f.number);
            let sst = match SstFile::open(&path) {
                Ok(s) => s,
                Err(e) => {
                    ctx.error(&path, &e);
                    continue;
                }
            };
            let p = sst.properties();
            raw += p.raw_key_size + p.raw_value_size;
            data += p.data_size;
            for e in sst.entries() {
                progress.inc(1);
                match e {
                    Ok(e) => {
                        keys.add(e.key.len() as u64);
                        if matches!(e.kind, ValueKind::Value | ValueKind::TimedValue) {
                            values.add(e.value.len() as u64);
                        }
                    }
                    Err(err) => {
                        ctx.error(&path, &err);
                        break;
                    }
                }
            }
        }
        let entries: u64 = files.values().map(|f| f.num_entries).sum();
        let deletions: u64 = files.values().map(|f| f.num_deletions).sum();
        let user = |k: &Vec<u8>| split_internal_key(k).map(|(u, _, _)| u.to_vec());
        let smallest = files
            .values()
            .min_by_key(|f| user(&f.smallest))
            .map(|f| JsonIKey::new(&f.smallest, None));
        let largest = files
            .values()
            .max_by_key(|f| user(&f.largest))
            .map(|f| JsonIKey::new(&f.largest, None));
        out_levels.push(JsonLevel {
            keyspace: keyspaces.get(&ks).map_or_else(String::new, |k| k.0.clone()),
            level,
            files: files.len(),
            size: files.values().map(|f| f.file_size).sum(),
            entries,
            deletions,
            tombstone_ratio: if entries == 0 {
                0.0
            } else {
                deletions as f64 / entries as f64
            },
            compression_ratio: if data == 0 {
                0.0
            } else {
                raw as f64 / data as f64
            },
            smallest_key: smallest,
            largest_key: largest,
            smallest_seq: files.values().map(|f| f.smallest_seq).min(),
            largest_seq: files.values().map(|f| f.largest_seq).max(),
            file_numbers: files.keys().copied().collect(),
        });
    }
    drop(progress);
    Ok(Some(JsonDb {
        dir: dir.display().to_string(),
        manifest: mpath.display().to_string(),
        log_number,
        next_file_number: next_file,
        last_sequence: last_seq,
        total_files: out_levels.iter().map(|l| l.files).sum(),
        total_size: out_levels.iter().map(|l| l.size).sum(),
        levels: out_levels,
        key_sizes: keys.json(),
        value_sizes: values.json(),
    }))
}

fn write_hist(ctx: &mut Ctx<'_>, title: &str, h: &JsonHistogram) -> io::Result<()> {
    writeln!(
        ctx.out,
        "{title}: {} samples, average {:.1}, max {}",
        h.count, h.average, h.max
    )?;
    let peak = h.buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    for b in &h.buckets {
        let bar = "#".repeat(((b.count * 40).div_ceil(peak)) as usize);
        let pct = 100.0 * b.count as f64 / h.count.max(1) as f64;
        writeln!(
            ctx.out,
            "  {:>10} .. {:<10} {:>10} {:>6.2}% {bar}",
            b.min, b.max, b.count, pct
        )?;
    }
    Ok(())
}

fn write_summary(ctx: &mut Ctx<'_>, d: &JsonDb) -> io::Result<()> {
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    writeln!(
        ctx.out,
        "Database {} ({}; last sequence {}, next file number {}, log number {})",
        d.dir,
        d.manifest,
        opt(d.last_sequence),
        opt(d.next_file_number),
        opt(d.log_number)
    )?;
    writeln!(
        ctx.out,
        "{:<5} {:>5} {:>11} {:>10} {:>10} {:>8} {:>6} {:>21}  key range",
        "Level", "Files", "Size", "Entries", "Deletions", "Tomb%", "Comp", "Seq range"
    )?;
    let several = d.levels.iter().any(|l| l.keyspace != "default");
    let mut shown: Option<&str> = None;
    for l in &d.levels {
        if several && shown != Some(l.keyspace.as_str()) {
            writeln!(ctx.out, "[keyspace {}]", l.keyspace)?;
            shown = Some(&l.keyspace);
        }
        let range = match (&l.smallest_key, &l.largest_key) {
            (Some(a), Some(b)) => format!("{} .. {}", short_key(ctx, a), short_key(ctx, b)),
            _ => String::new(),
        };
        writeln!(
            ctx.out,
            "L{:<4} {:>5} {:>11} {:>10} {:>10} {:>7.2}% {:>6.2} {:>21}  {range}",
            l.level,
            l.files,
            human(l.size),
            l.entries,
            l.deletions,
            l.tombstone_ratio * 100.0,
            l.compression_ratio,
            format!("{}..{}", opt(l.smallest_seq), opt(l.largest_seq)),
        )?;
    }
    writeln!(
        ctx.out,
        "Total {:>5} {:>11}",
        d.total_files,
        human(d.total_size)
    )?;
    write_hist(
        ctx,
        "Key sizes (bytes, every version in live files)",
        &d.key_sizes,
    )?;
    write_hist(
        ctx,
        "Value sizes (bytes, every put in live files)",
        &d.value_sizes,
    )
}

fn short_key(ctx: &Ctx<'_>, k: &JsonIKey) -> String {
    let b = crate::fmt::parse_hex(&k.key.hex).unwrap_or_default();
    let cut = b.len().min(24);
    let mut s = ctx.style.bytes(&b[..cut]);
    if b.len() > cut {
        s.push('…');
    }
    s
}

/// `--command=summary`.
pub fn summary(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let mut dbs = Vec::new();
    for p in ctx.args.files.clone() {
        if !p.is_dir() {
            ctx.problem(Problem::other(
                &p,
                "invalid_argument",
                "summary needs a database directory (one holding CURRENT)",
            ));
            continue;
        }
        if let Some(d) = summarize(ctx, &p)? {
            if !ctx.args.json {
                write_summary(ctx, &d)?;
            }
            dbs.push(d);
        }
    }
    if ctx.args.json {
        #[derive(Serialize)]
        struct Body {
            databases: Vec<JsonDb>,
        }
        emit_json(ctx, Body { databases: dbs })?;
    }
    Ok(())
}
