//! `--command=scan`: the entries of SST files, in order, within bounds.

use super::*;

#[derive(Serialize)]
struct ScanEntry {
    key: JsonBytes,
    seq: u64,
    kind: &'static str,
    /// Null for a tombstone.
    value: Option<JsonBytes>,
}

#[derive(Serialize)]
struct ScanRangeDeletion {
    start: JsonBytes,
    end: JsonBytes,
    seq: u64,
}

#[derive(Serialize)]
struct ScanFile {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<JsonProps>,
    entries: Vec<ScanEntry>,
    /// The file's range tombstones overlapping the bounds (after the
    /// entries in the text output, as RocksDB's `sst_dump` prints them).
    range_deletions: Vec<ScanRangeDeletion>,
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
            range_deletions: Vec::new(),
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
                    ValueKind::Value | ValueKind::Merge => writeln!(
                        ctx.out,
                        "{} @ {} : {} => {}",
                        s.bytes(&e.key),
                        e.seq,
                        kind_name(e.kind),
                        s.value(&e.value)
                    )?,
                    ValueKind::TimedValue if e.value.len() >= 8 => {
                        let (v, t) = e.value.split_at(e.value.len() - 8);
                        let mut ms = [0u8; 8];
                        ms.copy_from_slice(t);
                        writeln!(
                            ctx.out,
                            "{} @ {} : put_timed => {} (written at {} ms)",
                            s.bytes(&e.key),
                            e.seq,
                            s.value(v),
                            u64::from_le_bytes(ms)
                        )?
                    }
                    ValueKind::BlobIndex => match inspect::decode_blob_reference(&e.value) {
                        Some(r) => writeln!(
                            ctx.out,
                            "{} @ {} : blob => file {} offset {} stored {} bytes, value {} bytes",
                            s.bytes(&e.key),
                            e.seq,
                            r.file_number,
                            r.offset,
                            r.stored_len,
                            r.value_len
                        )?,
                        None => writeln!(
                            ctx.out,
                            "{} @ {} : blob => (bad reference {})",
                            s.bytes(&e.key),
                            e.seq,
                            s.value(&e.value)
                        )?,
                    },
                    k => writeln!(
                        ctx.out,
                        "{} @ {} : {}",
                        s.bytes(&e.key),
                        e.seq,
                        kind_name(k)
                    )?,
                }
            }
            last = Some(e.key);
        }
        for rd in sst.range_deletions() {
            let before = b.start.as_deref().is_some_and(|s| rd.end[..] <= *s);
            let after = b.to.as_deref().is_some_and(|t| rd.start[..] >= *t);
            // The keys with prefix `p` are `[p, successor of p)`.
            let outside_prefix = b.prefix.as_deref().is_some_and(|p| {
                rd.end[..] <= *p
                    || lightning_db::inspect::prefix_successor(p)
                        .is_some_and(|e| rd.start[..] >= e[..])
            });
            if before || after || outside_prefix {
                continue;
            }
            if ctx.args.json {
                jf.range_deletions.push(ScanRangeDeletion {
                    start: JsonBytes::full(&rd.start),
                    end: JsonBytes::full(&rd.end),
                    seq: rd.seq,
                });
            } else {
                let s = ctx.style;
                writeln!(
                    ctx.out,
                    "[{} .. {}) @ {} : delete_range",
                    s.bytes(&rd.start),
                    s.bytes(&rd.end),
                    rd.seq
                )?;
            }
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
