//! `--command=recompress`: the size of SST files under other compression settings.

use super::*;

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
