//! End-to-end tests of the `sst-dump` binary on databases built with
//! `lightning_db::Db`, on damaged copies and on foreign files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lightning_db::{Compression, Db, Options};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_sst-dump");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run sst-dump")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status
        .code()
        .expect("exited normally (no signal, no panic abort)")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(o)))
}

fn options(compression: Compression) -> Options {
    let mut o = Options::default()
        .write_buffer_size(64 << 10)
        .block_size(512)
        .compression(compression);
    o.compaction.disable_auto_compactions = true;
    o
}

/// A database with several flushed level-0 files: overwrites, tombstones,
/// one long value, one binary key; the last writes stay in the WAL.
fn build_db(dir: &Path, compression: Compression) -> Db {
    let db = Db::open(dir, options(compression)).unwrap();
    for round in 0..3u32 {
        for i in 0..120u32 {
            db.put(
                format!("key{:04}", i * 3 + round % 2),
                format!("value-{round}-{i}"),
            )
            .unwrap();
        }
        for i in (0..120u32).step_by(10) {
            db.delete(format!("key{:04}", i * 3)).unwrap();
        }
        db.flush().unwrap();
    }
    db.put("long", "L".repeat(200)).unwrap();
    db.put(b"bin\x00\xff", b"\x01\x02").unwrap();
    db.flush().unwrap();
    db.put("in-wal", "not flushed").unwrap();
    db.delete("key0003").unwrap();
    db
}

fn sst_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    v.sort();
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn db_dir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    build_db(&dir, Compression::None).close().unwrap();
    (t, dir)
}

/// Parses a scan line `'key' @ seq : put => 'value'` or `'key' @ seq : delete`.
fn parse_line(line: &str) -> (String, u64, String) {
    let (key, rest) = line.split_once(" @ ").expect(line);
    let (seq, rest) = rest.split_once(" : ").expect(line);
    let kind = rest.split(' ').next().unwrap().to_string();
    (key.to_string(), seq.parse().expect(line), kind)
}

#[test]
fn scan_shows_entries_in_order_with_tombstones() {
    let (_t, dir) = db_dir();
    let files = sst_files(&dir);
    assert!(files.len() >= 4, "several flushed files: {files:?}");

    let o = run(&["--file", s(&files[0])]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<_> = out.lines().collect();
    assert!(lines.len() > 100);
    let parsed: Vec<_> = lines.iter().map(|l| parse_line(l)).collect();
    for w in parsed.windows(2) {
        assert!(w[0].0 < w[1].0, "newest version per key only, in order");
    }
    assert!(out.contains("'key0000' @ ") && out.contains(" : delete"));
    assert!(out.contains(" : put => 'value-0-1'"), "{out}");

    // Whole directory: a header per file; tombstones and binary keys.
    let o = run(&["--file", s(&dir), "--command=scan"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("# ")).count(),
        files.len()
    );
    assert!(out.contains("'bin\\x00\\xff' @ "), "{out}");
    // Values cut at --value-width with the full size.
    assert!(
        out.contains(&format!("'{}'…(200 bytes)", "L".repeat(64))),
        "{out}"
    );
    let o = run(&["--file", s(&dir), "--full-values"]);
    assert!(stdout(&o).contains(&format!("'{}'\n", "L".repeat(200))));
    let o = run(&["--file", s(&dir), "--value-width=3", "--prefix=long"]);
    assert!(stdout(&o).contains("'LLL'…(200 bytes)"), "{}", stdout(&o));
}

#[test]
fn scan_bounds_versions_limit_and_hex() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    // Overwrites in one memtable: one file holds several versions of a key
    // (a flush keeps the versions live snapshots can see).
    let db = Db::open(&dir, options(Compression::None)).unwrap();
    let mut snapshots = Vec::new();
    for v in 0..3 {
        for i in 0..50 {
            db.put(format!("k{i:03}"), format!("v{v}")).unwrap();
        }
        snapshots.push(db.snapshot());
    }
    db.delete("k010").unwrap();
    db.flush().unwrap();
    drop(snapshots);
    db.close().unwrap();
    let f = sst_files(&dir).pop().unwrap();
    let f = s(&f);

    let newest = stdout(&run(&["-f", f]));
    assert_eq!(newest.lines().count(), 50);
    assert!(newest.contains("'k010' @ 151 : delete\n"), "{newest}");
    assert!(newest.contains("'k011' @ 112 : put => 'v2'\n"));
    let all = stdout(&run(&["-f", f, "--show-all-versions"]));
    assert_eq!(all.lines().count(), 151);
    assert!(all.contains("'k011' @ 12 : put => 'v0'\n"));

    let r = stdout(&run(&["-f", f, "--from=k010", "--to=k013"]));
    let keys: Vec<_> = r.lines().map(|l| parse_line(l).0).collect();
    assert_eq!(keys, ["'k010'", "'k011'", "'k012'"]);
    let r = stdout(&run(&["-f", f, "--prefix=k04", "--limit=3"]));
    let keys: Vec<_> = r.lines().map(|l| parse_line(l).0).collect();
    assert_eq!(keys, ["'k040'", "'k041'", "'k042'"]);
    // 6b303435 = "k045"
    let r = stdout(&run(&[
        "-f",
        f,
        "--input-hex",
        "--from=0x6b303435",
        "--output-hex",
        "--limit=1",
    ]));
    assert_eq!(r, "0x6b303435 @ 146 : put => 0x7632\n");
    let bad = run(&["-f", f, "--input-hex", "--from=xyz"]);
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("hex"));
}

#[test]
fn check_and_verify_pass_on_a_sound_database_even_while_it_is_open() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    let db = build_db(&dir, Compression::Zstd { level: 3 });
    for cmd in ["check", "verify"] {
        let o = run(&["-f", s(&dir), "--command", cmd]);
        assert_eq!(code(&o), 0, "{cmd}: {}{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        assert_eq!(
            out.lines().filter(|l| l.starts_with("OK ")).count(),
            sst_files(&dir).len()
        );
        assert!(out.contains(" 0 failed, 0 problems"), "{out}");
    }
    let o = run(&["-f", s(&dir), "-c", "verify", "--json"]);
    let v = json(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["files_failed"], 0);
    for f in v["files"].as_array().unwrap() {
        assert_eq!(f["ok"], true);
        assert!(f["entries"].as_u64().unwrap() > 0);
        assert!(f["problems"].as_array().unwrap().is_empty());
    }
    // The database still works: nothing was written or locked.
    db.put("after", "x").unwrap();
    db.close().unwrap();
}

/// A copy of the database with one byte flipped inside data block 1 of
/// its first SST; returns (copy dir, damaged file, block offset).
fn corrupt_copy(dir: &Path, into: &Path) -> (PathBuf, PathBuf, u64) {
    std::fs::create_dir_all(into).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, into.join(p.file_name().unwrap())).unwrap();
    }
    let victim = sst_files(into).remove(0);
    let raw = json(&run(&["-f", s(&victim), "-c", "raw", "--json"]));
    let off = raw["files"][0]["data_blocks"][1]["offset"]
        .as_u64()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[off as usize + 3] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();
    (into.to_path_buf(), victim, off)
}

#[test]
fn damaged_data_block_is_reported_with_file_and_offset() {
    let (t, dir) = db_dir();
    let (copy, victim, off) = corrupt_copy(&dir, &t.path().join("copy"));
    let name = s(&victim);

    for cmd in ["check", "verify"] {
        let o = run(&["-f", s(&copy), "-c", cmd]);
        assert_eq!(code(&o), 1, "{cmd}");
        let out = stdout(&o);
        assert!(out.contains(&format!("FAILED  {name}")), "{cmd}: {out}");
        assert!(
            out.contains(&format!(
                "{name}: corruption at offset {off}: data block checksum mismatch"
            )),
            "{cmd}: {out}"
        );
        // It kept going: the other files are checked and OK.
        assert_eq!(
            out.lines().filter(|l| l.starts_with("OK ")).count(),
            sst_files(&copy).len() - 1,
            "{out}"
        );
        assert!(stderr(&o).contains("1 problem found"));
        let v = json(&run(&["-f", s(&copy), "-c", cmd, "--json"]));
        assert_eq!(v["ok"], false);
        assert_eq!(v["files_failed"], 1);
        assert_eq!(v["problems"][0]["file"], name);
        assert_eq!(v["problems"][0]["offset"], off);
        assert_eq!(v["problems"][0]["kind"], "corruption");
    }

    // scan: the entries of block 0 (sound), then the error naming the file.
    let o = run(&["-f", name]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).lines().count() > 0);
    assert!(stdout(&o).lines().all(|l| l.starts_with('\'')));
    let err = stderr(&o);
    assert!(
        err.contains(name) && err.contains(&format!("offset {off}")),
        "{err}"
    );
    let v = json(&run(&["-f", name, "--json"]));
    assert_eq!(v["ok"], false);
    assert_eq!(v["files"][0]["error"]["offset"], off);

    // raw and recompress refuse the damaged file too.
    for cmd in ["raw", "recompress"] {
        let o = run(&["-f", name, "-c", cmd]);
        assert_eq!(code(&o), 1, "{cmd}");
        assert!(stderr(&o).contains(name), "{cmd}");
    }
}

#[test]
fn foreign_and_empty_files_are_refused_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let random = t.path().join("random.sst");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let empty = t.path().join("empty.sst");
    std::fs::write(&empty, b"").unwrap();
    let text = t.path().join("notes.txt");
    std::fs::write(&text, "hello\n".repeat(100)).unwrap();
    for f in [&random, &empty, &text] {
        for cmd in ["scan", "check", "verify", "raw", "properties", "recompress"] {
            let o = run(&["-f", s(f), "-c", cmd]);
            assert_eq!(code(&o), 1, "{cmd} {f:?}");
            let err = stderr(&o);
            assert!(err.contains(s(f)), "{cmd}: {err}");
            assert!(err.contains("not an SST file"), "{cmd}: {err}");
            assert!(!err.contains("panicked"), "{err}");
            if cmd == "scan" || cmd == "properties" {
                assert!(stdout(&o).is_empty(), "no garbage presented as data");
            }
        }
        let o = run(&["-f", s(f), "-c", "wal"]);
        assert_eq!(code(&o), 1);
        let o = run(&["-f", s(f), "-c", "manifest", "--json"]);
        assert_eq!(code(&o), 1);
        assert_eq!(json(&o)["ok"], false);
    }
    let o = run(&["-f", s(&t.path().join("missing.sst"))]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("missing.sst"));
    let o = run(&["-f", s(&random), "-c", "summary"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("needs a database directory"));
}

fn assert_props_shape(p: &Value) {
    for k in [
        "num_entries",
        "num_deletions",
        "smallest_seq",
        "largest_seq",
        "raw_key_size",
        "raw_value_size",
        "data_size",
        "num_data_blocks",
        "index_size",
        "num_index_pages",
        "index_depth",
        "filter_size",
        "bloom_bits_per_key",
        "creation_time",
    ] {
        assert!(p[k].is_u64(), "{k}: {p}");
    }
    assert!(p["compression"].is_string());
    assert!(p["compression_ratio"].is_f64());
    for k in ["smallest_key", "largest_key"] {
        assert_ikey_shape(&p[k]);
    }
}

fn assert_bytes_shape(b: &Value) {
    assert!(b["text"].is_string() && b["hex"].is_string(), "{b}");
    assert!(b["size"].is_u64() && b["truncated"].is_boolean(), "{b}");
}

fn assert_ikey_shape(k: &Value) {
    assert_bytes_shape(&k["key"]);
    assert!(k["seq"].is_u64(), "{k}");
    assert!(k["kind"] == "put" || k["kind"] == "delete", "{k}");
}

fn assert_envelope(v: &Value, command: &str, ok: bool) {
    assert_eq!(v["tool"], "sst-dump");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["command"], command);
    assert_eq!(v["ok"], ok);
    assert!(v["problems"].is_array());
}

#[test]
fn json_shape_of_properties_and_scan() {
    let (_t, dir) = db_dir();
    let files = sst_files(&dir);
    let o = run(&["-f", s(&dir), "-c", "properties", "--json"]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    assert_envelope(&v, "properties", true);
    let fs = v["files"].as_array().unwrap();
    assert_eq!(fs.len(), files.len());
    for f in fs {
        assert!(f["file"].is_string());
        assert!(f["file_size"].is_u64());
        assert!(f["error"].is_null());
        assert_props_shape(&f["properties"]);
    }

    let o = run(&["-f", s(&files[0]), "--json", "--show-properties"]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    assert_envelope(&v, "scan", true);
    let f = &v["files"][0];
    assert_eq!(f["file"], s(&files[0]));
    assert!(f["error"].is_null());
    assert_props_shape(&f["properties"]);
    let entries = f["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    let mut saw = (false, false);
    for e in entries {
        assert_bytes_shape(&e["key"]);
        assert!(e["seq"].is_u64());
        match e["kind"].as_str().unwrap() {
            "put" => {
                saw.0 = true;
                assert_bytes_shape(&e["value"]);
            }
            "delete" => {
                saw.1 = true;
                assert!(e["value"].is_null());
            }
            k => panic!("kind {k}"),
        }
    }
    assert_eq!(saw, (true, true), "puts and tombstones");
    assert_eq!(entries[0]["key"]["text"], "key0000");
    assert_eq!(entries[0]["key"]["hex"], "6b657930303030");
}

#[test]
fn raw_shows_footer_index_filter_and_blocks() {
    let (_t, dir) = db_dir();
    let f = sst_files(&dir).remove(0);
    let o = run(&["-f", s(&f), "-c", "raw"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "Footer (format version 2):",
        "Table properties of",
        "Index (B+Tree): depth ",
        "fan-out min/avg/max",
        "Filter: offset ",
        "cache-local 512-bit lines",
        "estimated false-positive rate",
        "Data blocks: ",
        " @ max : put",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let v = json(&run(&["-f", s(&f), "-c", "raw", "--json"]));
    assert_envelope(&v, "raw", true);
    let r = &v["files"][0];
    let blocks = r["data_blocks"].as_array().unwrap();
    assert_eq!(
        blocks.len() as u64,
        r["properties"]["num_data_blocks"].as_u64().unwrap()
    );
    let entries: u64 = blocks.iter().map(|b| b["entries"].as_u64().unwrap()).sum();
    assert_eq!(entries, r["properties"]["num_entries"].as_u64().unwrap());
    for b in blocks {
        assert!(b["restarts"].as_u64().unwrap() >= 1);
        assert_ikey_shape(&b["first_key"]);
        assert_ikey_shape(&b["last_key"]);
    }
    let fl = &r["filter"];
    assert_eq!(fl["bits_per_key"], 10);
    assert_eq!(fl["cache_local"], true);
    assert_eq!(fl["num_bytes"].as_u64().unwrap() % 64, 0);
    let fp = fl["estimated_fp_rate"].as_f64().unwrap();
    assert!(fp > 0.001 && fp < 0.05, "{fp}");
    let ix = &r["index"];
    assert!(ix["depth"].as_u64().unwrap() >= 1);
    assert_eq!(ix["index_page_size"], 4096, "from the OPTIONS file");
    let root = &ix["levels"][0];
    assert_eq!(root["pages"], 1);
    assert!(root["fanout"]["avg"].as_f64().unwrap() >= 1.0);
}

#[test]
fn summary_per_level_and_histograms() {
    let (_t, dir) = db_dir();
    let o = run(&["-f", s(&dir), "-c", "summary"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("L0 "), "{out}");
    assert!(out.contains("Key sizes") && out.contains("Value sizes"));
    let v = json(&run(&["-f", s(&dir), "-c", "summary", "--json"]));
    assert_envelope(&v, "summary", true);
    let d = &v["databases"][0];
    let l0 = &d["levels"][0];
    assert_eq!(l0["level"], 0);
    assert_eq!(
        l0["files"].as_u64().unwrap() as usize,
        sst_files(&dir).len()
    );
    assert!(l0["deletions"].as_u64().unwrap() > 0);
    let tr = l0["tombstone_ratio"].as_f64().unwrap();
    assert!(tr > 0.0 && tr < 0.5);
    assert!(l0["compression_ratio"].as_f64().unwrap() > 0.5);
    assert_ikey_shape(&l0["smallest_key"]);
    let keys = &d["key_sizes"];
    let n: u64 = keys["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(n, keys["count"].as_u64().unwrap());
    assert_eq!(n, l0["entries"].as_u64().unwrap());
    // "long" holds 200 bytes: bucket 128..255.
    assert!(d["value_sizes"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["min"] == 128 && b["max"] == 255));
}

/// A database with keyspaces: `manifest` shows each edit's keyspace, the
/// additions and the drop; `summary` lists the levels per keyspace, the
/// dropped keyspace's files gone.
#[test]
fn manifest_and_summary_show_keyspaces() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    {
        let db = Db::open(&dir, options(Compression::None)).unwrap();
        let logs = db.keyspace("logs").unwrap();
        let gone = db.keyspace("gone").unwrap();
        for i in 0..100u32 {
            db.put(format!("d{i:03}"), "v").unwrap();
            logs.put(format!("l{i:03}"), "v").unwrap();
            gone.put(format!("g{i:03}"), "v").unwrap();
        }
        db.flush().unwrap();
        db.drop_keyspace("gone").unwrap();
        db.close().unwrap();
    }
    let o = run(&["-f", s(&dir), "-c", "manifest"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("adds keyspace \"logs\""), "{out}");
    assert!(out.contains("drops the keyspace"), "{out}");
    let v = json(&run(&["-f", s(&dir), "-c", "manifest", "--json"]));
    let edits = v["files"][0]["edits"].as_array().unwrap();
    assert!(edits
        .iter()
        .any(|e| e["keyspace_added"] == "logs" && e["keyspace"].as_u64() == Some(1)));

    let o = run(&["-f", s(&dir), "-c", "summary"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("[keyspace default]") && out.contains("[keyspace logs]"),
        "{out}"
    );
    assert!(!out.contains("[keyspace gone]"), "{out}");
    let v = json(&run(&["-f", s(&dir), "-c", "summary", "--json"]));
    let levels = v["databases"][0]["levels"].as_array().unwrap();
    let of = |ks: &str| -> u64 {
        levels
            .iter()
            .filter(|l| l["keyspace"] == ks)
            .map(|l| l["entries"].as_u64().unwrap())
            .sum()
    };
    assert_eq!((of("default"), of("logs"), of("gone")), (100, 100, 0));
}

#[test]
fn manifest_and_wal_are_decoded() {
    let (t, dir) = db_dir();
    let o = run(&["-f", s(&dir), "-c", "manifest"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("edit @ ") && out.contains("  + L0 #"), "{out}");
    let v = json(&run(&["-f", s(&dir), "-c", "manifest", "--json"]));
    assert_envelope(&v, "manifest", true);
    let edits = v["files"][0]["edits"].as_array().unwrap();
    let added: usize = edits
        .iter()
        .map(|e| e["new_files"].as_array().unwrap().len())
        .sum();
    assert!(added >= sst_files(&dir).len());

    let o = run(&["-f", s(&dir), "-c", "wal"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("'in-wal' @ ") && out.contains(" : put => 'not flushed'"),
        "{out}"
    );
    assert!(out.contains("'key0003' @ ") && out.contains(" : delete"));
    // A torn tail (a crash mid-append) is reported, not an error.
    let log = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let torn_dir = t.path().join("torn");
    std::fs::create_dir(&torn_dir).unwrap();
    let torn = torn_dir.join(log.file_name().unwrap());
    let bytes = std::fs::read(&log).unwrap();
    std::fs::write(&torn, &bytes[..bytes.len() - 3]).unwrap();
    let o = run(&["-f", s(&torn), "-c", "wal", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_envelope(&v, "wal", true);
    let w = &v["files"][0];
    assert!(w["torn_tail"]["offset"].is_u64());
    assert_eq!(
        w["batches"].as_array().unwrap().len(),
        1,
        "the last batch is torn"
    );
    assert_eq!(w["batches"][0]["ops"][0]["key"]["text"], "in-wal");
}

/// A log file of the WAL format `version` numbered `number`, whose
/// records (after the header) are `records`, each one `FULL` fragment
/// (docs/format.md, "Log files": checksum of type byte and payload).
fn wal_bytes(number: u64, version: u32, records: &[&[u8]]) -> Vec<u8> {
    let mut header = b"LDB-WAL\0".to_vec();
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&number.to_le_bytes());
    let mut out = Vec::new();
    for payload in std::iter::once(&header[..]).chain(records.iter().copied()) {
        let mut checked = vec![1u8];
        checked.extend_from_slice(payload);
        let sum = xxhash_rust::xxh3::xxh3_64(&checked) as u32;
        out.extend_from_slice(&sum.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        out.push(1);
        out.extend_from_slice(payload);
    }
    out
}

#[test]
fn wal_shows_the_keyspace_of_operations_outside_the_default_one() {
    let t = tempfile::tempdir().unwrap();
    // Sequence 10, 4 operations: a put in the default keyspace (kind 1),
    // a put in keyspace 7 (kind 4), a range deletion in keyspace 300
    // (kind 6; 300 = 0xac 0x02), a delete in keyspace 2 (kind 5).
    let batch: &[u8] = &[
        10, 4, //
        1, 1, b'a', 1, b'x', //
        4, 7, 1, b'b', 1, b'y', //
        6, 0xac, 0x02, 1, b'c', 1, b'd', //
        5, 2, 1, b'e',
    ];
    let wal = t.path().join("000005.log");
    std::fs::write(&wal, wal_bytes(5, 4, &[batch])).unwrap();
    let o = run(&["-f", s(&wal), "-c", "wal"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "  'a' @ 10 : put => 'x'\n",
        "  ks=7 'b' @ 11 : put => 'y'\n",
        "  ks=300 ['c' .. 'd') @ 12 : delete_range\n",
        "  ks=2 'e' @ 13 : delete\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(!out.contains("ks=0"), "{out}");
    let v = json(&run(&["-f", s(&wal), "-c", "wal", "--json"]));
    assert_envelope(&v, "wal", true);
    let ops = v["files"][0]["batches"][0]["ops"].as_array().unwrap();
    let keyspaces: Vec<_> = ops.iter().map(|o| o.get("keyspace").cloned()).collect();
    assert_eq!(
        keyspaces,
        [None, Some(7.into()), Some(300.into()), Some(2.into())],
        "the keyspace is left out for the default one"
    );
    assert_eq!(ops[2]["kind"], "delete_range");
    assert_eq!(ops[2]["value"]["text"], "d");
    // A WAL of version 3 holds no keyspace operation: the record is
    // damage, reported with the file and never shown as data.
    let old = t.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let wal3 = old.join("000005.log");
    std::fs::write(&wal3, wal_bytes(5, 3, &[batch])).unwrap();
    let o = run(&["-f", s(&wal3), "-c", "wal"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("unknown operation kind"), "{err}");
    assert!(!stdout(&o).contains("'b'"), "{}", stdout(&o));
}

#[test]
fn recompress_sizes_each_setting_without_writing() {
    let (_t, dir) = db_dir();
    let before: Vec<_> = sst_files(&dir)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let o = run(&["-f", s(&dir), "-c", "recompress"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for setting in ["none", "zstd:1", "zstd:3", "zstd:9"] {
        assert!(out.contains(&format!("  {setting} ")), "{out}");
    }
    let v = json(&run(&[
        "-f",
        s(&dir),
        "-c",
        "recompress",
        "--compression=zstd:5",
        "--compression=none",
        "--json",
    ]));
    assert_envelope(&v, "recompress", true);
    let f = &v["files"][0];
    let res = f["results"].as_array().unwrap();
    assert_eq!(res[0]["compression"], "zstd:5");
    assert_eq!(res[1]["compression"], "none");
    // Uncompressed: the same bytes as now (the files are uncompressed).
    assert_eq!(res[1]["data_size"], f["current_data_size"]);
    assert!(res[0]["data_size"].as_u64() < res[1]["data_size"].as_u64());
    assert!(v["total"]["results"][0]["data_size"].is_u64());
    let after: Vec<_> = sst_files(&dir)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(before, after);
    let o = run(&["-f", s(&dir), "-c", "recompress", "--compression=lz4"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("lz4"));
}

#[test]
fn help_explains_every_flag() {
    let o = run(&["--help"]);
    assert_eq!(code(&o), 0);
    let h = stdout(&o);
    for flag in [
        "--file",
        "--command",
        "--from",
        "--to",
        "--prefix",
        "--input-hex",
        "--limit",
        "--output-hex",
        "--value-width",
        "--full-values",
        "--show-all-versions",
        "--show-properties",
        "--compression",
        "--index-page-size",
        "--json",
    ] {
        assert!(h.contains(flag), "{flag}");
    }
    for cmd in [
        "scan",
        "check",
        "verify",
        "raw",
        "properties",
        "summary",
        "manifest",
        "wal",
        "recompress",
    ] {
        assert!(h.contains(cmd), "{cmd}");
    }
    assert_eq!(code(&run(&["--command=bogus", "-f", "x"])), 2);
}

#[test]
fn verify_finds_properties_that_lie_where_check_sees_sound_checksums() {
    let (_t, dir) = db_dir();
    let f = sst_files(&dir).remove(0);
    let raw = json(&run(&["-f", s(&f), "-c", "raw", "--json"]));
    let r = &raw["files"][0];
    let off = r["footer"]["properties"]["offset"].as_u64().unwrap() as usize;
    let size = r["footer"]["properties"]["size"].as_u64().unwrap() as usize;
    let dels = r["properties"]["num_deletions"].as_u64().unwrap();
    assert!(dels > 0 && dels < 127);
    let mut bytes = std::fs::read(&f).unwrap();
    // Tag 1 (num_entries: tag, length, varint), then tag 2 = num_deletions,
    // a one-byte varint: make it one more, and re-seal the checksum
    // (docs/format.md: low 32 bits of xxh3 over contents and type byte).
    let p = off + 2 + bytes[off + 1] as usize;
    assert_eq!(&bytes[p..p + 3], &[2, 1, dels as u8]);
    bytes[p + 2] += 1;
    let sum = xxhash_rust::xxh3::xxh3_64(&bytes[off..off + size + 1]) as u32;
    bytes[off + size + 1..off + size + 5].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&f, bytes).unwrap();

    let o = run(&["-f", s(&f), "-c", "check"]);
    assert_eq!(code(&o), 0, "checksums are sound: {}", stdout(&o));
    let o = run(&["-f", s(&f), "-c", "verify"]);
    assert_eq!(code(&o), 1);
    let want = format!(
        "verify failed at offset {off}: properties say num_deletions = {}, the file holds {dels}",
        dels + 1
    );
    assert!(stdout(&o).contains(&want), "{}", stdout(&o));
    assert!(stderr(&o).contains(&want));
    let v = json(&run(&["-f", s(&f), "-c", "verify", "--json"]));
    assert_eq!(v["problems"][0]["kind"], "verify");
    assert_eq!(v["problems"].as_array().unwrap().len(), 1);
}

/// `--command=blob` lists and checks blob files; `scan` shows the
/// references; a flipped byte in a value is found with its offset.
#[test]
fn blob_command_lists_and_checks_blob_files() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    {
        let o = lightning_db::Options::default()
            .enable_blob_files(true)
            .min_blob_size(100);
        let db = lightning_db::Db::open(&dir, o).unwrap();
        for i in 0..20u32 {
            db.put(format!("key{i:02}"), vec![b'a' + (i % 26) as u8; 500])
                .unwrap();
        }
        db.put("small", "tiny").unwrap();
        db.flush().unwrap();
    }
    let o = run(&["-f", s(&dir), "-c", "blob"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("20 records"), "{out}");
    assert!(
        out.contains("'key07' @ offset") || out.contains("\"key07\" @ offset"),
        "{out}"
    );
    assert!(out.contains("1 blob file checked: 1 OK, 0 failed"), "{out}");
    let o = run(&["-f", s(&dir), "-c", "scan"]);
    assert!(stdout(&o).contains(": blob => file "), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(": put => "),
        "the small value stays inline"
    );
    let v = json(&run(&["-f", s(&dir), "-c", "blob", "--json"]));
    let f = &v["files"][0];
    assert_eq!(f["blob_count"], 20);
    assert_eq!(f["records"].as_array().unwrap().len(), 20);
    assert_eq!(f["ok"], true);
    // Damage one value: found, with the file and offset.
    let blob = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "blob"))
        .unwrap();
    let value_at = f["records"][3]["value_offset"].as_u64().unwrap() as usize;
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[value_at + 10] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let o = run(&["-f", s(&blob), "-c", "blob"]);
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(
        out.contains("FAILED") && out.contains("after 3 sound records"),
        "{out}"
    );
    assert!(out.contains(&format!("{value_at}")), "{out}");
}

/// A blob file the write path is still appending to (values are written
/// at put time) has no footer: `--command=blob` lists it as unfinished,
/// with its whole records, on a live database and after a crash that cut
/// a record short, and it is not a failure.
#[test]
fn blob_command_lists_unfinished_files() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    let o = lightning_db::Options::default()
        .enable_blob_files(true)
        .min_blob_size(100);
    let db = lightning_db::Db::open(&dir, o).unwrap();
    for i in 0..12u32 {
        db.put(format!("key{i:02}"), vec![b'a' + i as u8; 500])
            .unwrap();
    }
    // Live: the memtable's blob file is being written.
    let o = run(&["-f", s(&dir), "-c", "blob"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(", unfinished: 12 records"), "{out}");
    assert!(out.contains("UNFINISHED"), "{out}");
    assert!(
        out.contains("1 blob file checked: 0 OK, 1 unfinished, 0 failed"),
        "{out}"
    );
    drop(db);
    // A crash cut the last record short.
    let blob = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "blob"))
        .unwrap();
    let len = std::fs::metadata(&blob).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
    f.set_len(len - 100).unwrap();
    drop(f);
    let v = json(&run(&["-f", s(&blob), "-c", "blob", "--json"]));
    let f = &v["files"][0];
    assert_eq!(f["finished"], false);
    assert_eq!(f["blob_count"], 11);
    assert_eq!(f["records"].as_array().unwrap().len(), 11);
    assert_eq!(f["ok"], true);
    let tail_at = f["records"][10]["value_offset"].as_u64().unwrap() + 500;
    assert_eq!(f["torn_tail"]["offset"], tail_at);
    assert_eq!(v["files_unfinished"], 1);
    assert_eq!(v["files_failed"], 0);
    let o = run(&["-f", s(&blob), "-c", "blob"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("not damage"), "{}", stdout(&o));
}

/// A keyspace with a TTL stores timed values: `scan` shows each with its
/// user value and write time.
#[test]
fn timed_values_show_their_write_time() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    let clock = std::sync::Arc::new(lightning_db::ManualClock::new(1_700_000_000_000));
    let db = Db::open(
        &dir,
        Options::default()
            .ttl(Some(std::time::Duration::from_secs(3600)))
            .clock(clock as std::sync::Arc<dyn lightning_db::Clock>),
    )
    .unwrap();
    db.put("timed", "value").unwrap();
    db.flush().unwrap();
    drop(db);
    let o = run(&["--file", s(&dir), "--command=scan"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("'timed' @ 1 : put_timed => 'value' (written at 1700000000000 ms)"),
        "{out}"
    );
}
