//! [`TimedSeek`]: measures the first positioning of an iterator, for the
//! `iterator_seek` latency at `StatsLevel::All` (only then is it used).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::local::Op;
use super::Metrics;
use crate::error::Result;
use crate::iter::InternalIterator;

/// An internal iterator that times its first seek (of any kind) and then
/// forwards every call unchanged.
pub(crate) struct TimedSeek {
    it: Box<dyn InternalIterator>,
    metrics: Option<Arc<Metrics>>,
}

impl TimedSeek {
    pub(crate) fn new(it: Box<dyn InternalIterator>, metrics: Arc<Metrics>) -> Self {
        TimedSeek {
            it,
            metrics: Some(metrics),
        }
    }

    fn timed(&mut self, seek: impl FnOnce(&mut dyn InternalIterator)) {
        let t = self.metrics.is_some().then(Instant::now);
        seek(&mut *self.it);
        if let Some(m) = self.metrics.take() {
            m.latency(Op::IteratorSeek, t);
        }
    }
}

impl InternalIterator for TimedSeek {
    fn valid(&self) -> bool {
        self.it.valid()
    }
    fn seek_to_first(&mut self) {
        self.timed(|it| it.seek_to_first());
    }
    fn seek_to_last(&mut self) {
        self.timed(|it| it.seek_to_last());
    }
    fn seek(&mut self, target: &[u8]) {
        self.timed(|it| it.seek(target));
    }
    fn seek_for_prev(&mut self, target: &[u8]) {
        self.timed(|it| it.seek_for_prev(target));
    }
    fn next(&mut self) {
        self.it.next();
    }
    fn prev(&mut self) {
        self.it.prev();
    }
    fn key(&self) -> &[u8] {
        self.it.key()
    }
    fn value(&self) -> &[u8] {
        self.it.value()
    }
    fn value_bytes(&self) -> Bytes {
        self.it.value_bytes()
    }
    fn status(&self) -> Result<()> {
        self.it.status()
    }
}
