//! `--command=raw`: the structure of an SST file, block by block.

use super::*;

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
