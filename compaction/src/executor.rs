//! Runs a compaction job: splits it into key-range subcompactions of about
//! equal input bytes and merges them in parallel on a rayon pool.

use crate::merge::{write_outputs, GcPolicy, MergeStats};
use crate::range_del::FragmentedTombstones;
use crate::types::{CompactionJob, EntryCursor, KeyRange, RunSink, UserHooks};
use rayon::prelude::*;

/// The job's input files, as the engine opens them.
pub trait JobInputs: Sync {
    /// The engine's error type.
    type Error: Send;
    /// A cursor over one input run.
    type Cursor: EntryCursor<Error = Self::Error>;
    /// Cursors over every input run of the job (each level-0 file alone,
    /// each deeper level as one run), restricted to the user keys of
    /// `range`: positioned at the first entry whose user key is `>=
    /// range.start` and ending before the first user key `>= range.end`.
    fn open(&self, range: &KeyRange) -> Result<Vec<Self::Cursor>, Self::Error>;
    /// Every range tombstone of the job's input files, fragmented
    /// together ([`FragmentedTombstones::merge`]), not garbage-collected.
    /// Called once per job. The default is none.
    fn range_tombstones(&self) -> Result<FragmentedTombstones, Self::Error> {
        Ok(FragmentedTombstones::empty())
    }
}

/// The outcome of a job.
#[derive(Debug)]
pub struct JobResult<O> {
    /// New files, in key order.
    pub outputs: Vec<O>,
    /// Merge counters, added over the subcompactions.
    pub stats: MergeStats,
    /// How many subcompactions ran.
    pub subcompactions: usize,
}

/// Splits `job` into at most `job.max_subcompactions` key ranges of about
/// equal input bytes, in key order, covering all keys (the first starts
/// and the last ends unbounded).
///
/// Candidate split points are the input files' boundary user keys. Each
/// file's bytes are spread evenly over the gaps between the candidates it
/// spans (a file of one key counts at its key); the ranges are cut at the
/// candidates where the running total crosses `i / n` of the whole. A user
/// key is never split, as ranges are cut between user keys.
pub fn subcompaction_ranges(job: &CompactionJob) -> Vec<KeyRange> {
    let want = job.max_subcompactions.max(1);
    if want == 1 {
        return vec![KeyRange::all()];
    }
    let mut bounds: Vec<&[u8]> = job
        .input_files()
        .flat_map(|f| [f.smallest.as_slice(), f.largest.as_slice()])
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    if bounds.len() < 2 {
        return vec![KeyRange::all()];
    }
    // weight[i]: bytes between bounds[i] and bounds[i + 1] (the last slot
    // holds point files at the largest bound).
    let mut weight = vec![0f64; bounds.len()];
    for f in job.input_files() {
        let a = bounds.partition_point(|b| *b < f.smallest.as_slice());
        let b = bounds.partition_point(|b| *b < f.largest.as_slice());
        if b <= a {
            if let Some(w) = weight.get_mut(a) {
                *w += f.size as f64;
            }
        } else {
            let per = f.size as f64 / (b - a) as f64;
            for w in &mut weight[a..b] {
                *w += per;
            }
        }
    }
    let total: f64 = weight.iter().sum();
    if total <= 0.0 {
        return vec![KeyRange::all()];
    }
    // Cut at bounds[i + 1] when the bytes before it pass the next share.
    let mut cuts: Vec<&[u8]> = Vec::new();
    let mut acc = 0.0;
    for i in 0..bounds.len() - 1 {
        acc += weight[i];
        let next_share = total * (cuts.len() + 1) as f64 / want as f64;
        if cuts.len() + 1 < want && acc >= next_share && acc < total {
            cuts.push(bounds[i + 1]);
        }
    }
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut start: Option<Vec<u8>> = None;
    for c in cuts {
        ranges.push(KeyRange {
            start: start.take(),
            end: Some(c.to_vec()),
        });
        start = Some(c.to_vec());
    }
    ranges.push(KeyRange { start, end: None });
    ranges
}

/// The outputs and counters of one subcompaction.
type Piece<O, E> = Result<(Vec<O>, MergeStats), E>;

/// Runs `job` (a merge; trivial moves need no call, though they work as a
/// rewrite): splits it with [`subcompaction_ranges`], merges each range
/// with its own cursors and output files in parallel on `pool`, and
/// returns the outputs in key order. `snapshots` are the live snapshots'
/// sequence numbers, and `hooks` the merge operator and compaction filter
/// (see [`GcPolicy`]). The first error (in key order) is returned; files of
/// other ranges already finished are the caller's to delete.
///
/// The job's range tombstones ([`JobInputs::range_tombstones`], read once)
/// are clipped to each range and passed to [`write_outputs`], which drops
/// what they delete and stores what garbage collection keeps of them in
/// the range's files (a range with tombstones and no surviving entry gets
/// one file of tombstones only). In the result's stats,
/// `input_range_tombstones` counts the job's tombstones once.
pub fn run_job<I, S>(
    job: &CompactionJob,
    inputs: &I,
    sink: &S,
    snapshots: &[u64],
    hooks: UserHooks,
    pool: &rayon::ThreadPool,
) -> Result<JobResult<S::Output>, S::Error>
where
    I: JobInputs<Error = S::Error>,
    S: RunSink,
{
    let policy = GcPolicy {
        snapshots: snapshots.to_vec(),
        bottommost: job.bottommost,
        merge: hooks.merge,
        filter: hooks.filter,
    };
    let tombstones = inputs.range_tombstones()?;
    let ranges = subcompaction_ranges(job);
    let target = job.target_file_size.max(1);
    let run_one = |r: &KeyRange| -> Piece<S::Output, S::Error> {
        let cursors = inputs.open(r)?;
        let ts = tombstones.clip(r.start.as_deref(), r.end.as_deref());
        write_outputs(cursors, &policy, &ts, r, sink, target)
    };
    let results: Vec<Piece<S::Output, S::Error>> = if ranges.len() == 1 {
        ranges.iter().map(run_one).collect()
    } else {
        pool.install(|| ranges.par_iter().map(run_one).collect())
    };
    let mut out = JobResult {
        outputs: Vec::new(),
        stats: MergeStats::default(),
        subcompactions: ranges.len(),
    };
    for r in results {
        let (files, stats) = r?;
        out.outputs.extend(files);
        out.stats.add(&stats);
    }
    out.stats.input_range_tombstones = tombstones.len() as u64;
    Ok(out)
}

#[cfg(test)]
mod tests;
