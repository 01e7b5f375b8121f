//! `--command=check` and `--command=verify`: every problem of each SST file, capped per kind.

use lightning_db::inspect::VerifyCheck;
use lightning_db::Error;

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

/// Checks one file. `check` reads every data block through the index
/// (checksums, decompression, decoding); `verify` runs the engine's one
/// verifier ([`SstFile::verify_all`]), which also checks key order, the
/// index separators, the filter and the properties.
fn check_file(
    ctx: &Ctx<'_>,
    path: &Path,
    sst: &SstFile,
    verify: bool,
) -> (CheckFile, Vec<Problem>) {
    let mut cf = CheckFile {
        file: path.display().to_string(),
        ok: true,
        properties: (ctx.args.show_properties && ctx.args.json)
            .then(|| JsonProps::new(sst.properties())),
        data_blocks: None,
        entries: 0,
        problems: Vec::new(),
    };
    let list = if verify {
        verify_file(path, sst, &mut cf)
    } else {
        read_every_block(ctx, path, sst, &mut cf)
    };
    cf.ok = list.is_empty();
    cf.problems = list.clone();
    (cf, list)
}

/// `check`: every data block read once, problems capped per kind.
fn read_every_block(ctx: &Ctx<'_>, path: &Path, sst: &SstFile, cf: &mut CheckFile) -> Vec<Problem> {
    let refs = match sst.data_block_refs() {
        Ok(r) => r,
        Err(e) => return vec![Problem::from_error(path, &e)],
    };
    cf.data_blocks = Some(refs.len() as u64);
    let mut list = Vec::new();
    let mut failed = 0;
    let progress = ctx.progress(refs.len() as u64, "blocks");
    for r in &refs {
        progress.inc(1);
        match sst.data_block(r.handle) {
            Ok(block) => cf.entries += block.entries.len() as u64,
            Err(e) => {
                failed += 1;
                if failed <= MAX_PROBLEMS_PER_KIND {
                    list.push(Problem::from_error(path, &e));
                }
            }
        }
    }
    if failed > MAX_PROBLEMS_PER_KIND {
        list.push(not_listed(path, "block", failed - MAX_PROBLEMS_PER_KIND));
    }
    list
}

/// `verify`: the engine's verifier; a block it could not read is a
/// corruption (or I/O) problem, a failed check a `verify` problem.
fn verify_file(path: &Path, sst: &SstFile, cf: &mut CheckFile) -> Vec<Problem> {
    let outcome = sst.verify_all(MAX_PROBLEMS_PER_KIND);
    cf.data_blocks = Some(outcome.report.num_data_blocks);
    cf.entries = outcome.report.num_entries;
    let mut list: Vec<Problem> = outcome
        .problems
        .iter()
        .map(|p| match (&p.error, p.check) {
            (Error::Corruption { offset, reason, .. }, check) if check != VerifyCheck::Block => {
                Problem::verify(path, Some(*offset), reason.clone())
            }
            (e, _) => Problem::from_error(path, e),
        })
        .collect();
    for &(check, n) in &outcome.not_listed {
        list.push(not_listed(path, check.name(), n));
    }
    list
}

/// The line that stands for `n` problems of a kind beyond the cap.
fn not_listed(path: &Path, what: &str, n: usize) -> Problem {
    Problem::verify(
        path,
        None,
        format!("{n} more problems of the kind \"{what}\" not listed"),
    )
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
