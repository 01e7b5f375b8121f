//! Blob files: key-value separation for large values (`docs/format.md`,
//! "Blob files"; RocksDB's integrated BlobDB and the WiscKey paper are the
//! model). A value of at least `min_blob_size` bytes is written once, when
//! it is put, to an append-only blob file, and the SST entry holds a small
//! [`BlobRef`] instead; compaction moves references, not values.
//!
//! - [`format`]: the bytes of a blob file and of a reference.
//! - [`BlobFileWriter`]: writes one file front to back, then syncs it.
//! - [`BlobFile`]: reads values by reference (checksummed), and walks a
//!   whole file for `verify` and garbage collection.
//! - [`BlobOutput`]: the blob files one flush or compaction writes.
//! - [`LiveBlobFile`]: the file the write path appends large values to at
//!   put time, before their WAL records (WiscKey's value log).
//!
//! The write path separates values as they are put (`crate::db::separate`,
//! into [`LiveBlobFile`]s); flush separates the rest (values recovered from
//! older WALs, or put before blob files were turned on:
//! [`crate::db::flush`]); versions list the blob files and resolve
//! references ([`crate::version::blob_files`]).

pub(crate) mod format;
mod live;
mod output;
pub(crate) mod reader;
mod tally;
mod writer;

pub(crate) use format::BlobRef;
pub(crate) use live::LiveBlobFile;
pub(crate) use output::BlobOutput;
pub(crate) use reader::{is_finished, read_value, walk_unfinished, BlobFile};
pub(crate) use tally::{decode_ref, garbage, BlobTally, Garbage};
pub(crate) use writer::BlobFileInfo;
#[cfg(test)]
use writer::BlobFileWriter;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::error::Error;
    use crate::filename::blob_file_name;
    use crate::fs::FileSystem;
    use crate::options::Compression;
    use crate::testing::MemFs;

    /// Values of every shape: empty, small, large compressible, large
    /// random (incompressible).
    fn values() -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = |n: usize| {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect::<Vec<u8>>()
        };
        vec![
            (b"a".to_vec(), Vec::new()),
            (b"b".to_vec(), b"small".to_vec()),
            (b"c".to_vec(), vec![7u8; 100_000]),
            (b"d".to_vec(), random(100_000)),
            (vec![0xff; 300], random(5000)),
        ]
    }

    fn write(fs: &dyn FileSystem, number: u64, c: Compression) -> (Vec<BlobRef>, BlobFileInfo) {
        let mut w = BlobFileWriter::create(fs, Path::new("/db"), number, c).unwrap();
        let refs = values().iter().map(|(k, v)| w.add(k, v).unwrap()).collect();
        (refs, w.finish().unwrap())
    }

    #[test]
    fn values_read_back_by_reference_and_by_walk() {
        for c in [Compression::None, Compression::Zstd { level: 3 }] {
            let fs = MemFs::new();
            fs.create_dir_all(Path::new("/db")).unwrap();
            let (refs, info) = write(&fs, 7, c);
            assert_eq!(info.blob_count, 5);
            assert_eq!(
                info.file_size,
                fs.file_size(&blob_file_name(Path::new("/db"), 7)).unwrap()
            );
            let f = BlobFile::open(&fs, Path::new("/db"), 7).unwrap();
            assert_eq!(f.footer().blob_count, 5);
            assert_eq!(f.footer().blob_bytes, info.blob_bytes);
            for ((_, v), r) in values().iter().zip(&refs) {
                assert_eq!(&f.read(r).unwrap()[..], &v[..]);
                assert_eq!(r.value_len as usize, v.len());
            }
            // Compression is used where it pays, and only there.
            let zstd = matches!(c, Compression::Zstd { .. });
            assert_eq!(refs[2].is_compressed(), zstd);
            assert!(!refs[3].is_compressed());
            let mut walked = Vec::new();
            f.walk(true, |k, rec| {
                walked.push((k.to_vec(), rec.blob));
                Ok(())
            })
            .unwrap();
            let keys: Vec<Vec<u8>> = values().into_iter().map(|(k, _)| k).collect();
            assert_eq!(walked.iter().map(|w| w.0.clone()).collect::<Vec<_>>(), keys);
            assert_eq!(walked.iter().map(|w| w.1).collect::<Vec<_>>(), refs);
        }
    }

    /// Flips every byte of a small file in turn: each flip is found by
    /// `open`, by the read of the value it damages, or by `walk`; a read
    /// never returns wrong bytes and nothing panics.
    #[test]
    fn every_damaged_byte_is_found() {
        for c in [Compression::None, Compression::Zstd { level: 1 }] {
            let fs = MemFs::new();
            fs.create_dir_all(Path::new("/db")).unwrap();
            let mut w = BlobFileWriter::create(&fs, Path::new("/db"), 1, c).unwrap();
            let vals: Vec<(Vec<u8>, Vec<u8>)> = vec![
                (b"k1".to_vec(), b"value one".to_vec()),
                (b"k2".to_vec(), vec![3u8; 200]),
            ];
            let refs: Vec<BlobRef> = vals.iter().map(|(k, v)| w.add(k, v).unwrap()).collect();
            w.finish().unwrap();
            let path = blob_file_name(Path::new("/db"), 1);
            let good = fs.read_file(&path).unwrap().to_vec();
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x20;
                let fs = MemFs::new();
                fs.create_dir_all(Path::new("/db")).unwrap();
                let mut f = fs.create(&path).unwrap();
                f.append(&bad).unwrap();
                f.sync_data().unwrap();
                drop(f);
                let Ok(file) = BlobFile::open(&fs, Path::new("/db"), 1) else {
                    continue;
                };
                let mut found = file.walk(true, |_, _| Ok(())).is_err();
                for ((_, v), r) in vals.iter().zip(&refs) {
                    match file.read(r) {
                        Ok(got) => assert_eq!(&got[..], &v[..], "byte {i}: wrong value"),
                        Err(e) => {
                            assert!(e.is_corruption(), "byte {i}: {e}");
                            found = true;
                        }
                    }
                }
                assert!(found, "byte {i} of {}: damage not found", good.len());
            }
        }
    }

    #[test]
    fn unfinished_short_and_newer_files_are_refused() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let mut w = BlobFileWriter::create(&fs, Path::new("/db"), 3, Compression::None).unwrap();
        w.add(b"k", &[1u8; 1000]).unwrap();
        drop(w); // never finished: no footer
        let e = BlobFile::open(&fs, Path::new("/db"), 3).unwrap_err();
        assert!(e.is_corruption(), "{e}");
        assert!(e.to_string().contains("000003.blob"), "{e}");
        // Missing file: an I/O error naming it.
        let e = BlobFile::open(&fs, Path::new("/db"), 4).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        // A reference outside the records.
        let (refs, _) = write(&fs, 5, Compression::None);
        let f = BlobFile::open(&fs, Path::new("/db"), 5).unwrap();
        let far = BlobRef {
            offset: f.size(),
            ..refs[1]
        };
        assert!(f.read(&far).unwrap_err().is_corruption());
        let zero = BlobRef {
            offset: 0,
            ..refs[1]
        };
        assert!(f.read(&zero).unwrap_err().is_corruption());
    }
}
