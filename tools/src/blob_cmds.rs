//! `--command=blob`: lists and checks blob files (key-value separation).

use std::io;

use lightning_db::inspect::read_blob_file;
use serde::Serialize;

use crate::fmt::{human, JsonBytes, Problem};
use crate::{emit_json, expand, vanished, Ctx};

#[derive(Serialize)]
struct BlobFileJson {
    file: String,
    file_number: Option<u64>,
    file_size: Option<u64>,
    blob_count: Option<u64>,
    blob_bytes: Option<u64>,
    records: Vec<BlobRecordJson>,
    ok: bool,
    problem: Option<Problem>,
    /// The file ends in a footer (`false`: still being written, or left
    /// by a crash).
    finished: Option<bool>,
    /// Of an unfinished file: where and why its whole records stop (a
    /// write in progress or a crash's; not damage).
    torn_tail: Option<Problem>,
}

#[derive(Serialize)]
struct BlobRecordJson {
    offset: u64,
    key: JsonBytes,
    value_offset: u64,
    stored_len: u32,
    value_len: u32,
}

#[derive(Serialize)]
struct BlobBody {
    files: Vec<BlobFileJson>,
    files_ok: u64,
    files_unfinished: u64,
    files_failed: u64,
}

/// `--command=blob`: every record of each blob file (key, offset, stored
/// and value sizes, at most `--limit` per file), with every checksum
/// checked and every compressed value decompressed. A file without a
/// footer is listed as unfinished (the write path is appending to it, or a
/// crash left it), up to its first record that is not whole: not a
/// failure.
pub fn blob(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let inputs = expand(ctx, "*.blob files", |n| n.ends_with(".blob"));
    let mut files = Vec::new();
    let (mut ok, mut unfinished, mut failed) = (0u64, 0u64, 0u64);
    for input in inputs {
        let path = input.path.clone();
        let mut jf = BlobFileJson {
            file: path.display().to_string(),
            file_number: None,
            file_size: None,
            blob_count: None,
            blob_bytes: None,
            records: Vec::new(),
            ok: false,
            problem: None,
            finished: None,
            torn_tail: None,
        };
        let contents = match read_blob_file(&path) {
            Ok(c) => c,
            Err(e) if vanished(&input, &e) => continue,
            Err(e) => {
                let p = Problem::from_error(&path, &e);
                if !ctx.args.json {
                    writeln!(ctx.out, "FAILED  {}\n  {p}", path.display())?;
                }
                jf.problem = Some(p.clone());
                ctx.problem(p);
                failed += 1;
                files.push(jf);
                continue;
            }
        };
        jf.file_number = Some(contents.file_number);
        jf.file_size = Some(contents.file_size);
        jf.blob_count = Some(contents.blob_count);
        jf.blob_bytes = Some(contents.blob_bytes);
        jf.finished = Some(contents.finished);
        if !ctx.args.json {
            writeln!(
                ctx.out,
                "{} (file number {}){}: {} records, {} of records, {} file",
                path.display(),
                contents.file_number,
                if contents.finished {
                    ""
                } else {
                    ", unfinished"
                },
                contents.blob_count,
                human(contents.blob_bytes),
                human(contents.file_size)
            )?;
        }
        let limit = ctx.args.limit.unwrap_or(u64::MAX);
        let s = ctx.style;
        for r in contents.records.iter().take(limit as usize) {
            if ctx.args.json {
                jf.records.push(BlobRecordJson {
                    offset: r.offset,
                    key: JsonBytes::full(&r.key),
                    value_offset: r.value_offset,
                    stored_len: r.stored_len,
                    value_len: r.value_len,
                });
            } else {
                writeln!(
                    ctx.out,
                    "  {} @ offset {} : value at {}, stored {} bytes, value {} bytes{}",
                    s.bytes(&r.key),
                    r.offset,
                    r.value_offset,
                    r.stored_len,
                    r.value_len,
                    if r.stored_len < r.value_len {
                        " (zstd)"
                    } else {
                        ""
                    }
                )?;
            }
        }
        match &contents.problem {
            None if !contents.finished => {
                unfinished += 1;
                jf.ok = true;
                jf.torn_tail = contents
                    .torn_tail
                    .as_ref()
                    .map(|e| Problem::from_error(&path, e));
                if !ctx.args.json {
                    writeln!(
                        ctx.out,
                        "UNFINISHED {} (no footer: being written, or left by a crash; recovery \
                         reads its values back through the WAL records that name them)",
                        path.display()
                    )?;
                    if let Some(t) = &jf.torn_tail {
                        writeln!(
                            ctx.out,
                            "  whole records end there; after them: {t} (a write in progress \
                             or a crash's, not damage)"
                        )?;
                    }
                }
            }
            None => {
                ok += 1;
                jf.ok = true;
                if !ctx.args.json {
                    writeln!(ctx.out, "OK      {}", path.display())?;
                }
            }
            Some(e) => {
                failed += 1;
                let p = Problem::from_error(&path, e);
                if !ctx.args.json {
                    writeln!(
                        ctx.out,
                        "FAILED  {} (after {} sound records)\n  {p}",
                        path.display(),
                        contents.records.len()
                    )?;
                }
                jf.problem = Some(p.clone());
                ctx.problem(p);
            }
        }
        files.push(jf);
    }
    if ctx.args.json {
        emit_json(
            ctx,
            BlobBody {
                files,
                files_ok: ok,
                files_unfinished: unfinished,
                files_failed: failed,
            },
        )?;
    } else {
        let all = ok + unfinished + failed;
        let unfinished = if unfinished > 0 {
            format!(", {unfinished} unfinished")
        } else {
            String::new()
        };
        writeln!(
            ctx.out,
            "{all} blob file{} checked: {ok} OK{unfinished}, {failed} failed",
            if all == 1 { "" } else { "s" }
        )?;
    }
    Ok(())
}
