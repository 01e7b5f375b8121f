//! Lightning DB's tools. `sst-dump`: an offline inspector of Lightning DB files, built only on the
//! engine's read-only [`lightning_db::inspect`] API. See docs/sst-dump.md.

mod blob_cmds;
pub mod cli;
mod db_cmds;
pub mod fmt;
pub mod progress;
mod sst_cmds;
pub mod zipf;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{Args, Command};
use crate::fmt::{Problem, Style};

/// Prints the engine's `tracing` events on stderr, filtered by `RUST_LOG`
/// (`RUST_LOG=info` for flushes, compactions and stalls,
/// `RUST_LOG=lightning_db=debug` for more); warnings and errors without
/// it. Call once, at the start of `main`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Version of the JSON document shape (see docs/sst-dump.md).
pub const JSON_FORMAT_VERSION: u32 = 1;

/// State shared by the commands.
pub struct Ctx<'a> {
    /// The flags.
    pub args: &'a Args,
    /// Where the report goes (stdout).
    pub out: &'a mut dyn Write,
    /// Every problem found so far.
    pub problems: Vec<Problem>,
    /// How keys and values are shown in text.
    pub style: Style,
    /// Problems are also part of the stdout report (check and verify in
    /// text mode).
    pub problems_on_stdout: bool,
    /// Whether a progress bar may be shown.
    pub progress_allowed: bool,
}

impl Ctx<'_> {
    /// Records a problem and prints it on stderr.
    pub fn problem(&mut self, p: Problem) {
        eprintln!("sst-dump: {p}");
        self.problems.push(p);
    }

    /// Records an engine error about `path`.
    pub fn error(&mut self, path: &Path, e: &lightning_db::Error) {
        self.problem(Problem::from_error(path, e));
    }

    /// A progress bar over `total` units (shown only on a terminal and
    /// after a second of work).
    pub fn progress(&self, total: u64, what: &'static str) -> progress::Progress {
        progress::Progress::new(total, what, self.progress_allowed)
    }
}

/// The JSON document every command prints with `--json`.
#[derive(Serialize)]
pub struct Envelope<'a, B: Serialize> {
    /// Always "sst-dump".
    pub tool: &'static str,
    /// [`JSON_FORMAT_VERSION`].
    pub format_version: u32,
    /// The command's name.
    pub command: &'a str,
    /// False when any problem was found (exit code 1).
    pub ok: bool,
    /// The command's own fields.
    #[serde(flatten)]
    pub body: B,
    /// Every problem found.
    pub problems: &'a [Problem],
}

/// Writes the `--json` document for `body`.
pub fn emit_json<B: Serialize>(ctx: &mut Ctx<'_>, body: B) -> io::Result<()> {
    let doc = Envelope {
        tool: "sst-dump",
        format_version: JSON_FORMAT_VERSION,
        command: ctx.args.command.name(),
        ok: ctx.problems.is_empty(),
        body,
        problems: &ctx.problems,
    };
    serde_json::to_writer_pretty(&mut *ctx.out, &doc).map_err(io::Error::other)?;
    writeln!(ctx.out)
}

/// Files of `dir` whose names satisfy `want`, sorted by name (file
/// numbers are zero-padded, so that is numeric order).
fn files_in(dir: &Path, want: impl Fn(&str) -> bool) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter(|e| e.file_name().to_str().is_some_and(&want))
        .map(|e| e.path())
        .collect();
    v.sort();
    Ok(v)
}

/// One input after expanding directories.
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// Found by listing a directory (it may vanish under a live database).
    pub listed: bool,
}

/// Expands `--file` arguments: a file is itself; a directory gives the
/// files `want` accepts. Missing paths are problems.
pub fn expand(ctx: &mut Ctx<'_>, what: &str, want: impl Fn(&str) -> bool + Copy) -> Vec<Input> {
    let mut out = Vec::new();
    for p in &ctx.args.files.clone() {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => match files_in(p, want) {
                Ok(v) => {
                    if v.is_empty() {
                        eprintln!("sst-dump: note: no {what} in {}", p.display());
                    }
                    out.extend(v.into_iter().map(|path| Input { path, listed: true }));
                }
                Err(e) => ctx.problem(Problem::other(p, "io", e.to_string())),
            },
            Ok(_) => out.push(Input {
                path: p.clone(),
                listed: false,
            }),
            Err(e) => ctx.problem(Problem::other(p, "io", e.to_string())),
        }
    }
    out
}

/// True for an I/O "not found" error: a listed file that a live database
/// deleted (compaction) after the listing.
pub fn vanished(input: &Input, e: &lightning_db::Error) -> bool {
    input.listed
        && matches!(e, lightning_db::Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}

/// Runs the command; returns the process exit code.
pub fn run(args: &Args, out: &mut dyn Write) -> i32 {
    let problems_on_stdout = !args.json && matches!(args.command, Command::Check | Command::Verify);
    let mut ctx = Ctx {
        args,
        out,
        problems: Vec::new(),
        style: Style {
            hex: args.output_hex,
            width: if args.full_values {
                None
            } else {
                Some(args.value_width)
            },
        },
        problems_on_stdout,
        progress_allowed: io::stderr().is_terminal() && (args.json || !io::stdout().is_terminal()),
    };
    let r = match args.command {
        Command::Scan => sst_cmds::scan(&mut ctx),
        Command::Check | Command::Verify => sst_cmds::check(&mut ctx),
        Command::Raw => sst_cmds::raw(&mut ctx),
        Command::Properties => sst_cmds::properties(&mut ctx),
        Command::Recompress => sst_cmds::recompress(&mut ctx),
        Command::Summary => db_cmds::summary(&mut ctx),
        Command::Manifest => db_cmds::manifest(&mut ctx),
        Command::Wal => db_cmds::wal(&mut ctx),
        Command::Blob => blob_cmds::blob(&mut ctx),
    };
    let r = r.and_then(|()| ctx.out.flush());
    match r {
        Ok(()) => {}
        // `sst-dump ... | head`: the reader left; not an error of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            return i32::from(!ctx.problems.is_empty())
        }
        Err(e) => {
            eprintln!("sst-dump: writing the report: {e}");
            return 1;
        }
    }
    if ctx.problems.is_empty() {
        0
    } else {
        if ctx.problems_on_stdout || args.json {
            eprintln!(
                "sst-dump: {} problem{} found",
                ctx.problems.len(),
                if ctx.problems.len() == 1 { "" } else { "s" }
            );
        }
        1
    }
}
