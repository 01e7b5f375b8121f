//! Writes the seed corpora of the cargo-fuzz targets (`fuzz/corpus/<target>/`)
//! from real files: builds two small databases (one plain, one with zstd
//! and a deep index), then copies their files and cuts the pieces each
//! target decodes (log record payloads, blocks, handles, footers, ...) out
//! of them. Every seed stays under 64 KiB.
//!
//! ```sh
//! cargo run --release --example make_fuzz_corpus -- fuzz/corpus
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use lightning_db::inspect::{BlockHandle, SstFile};
use lightning_db::{Compression, Db, Options, WriteBatch};

const MAX_SEED: usize = 64 * 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let work = std::env::temp_dir().join(format!("lightning-fuzz-corpus-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let mut seeds = Seeds { out, count: 0 };

    for (name, zstd) in [("plain", false), ("zstd", true)] {
        let dir = work.join(name);
        build(&dir, zstd)?;
        seeds.add_db(&dir, name)?;
    }
    seeds.add(
        "config_toml",
        "example",
        &fs::read("lightning.example.toml")?,
    )?;
    seeds.add(
        "config_toml",
        "default",
        Options::default().to_toml_string().as_bytes(),
    )?;
    fs::remove_dir_all(&work)?;
    println!("wrote {} seeds", seeds.count);
    Ok(())
}

/// A database with a few flushed SSTs (small blocks and index pages, so
/// the index has more than one level) and a WAL holding unflushed batches,
/// one of them larger than a log block.
fn build(dir: &Path, zstd: bool) -> lightning_db::Result<()> {
    let opts = Options::default()
        .block_size(256)
        .index_page_size(256)
        .block_restart_interval(4)
        .compression(if zstd {
            Compression::Zstd { level: 3 }
        } else {
            Compression::None
        });
    let db = Db::open(dir, opts.clone())?;
    for round in 0..2u32 {
        for i in 0..300u32 {
            db.put(
                format!("key{:05}", i * 3 + round),
                format!("value-{round}-{i}"),
            )?;
        }
        for i in (0..300u32).step_by(7) {
            db.delete(format!("key{:05}", i * 3))?;
        }
        db.flush()?;
    }
    let mut b = WriteBatch::new();
    b.put("batch-a", "1");
    b.delete("batch-b");
    b.put("", "");
    db.write(b)?;
    db.put("big", vec![b'x'; 40_000])?;
    db.put("after-big", "y")?;
    db.close()?;
    // Reopen: the batches above stay in the new WAL only when written after.
    let db = Db::open(dir, opts)?;
    db.put("k1", "v1")?;
    db.delete("k0")?;
    db.put("big2", vec![b'z'; 35_000])?;
    db.close()
}

struct Seeds {
    out: PathBuf,
    count: usize,
}

impl Seeds {
    fn add(&mut self, target: &str, name: &str, data: &[u8]) -> std::io::Result<()> {
        if data.len() > MAX_SEED {
            return Ok(());
        }
        let dir = self.out.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(format!("seed-{name}")), data)?;
        self.count += 1;
        Ok(())
    }

    fn add_db(&mut self, dir: &Path, tag: &str) -> Result<(), Box<dyn std::error::Error>> {
        let mut names: Vec<String> = fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for n in names {
            let data = fs::read(dir.join(&n))?;
            if n == "CURRENT" {
                self.add("current_file", tag, &data)?;
            } else if n.ends_with(".log") || n.starts_with("MANIFEST-") {
                let target = if n.ends_with(".log") {
                    "write_batch"
                } else {
                    "version_edit"
                };
                self.add("wal_reader", &format!("{tag}-{n}"), &data)?;
                for (i, p) in full_records(&data).into_iter().skip(1).enumerate().take(4) {
                    self.add(target, &format!("{tag}-{n}-{i}"), p)?;
                }
            } else if n.starts_with("OPTIONS-") {
                self.add("config_toml", &format!("{tag}-options"), &data)?;
            } else if n.ends_with(".sst") {
                self.sst(&dir.join(&n), &data, &format!("{tag}-{n}"))?;
            }
        }
        Ok(())
    }

    fn sst(
        &mut self,
        path: &Path,
        data: &[u8],
        tag: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        self.add("sst_table", tag, data)?;
        self.add("footer", tag, &data[data.len() - 68..])?;
        let sst = SstFile::open(path)?;
        let layout = sst.layout()?;
        let contents = |h: BlockHandle| &data[h.offset as usize..(h.offset + h.size) as usize];
        let ctype = |h: BlockHandle| data[(h.offset + h.size) as usize];
        self.add("properties", tag, contents(layout.footer.properties))?;
        if let Some(f) = &layout.filter {
            self.add("filter", tag, contents(f.handle))?;
        }
        // Blocks: mode byte (see `fuzzing::decode_block`), then contents.
        let mut blocks: Vec<(u8, BlockHandle)> = Vec::new();
        blocks.extend(layout.data_blocks.iter().take(2).map(|b| (0u8, b.handle)));
        for level in &layout.index_levels {
            blocks.extend(level.pages.iter().take(1).map(|p| (1u8, p.handle)));
        }
        for (i, (index, h)) in blocks.into_iter().enumerate() {
            let mut seed = vec![index | 2 | (ctype(h) << 2)];
            seed.extend_from_slice(contents(h));
            self.add("block", &format!("{tag}-{i}"), &seed)?;
            if ctype(h) == 0 {
                let mut raw = vec![index];
                raw.extend_from_slice(contents(h));
                self.add("block", &format!("{tag}-{i}-raw"), &raw)?;
            }
            let mut enc = Vec::new();
            put_varint(&mut enc, h.offset);
            put_varint(&mut enc, h.size);
            self.add("block_handle", &format!("{tag}-{i}"), &enc)?;
        }
        Ok(())
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The payloads of the FULL fragments of a log file (docs/format.md, "Log
/// files"): the header record first, then small records.
fn full_records(data: &[u8]) -> Vec<&[u8]> {
    const BLOCK: usize = 32 * 1024;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 7 <= data.len() {
        if BLOCK - pos % BLOCK < 7 {
            pos += BLOCK - pos % BLOCK;
            continue;
        }
        let len = u16::from_le_bytes([data[pos + 4], data[pos + 5]]) as usize;
        let ty = data[pos + 6];
        let Some(payload) = data.get(pos + 7..pos + 7 + len) else {
            break;
        };
        if ty == 1 {
            out.push(payload);
        }
        pos += 7 + len;
    }
    out
}
