//! Command-line flags of `sst-dump`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Offline inspector of Lightning DB files: SST tables, manifests and WALs.
///
/// Opens every file read-only and never writes, renames or deletes
/// anything, so it is safe on a database that is open in another process.
/// Exit code: 0 when everything read is sound, 1 when any file is damaged,
/// foreign or fails a check (every problem is reported), 2 on bad usage.
#[derive(Debug, Parser)]
#[command(name = "sst-dump", version, about, long_about)]
pub struct Args {
    /// An SST file, a MANIFEST, WAL or blob file (for those commands), or
    /// a database directory: then every `*.sst` in it, its live MANIFEST
    /// (manifest, summary), its `*.log` files (wal) or its `*.blob` files
    /// (blob). May repeat.
    #[arg(short, long = "file", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,

    /// What to do.
    #[arg(short, long, value_enum, default_value_t = Command::Scan)]
    pub command: Command,

    /// scan: start at this user key (inclusive).
    #[arg(long, value_name = "KEY")]
    pub from: Option<String>,

    /// scan: stop before this user key (exclusive).
    #[arg(long, value_name = "KEY")]
    pub to: Option<String>,

    /// scan: only keys that start with this prefix.
    #[arg(long, value_name = "KEY")]
    pub prefix: Option<String>,

    /// --from, --to and --prefix are given in hex (`6b6579` or `0x6b6579`).
    #[arg(long, alias = "input_hex", alias = "input_key_hex")]
    pub input_hex: bool,

    /// scan: print at most N entries per file.
    #[arg(long, value_name = "N", alias = "read_num")]
    pub limit: Option<u64>,

    /// Print keys and values as hex (`0x…`) instead of quoted, escaped text.
    #[arg(long, alias = "output_hex")]
    pub output_hex: bool,

    /// Truncate values longer than this many bytes (text and JSON), with a
    /// `…(N bytes)` marker giving the full size.
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub value_width: usize,

    /// Never truncate values.
    #[arg(long)]
    pub full_values: bool,

    /// scan: show every version of each key (default: only the newest
    /// version of each key within each file; tombstones are shown).
    #[arg(long, alias = "show_all_versions")]
    pub show_all_versions: bool,

    /// Also print each SST file's properties (any command that reads SSTs).
    #[arg(long, alias = "show_properties")]
    pub show_properties: bool,

    /// recompress: a setting to try, `none`, `zstd` (level 3) or `zstd:N`.
    /// May repeat. Default: none, zstd:1, zstd:3, zstd:9.
    #[arg(long, value_name = "SETTING")]
    pub compression: Vec<String>,

    /// raw: the index page size to measure page fill against. Default: the
    /// database's OPTIONS file next to the SST, else 4096.
    #[arg(long, value_name = "BYTES")]
    pub index_page_size: Option<u64>,

    /// Print one JSON document on stdout instead of text (shape in
    /// docs/sst-dump.md). Problems are still reported on stderr too.
    #[arg(long)]
    pub json: bool,
}

/// The commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Command {
    /// Entries in key order: `'key' @ seq : put|delete => 'value'`.
    Scan,
    /// Read every block and verify every checksum.
    Check,
    /// check, plus key order, index <-> data, filter <-> keys and
    /// properties <-> contents.
    Verify,
    /// The file's layout: footer, properties, B+Tree index, filter, data
    /// blocks.
    Raw,
    /// The properties block.
    Properties,
    /// Per level of a database directory: files, sizes, key and sequence
    /// ranges, tombstone and compression ratios; key/value size histograms.
    Summary,
    /// Decode a MANIFEST: every version edit.
    Manifest,
    /// Decode a WAL: every batch with its sequence number and operations.
    Wal,
    /// Size the data blocks would take under other compression settings
    /// (nothing is written).
    Recompress,
    /// List and check blob files (`*.blob`, key-value separation): every
    /// record's key, offset and sizes; every checksum; compressed values
    /// decompressed.
    Blob,
}

impl Command {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Command::Scan => "scan",
            Command::Check => "check",
            Command::Verify => "verify",
            Command::Raw => "raw",
            Command::Properties => "properties",
            Command::Summary => "summary",
            Command::Manifest => "manifest",
            Command::Wal => "wal",
            Command::Recompress => "recompress",
            Command::Blob => "blob",
        }
    }
}
