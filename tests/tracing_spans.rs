//! The engine's `tracing` spans and events, captured by a test subscriber
//! (a `tracing-subscriber` layer recording every span's and event's fields)
//! and checked field by field: open/recovery, flush, compaction, stalls,
//! background errors, and that nothing is logged per user operation at
//! `INFO` or above.
//!
//! One global subscriber serves every test of this binary (background
//! threads log too); each test names its database with its own
//! `metrics_label` and looks only at records carrying that `db`.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{memtable_stall, wait_until, GateFs};
use lightning_db::testing::{FaultFs, FaultRule, MemFs, OpKind};
use lightning_db::{Db, Options, WriteOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Field values as text (strings without quotes).
#[derive(Debug, Clone, Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name().into(), v.to_string());
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.insert(f.name().into(), v.to_string());
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.insert(f.name().into(), v.to_string());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.0.insert(f.name().into(), format!("{v:?}"));
    }
}

impl Fields {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    fn num(&self, k: &str) -> u64 {
        self.get(k)
            .unwrap_or_else(|| panic!("no field {k} in {self:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("{k} is not a number in {self:?}"))
    }
}

/// A closed span or an event, as captured.
#[derive(Debug, Clone)]
struct Captured {
    /// `span` or `event`.
    kind: &'static str,
    level: Level,
    /// The span's name, or the event's message.
    name: String,
    fields: Fields,
    /// Enclosing spans, innermost first: (name, fields).
    scope: Vec<(String, Fields)>,
}

impl Captured {
    /// The `db` field, from the record or its enclosing spans.
    fn db(&self) -> Option<&str> {
        self.fields
            .get("db")
            .or_else(|| self.scope.iter().find_map(|(_, f)| f.get("db")))
    }
}

static CAPTURED: Mutex<Vec<Captured>> = Mutex::new(Vec::new());

struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(f);
        }
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(f) = span.extensions_mut().get_mut::<Fields>() {
                values.record(f);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let scope = ctx
            .event_scope(event)
            .map(|s| {
                s.map(|span| {
                    let fields = span
                        .extensions()
                        .get::<Fields>()
                        .cloned()
                        .unwrap_or_default();
                    (span.name().to_string(), fields)
                })
                .collect()
            })
            .unwrap_or_default();
        let name = f.0.remove("message").unwrap_or_default();
        CAPTURED.lock().unwrap().push(Captured {
            kind: "event",
            level: *event.metadata().level(),
            name,
            fields: f,
            scope,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            let fields = span
                .extensions()
                .get::<Fields>()
                .cloned()
                .unwrap_or_default();
            CAPTURED.lock().unwrap().push(Captured {
                kind: "span",
                level: *span.metadata().level(),
                name: span.name().to_string(),
                fields,
                scope: Vec::new(),
            });
        }
    }
}

fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
            .expect("no other subscriber");
    });
}

/// Everything captured so far for database `label`.
fn captured(label: &str) -> Vec<Captured> {
    CAPTURED
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.db() == Some(label))
        .cloned()
        .collect()
}

fn find<'a>(records: &'a [Captured], kind: &str, name: &str) -> &'a Captured {
    records
        .iter()
        .find(|c| c.kind == kind && c.name == name)
        .unwrap_or_else(|| panic!("no {kind} `{name}` in {records:#?}"))
}

fn opts(label: &str) -> Options {
    install();
    Options::default()
        .fs(Arc::new(MemFs::new()))
        .metrics_label(label.into())
}

#[test]
fn open_replays_the_wal_inside_an_open_span() {
    let o = opts("t-open");
    let db = Db::open("/db", o.clone()).unwrap();
    for i in 0..10 {
        db.put(format!("k{i}"), "v").unwrap();
    }
    db.close().unwrap(); // the WAL holds the 10 writes
    let db = Db::open("/db", o).unwrap();
    assert_eq!(db.iter().count(), 10);
    db.close().unwrap();

    let all = captured("t-open");
    let opened: Vec<_> = all
        .iter()
        .filter(|c| c.kind == "event" && c.name == "opened database")
        .collect();
    assert_eq!(opened.len(), 2, "{all:#?}");
    let e = opened[1];
    assert_eq!(e.level, Level::INFO);
    assert_eq!(e.fields.num("records"), 10);
    assert!(e.fields.num("wals_replayed") >= 1);
    assert!(e.fields.num("bytes") > 0);
    assert_eq!(e.fields.num("last_sequence"), 10);
    assert_eq!(e.fields.num("flushed_files"), 1);
    e.fields.num("duration_ms");
    let (span, span_fields) = &e.scope[0];
    assert_eq!(span, "open");
    assert_eq!(span_fields.get("read_only"), Some("false"));
    assert_eq!(span_fields.get("db"), Some("t-open"));
    // Each replayed WAL: a debug event inside the open span.
    let replayed: Vec<_> = all.iter().filter(|c| c.name == "replayed WAL").collect();
    assert!(!replayed.is_empty());
    assert!(replayed
        .iter()
        .all(|r| r.level == Level::DEBUG && r.scope[0].0 == "open"));
    assert_eq!(
        replayed
            .iter()
            .map(|r| r.fields.num("records"))
            .sum::<u64>(),
        10
    );
    assert_eq!(find(&all, "span", "open").fields.get("db"), Some("t-open"));
    assert_eq!(find(&all, "event", "closed database").level, Level::INFO);
}

#[test]
fn flush_and_compaction_spans_carry_their_fields() {
    let mut o = opts("t-jobs");
    o.compaction.disable_auto_compactions = true;
    let db = Db::open("/db", o).unwrap();
    for round in 0..2 {
        for i in 0..100 {
            db.put(format!("k{i:03}"), format!("v{round}")).unwrap();
        }
        db.delete("k000").unwrap();
        db.flush().unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let all = captured("t-jobs");

    let flushed = find(&all, "event", "flushed memtable");
    assert_eq!(flushed.level, Level::INFO);
    assert_eq!(flushed.fields.num("entries"), 101);
    assert!(flushed.fields.num("file_bytes") > 0);
    assert!(flushed.fields.num("memtable_bytes") > 0);
    flushed.fields.num("duration_ms");
    let (span, f) = &flushed.scope[0];
    assert_eq!(span, "flush");
    assert_eq!(f.num("file"), flushed.fields.num("file"));
    assert_eq!(f.num("entries"), 101);

    let done = find(&all, "event", "compaction finished");
    assert_eq!(done.level, Level::INFO);
    assert_eq!(done.fields.num("input_files"), 2);
    assert_eq!(done.fields.get("input_levels"), Some("0"));
    assert_eq!(done.fields.num("output_files"), 1);
    assert!(done.fields.num("output_bytes") > 0);
    // Each file holds k001..k099 and a tombstone of k000 (its put was
    // deleted in the same memtable): the older of each pair is dropped,
    // and the newest tombstone too (last level, no snapshot).
    assert_eq!(done.fields.num("dropped_versions"), 100);
    assert_eq!(done.fields.num("dropped_tombstones"), 1);
    assert_eq!(done.fields.num("filtered_entries"), 0);
    assert_eq!(done.fields.get("trivial_move"), Some("false"));
    let (span, f) = &done.scope[0];
    assert_eq!(span, "compaction");
    assert_eq!(f.num("job"), done.fields.num("job"));
    assert_eq!(f.get("style"), Some("Leveled"));
    assert_eq!(f.num("input_files"), 2);
    assert!(f.num("input_bytes") > 0);
    assert_eq!(f.get("input_levels"), Some("0"));
    assert_eq!(f.num("output_level"), 6);
    assert!(f.get("reason").is_some());
    let started = find(&all, "event", "compaction started");
    assert_eq!(started.level, Level::DEBUG);
}

#[test]
fn stalls_are_reported_with_cause_and_duration() {
    install();
    let o = Options::default().metrics_label("t-stall".into());
    let _db = memtable_stall(o, Duration::from_millis(50));
    let all = captured("t-stall");
    let began = find(
        &all,
        "event",
        "writes stopped: waiting for a memtable flush",
    );
    assert_eq!(began.level, Level::WARN);
    assert_eq!(began.fields.num("frozen_memtables"), 1);
    let ended = find(&all, "event", "write stall ended");
    assert_eq!(ended.level, Level::INFO);
    assert_eq!(ended.fields.get("cause"), Some("memtables"));
    assert!(ended.fields.num("stalled_ms") >= 50, "{ended:?}");
}

#[test]
fn stall_condition_changes_are_reported() {
    install();
    let fs = GateFs::new(2);
    let mut o = Options::default()
        .fs(fs.clone())
        .metrics_label("t-condition".into());
    o.compaction.level0_file_num_compaction_trigger = 2;
    o.compaction.level0_slowdown_writes_trigger = 2;
    let db = Db::open("/db", o).unwrap();
    let _gate = fs.open_on_drop();
    for round in 0..2 {
        for i in 0..10 {
            db.put(format!("k{i}"), format!("{round}")).unwrap();
        }
        db.flush().unwrap();
    }
    wait_until("the slowdown", || db.stats().stalls.slowed_now);
    fs.open();
    db.wait_for_compactions().unwrap();
    let all = captured("t-condition");
    let changes: Vec<_> = all
        .iter()
        .filter(|c| c.name == "write stall condition changed")
        .collect();
    assert_eq!(changes.len(), 2, "{all:#?}");
    assert_eq!(
        changes[0].fields.get("condition"),
        Some("slowdown:level0_files")
    );
    assert_eq!(changes[0].fields.get("previous"), Some("none"));
    assert_eq!(changes[0].fields.num("level0_files"), 2);
    assert_eq!(changes[1].fields.get("condition"), Some("none"));
    assert!(changes.iter().all(|c| c.level == Level::INFO));
}

#[test]
fn background_errors_are_logged_as_errors() {
    install();
    let fs = Arc::new(FaultFs::new());
    let db = Db::open(
        "/db",
        Options::default()
            .fs(fs.clone())
            .metrics_label("t-error".into()),
    )
    .unwrap();
    fs.inject(FaultRule::new(OpKind::Sync, 0, std::io::ErrorKind::Other).on(".log"));
    let mut b = lightning_db::WriteBatch::new();
    b.put("k", "v");
    assert!(db
        .write_opt(b, &WriteOptions::default().sync(true))
        .is_err());
    let all = captured("t-error");
    let e = find(
        &all,
        "event",
        "background error: the database stops accepting writes",
    );
    assert_eq!(e.level, Level::ERROR);
    assert!(e.fields.get("error").unwrap().contains(".log"), "{e:?}");
}

#[test]
fn nothing_is_logged_per_user_operation_at_info() {
    let db = Db::open("/db", opts("t-quiet")).unwrap();
    let before = captured("t-quiet").len();
    for i in 0..2_000 {
        db.put(format!("k{i}"), "v").unwrap();
        let _ = db.get(format!("k{}", i / 2)).unwrap();
        if i % 100 == 0 {
            let _ = db.iter().take(3).count();
            let snap = db.snapshot();
            let _ = snap.get("k1").unwrap();
            db.transaction_with(|tx| {
                tx.put("t", "v");
                Ok(())
            })
            .unwrap();
        }
    }
    let during: Vec<_> = captured("t-quiet").split_off(before);
    assert!(during.is_empty(), "{during:#?}");
}
