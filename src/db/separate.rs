//! Key-value separation at put time (issue 18; WiscKey's value log): the
//! write-group leader moves each large value of its group to the live blob
//! file of the memtable it goes to, and logs and inserts a reference
//! instead. A 100 KB put then costs one copy into the batch and one write
//! to the blob file; the WAL record, the memtable entry, the flush and
//! every compaction move a reference of about 20 bytes.
//!
//! Order (see `crate::blob::LiveBlobFile` and `super::wal::Wal`): values
//! are appended, then handed to the OS, then the group's WAL records are
//! appended; a WAL sync syncs the blob files first. So a WAL record that
//! survives a process crash names values that survive it too, and a
//! durable record names durable values. After a power loss an unsynced
//! record may survive without its value: recovery treats it as the end of
//! the log (`super::open`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::tree::ActiveMems;
use super::wal::Wal;
use super::DbInner;
use crate::batch::{OpKind, WriteBatch};
use crate::blob::format::RECORD_HEADER_LEN;
use crate::blob::LiveBlobFile;
use crate::error::Result;

impl DbInner {
    /// Moves the values of `b`'s puts that are large enough for their
    /// keyspace's `min_blob_size` (blob files on, no TTL) to the live blob
    /// files of their memtables in `mems`, replacing each put by a
    /// reference (`OpKind::PutBlob`). Called by the leader, WAL lock held,
    /// for each batch of its group before any is logged; the group's
    /// files are then handed to the OS ([`Wal::publish_blobs`]) before its
    /// records are appended. A failure fails the WAL (fail-stop).
    pub(super) fn separate_values(
        &self,
        wal: &mut Wal,
        mems: &ActiveMems,
        b: &mut WriteBatch,
    ) -> Result<()> {
        if b.max_value() < mems.min_separated() {
            return Ok(());
        }
        let mut written = 0u64;
        let res = b.replace_ops(|op| {
            if op.kind != OpKind::Put {
                return Ok(None);
            }
            let Some(mem) = mems.get(op.keyspace) else {
                return Ok(None);
            };
            let Some((min, compression)) = mem.separation() else {
                return Ok(None);
            };
            if op.value.len() < min {
                return Ok(None);
            }
            let blob = mem.live_blob_or_create(|| {
                let n = self.next_file_number.fetch_add(1, Ordering::AcqRel);
                tracing::debug!(
                    db = self.metrics.label.as_str(),
                    file = n,
                    "starting a live blob file"
                );
                LiveBlobFile::create(
                    self.fs.as_ref(),
                    &self.dir,
                    n,
                    compression,
                    Arc::clone(&self.blob_bytes_read),
                )
            })?;
            wal.note_blob(blob);
            let r = blob.append(op.key, op.value)?;
            written += (RECORD_HEADER_LEN + op.key.len()) as u64 + u64::from(r.stored_len);
            Ok(Some((OpKind::PutBlob, r.encode())))
        });
        self.io
            .blob_bytes_written
            .fetch_add(written, Ordering::Relaxed);
        match res {
            Ok(()) => Ok(()),
            Err(e) => wal.fail_with(e),
        }
    }
}
