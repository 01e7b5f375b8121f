//! Commands on SST files: properties (here), scan, check and verify, raw,
//! recompress (one module each).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use lightning_db::inspect::{
    self, read_options_file, SstFile, TableLayout, TableProperties, ValueKind,
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
    /// (fragment, sequence number) pairs of the range-deletion block.
    num_range_deletions: u64,
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
            num_range_deletions: p.num_range_deletions,
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
    writeln!(o, "  num_range_deletions: {}", p.num_range_deletions)?;
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

/// The engine's encoding of an internal key (`inspect::encode_internal_key`).
fn encode_ikey(uk: &[u8], seq: u64, kind: ValueKind) -> Vec<u8> {
    inspect::encode_internal_key(uk, seq, kind)
}

mod check;
mod raw;
mod recompress;
mod scan;

pub use check::check;
pub use raw::raw;
pub use recompress::recompress;
pub use scan::scan;
