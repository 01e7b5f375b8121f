//! [`BlobTally`]: counts blob references by blob file, so that a
//! compaction learns how much of each blob file became garbage: the
//! references its inputs held minus those its outputs hold.

use std::collections::BTreeMap;
use std::path::PathBuf;

use parking_lot::Mutex;

use super::format::{BlobRef, RECORD_HEADER_LEN};
use crate::error::{Error, Result};

/// Records and bytes referenced per blob file, from several threads (the
/// subcompactions of one job).
#[derive(Debug, Default)]
pub(crate) struct BlobTally(Mutex<BTreeMap<u64, (u64, u64)>>);

impl BlobTally {
    /// Counts the reference `encoded` of a key of `user_key_len` bytes:
    /// one record of `20 + key + stored value` bytes in its blob file.
    pub(crate) fn note(&self, user_key_len: usize, encoded: &[u8]) -> Result<BlobRef> {
        let r = decode_ref(encoded)?;
        let bytes = (RECORD_HEADER_LEN + user_key_len) as u64 + u64::from(r.stored_len);
        let mut m = self.0.lock();
        let e = m.entry(r.file_number).or_insert((0, 0));
        e.0 += 1;
        e.1 += bytes;
        Ok(r)
    }

    /// The counts, by blob file.
    pub(crate) fn counts(&self) -> BTreeMap<u64, (u64, u64)> {
        self.0.lock().clone()
    }
}

/// Decodes a blob reference met by a flush or compaction (`Corruption`
/// when it does not decode: the tables it came from were checksummed).
pub(crate) fn decode_ref(encoded: &[u8]) -> Result<BlobRef> {
    BlobRef::decode(encoded).map_err(|e| {
        Error::corruption(
            PathBuf::from("<compaction input>"),
            0,
            format!("bad blob reference: {}", e.reason),
        )
    })
}

/// Records of one blob file that became garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Garbage {
    /// The blob file.
    pub(crate) file: u64,
    /// Records.
    pub(crate) count: u64,
    /// Their bytes.
    pub(crate) bytes: u64,
}

/// What became garbage: for each blob file, the references `inputs` held
/// beyond those `outputs` hold (outputs never hold more).
pub(crate) fn garbage(inputs: &BlobTally, outputs: &BlobTally) -> Result<Vec<Garbage>> {
    let out = outputs.counts();
    let read = inputs.counts();
    let mut g = Vec::new();
    for (&file, &(count, bytes)) in &read {
        let (oc, ob) = out.get(&file).copied().unwrap_or((0, 0));
        if oc > count || ob > bytes {
            return Err(Error::Internal(format!(
                "compaction wrote {oc} references to blob file {file} but read only {count}"
            )));
        }
        if count > oc {
            g.push(Garbage {
                file,
                count: count - oc,
                bytes: bytes - ob,
            });
        }
    }
    if let Some(f) = out.keys().find(|f| !read.contains_key(f)) {
        // A relocated value's new file is counted in neither: outputs
        // only count references carried over from the inputs.
        return Err(Error::Internal(format!(
            "compaction wrote references to blob file {f} that its inputs did not hold"
        )));
    }
    Ok(g)
}
