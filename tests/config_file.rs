//! Options from a TOML file, and the `OPTIONS-NNNNNN` file written at each
//! open.

use std::path::{Path, PathBuf};

use lightning_db::{inspect, Db, Options};

fn options_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("OPTIONS-"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn open_with_toml_options_writes_options_file() {
    let opts = Options::from_toml_str(
        r#"
write_buffer_size = "64KiB"
compression = "zstd:5"

[compaction]
level0_file_num_compaction_trigger = 2
max_bytes_for_level_base = "1MiB"
"#,
    )
    .unwrap();
    assert_eq!(opts.write_buffer_size, 64 * 1024);
    let want = opts.to_toml_string();
    let dir = tempfile::tempdir().unwrap();

    let db = Db::open(dir.path(), opts.clone()).unwrap();
    for i in 0..2000u32 {
        db.put(format!("key{i:06}").as_bytes(), [7u8; 100]).unwrap();
    }
    let files = options_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.starts_with("# Lightning DB options in force at open, written "),
        "{text}"
    );
    let read = inspect::read_options_file(&files[0]).unwrap();
    assert_eq!(read.to_toml_string(), want);
    drop(db);

    let db = Db::open(dir.path(), opts).unwrap();
    let again = options_files(dir.path());
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0] > files[0], "{again:?} after {files:?}");
    assert_eq!(
        inspect::read_options_file(&again[0])
            .unwrap()
            .to_toml_string(),
        want
    );
    assert_eq!(
        db.get(b"key001999").unwrap().as_deref(),
        Some(&[7u8; 100][..])
    );
    drop(db);

    // No temporary file is left behind.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name();
        assert!(!name.to_string_lossy().ends_with(".tmp"), "{name:?}");
    }
}

#[test]
fn config_file_errors_are_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lightning.toml");
    std::fs::write(&p, "[compaction]\nlevel0_stop_writes_trigger = 10\n").unwrap();
    match Options::from_toml_file(&p) {
        Err(lightning_db::Error::InvalidArgument(m)) => {
            assert!(
                m.contains(":2: compaction.level0_stop_writes_trigger = 10"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}
