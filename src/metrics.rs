//! Prometheus metrics, rendered as text at `GET /metrics`.
//!
//! One process-wide set ([`global`]): Prometheus scrapes a process, and the
//! layers that record (connection, hub, store engine) must not depend on
//! each other just to pass a handle around. Every series is resolved once at
//! start (label values come from static lists such as
//! [`REQUEST_KINDS`]), so recording on a hot path is one atomic add, with no
//! lookup and no allocation.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::protocol::{ErrorCode, REQUEST_KINDS};

/// Every error code, in the order of [`ErrorCode`]'s variants.
const ERROR_CODES: [ErrorCode; 11] = [
    ErrorCode::BadRequest,
    ErrorCode::UnknownType,
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::Conflict,
    ErrorCode::RateLimited,
    ErrorCode::TooLarge,
    ErrorCode::LimitExceeded,
    ErrorCode::Unavailable,
    ErrorCode::Internal,
];

/// Latency buckets in seconds: 50 µs to 5 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// What kind of frame came in, for `hubbub_frames_in_total{kind}`.
#[derive(Clone, Copy, Debug)]
pub enum FrameIn {
    /// A text frame whose `type` is the request kind at this index of [`REQUEST_KINDS`].
    Request(usize),
    /// A text frame that is not JSON, has no usable `type`, or an unknown one.
    Invalid,
    /// A binary frame (refused).
    Binary,
    /// A frame refused by the rate limit before it was parsed.
    RateLimited,
}

/// What kind of frame went out, for `hubbub_frames_out_total{kind}`.
#[derive(Clone, Copy, Debug)]
pub enum FrameOut {
    /// An `ok` reply.
    Ok,
    /// An `error` reply.
    Error,
    /// A pushed event.
    Event,
}

/// The node's metrics. Fields are public so recording sites read plainly.
pub struct Metrics {
    registry: Registry,
    /// WebSocket connections currently open (authenticated or not).
    pub sockets_open: IntGauge,
    /// WebSocket connections upgraded since start.
    pub sockets_opened: IntCounter,
    frames_in_request: Vec<IntCounter>,
    frames_in_invalid: IntCounter,
    frames_in_binary: IntCounter,
    frames_in_rate_limited: IntCounter,
    frames_out: [IntCounter; 3],
    /// Event frames pushed into a socket's outbound queue.
    pub events_delivered: IntCounter,
    /// Sockets closed because their outbound queue was full.
    pub slow_consumer_closes: IntCounter,
    /// Ephemeral frames (typing) not queued: the socket's queue was over half full.
    pub ephemeral_dropped: IntCounter,
    errors: Vec<IntCounter>,
    /// Time to run one request (parse to reply), in seconds.
    pub request_seconds: Histogram,
    /// Time from submitting a write job to its durable commit, in seconds
    /// (on CQL: one write or LWT request, as the driver sees it).
    pub store_write_seconds: Histogram,
    /// Time of one read on the reader pool, in seconds (queueing included;
    /// on CQL: a read request's first page, as the driver sees it).
    pub store_read_seconds: Histogram,
    /// Write jobs committed per SQLite transaction (group commit).
    pub store_batch_jobs: Histogram,
    /// Time of one broker publish, in seconds.
    pub broker_publish_seconds: Histogram,
    /// Time of one SQLite COMMIT (writing the WAL; not its fsync), in seconds.
    pub store_commit_seconds: Histogram,
    /// Time of one WAL fsync by the syncer (`--sync full`), in seconds.
    pub store_sync_seconds: Histogram,
    /// Writes per WAL fsync (the group commits it made durable, summed).
    pub store_sync_jobs: Histogram,
    /// Time of one WAL checkpoint, by the checkpointer or the writer, in seconds.
    pub store_checkpoint_seconds: Histogram,
}

/// The process's metrics, registered on first use.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).unwrap_or_else(|e| {
        // Only reachable with a malformed name or buckets in this file.
        panic!("metric {name}: {e}")
    });
    register(registry, Box::new(h.clone()));
    h
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let v = IntCounterVec::new(Opts::new(name, help), &[label]).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, Box::new(v.clone()));
    v
}

fn register(registry: &Registry, c: Box<dyn prometheus::core::Collector>) {
    if let Err(e) = registry.register(c) {
        tracing::error!(error = %e, "metrics: registration failed");
    }
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new_custom(Some("hubbub".into()), None).unwrap_or_default();
        let sockets_open = IntGauge::new("sockets_open", "WebSocket connections currently open.")
            .unwrap_or_else(|e| panic!("metric sockets_open: {e}"));
        register(&registry, Box::new(sockets_open.clone()));
        let sockets_opened = IntCounter::new("sockets_opened_total", "WebSocket connections upgraded since start.")
            .unwrap_or_else(|e| panic!("metric sockets_opened_total: {e}"));
        register(&registry, Box::new(sockets_opened.clone()));
        let frames_in = counter_vec(&registry, "frames_in_total", "Frames received, by request kind.", "kind");
        let frames_out = counter_vec(&registry, "frames_out_total", "Frames sent, by kind.", "kind");
        let errors = counter_vec(&registry, "errors_total", "Error replies sent, by code.", "code");
        let simple = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            register(&registry, Box::new(c.clone()));
            c
        };
        let events_delivered = simple("events_delivered_total", "Event frames queued to sockets.");
        let slow_consumer_closes = simple("slow_consumer_closes_total", "Sockets closed as slow consumers.");
        let ephemeral_dropped =
            simple("ephemeral_dropped_total", "Ephemeral frames (typing) dropped for a queue over half full.");
        let lat = LATENCY_BUCKETS.to_vec();
        Metrics {
            sockets_open,
            sockets_opened,
            frames_in_request: REQUEST_KINDS.iter().map(|k| frames_in.with_label_values(&[*k])).collect(),
            frames_in_invalid: frames_in.with_label_values(&["invalid"]),
            frames_in_binary: frames_in.with_label_values(&["binary"]),
            frames_in_rate_limited: frames_in.with_label_values(&["rate_limited"]),
            frames_out: [
                frames_out.with_label_values(&["ok"]),
                frames_out.with_label_values(&["error"]),
                frames_out.with_label_values(&["event"]),
            ],
            events_delivered,
            slow_consumer_closes,
            ephemeral_dropped,
            errors: ERROR_CODES.iter().map(|c| errors.with_label_values(&[c.as_str()])).collect(),
            request_seconds: histogram(&registry, "request_seconds", "Time to handle one request.", lat.clone()),
            store_write_seconds: histogram(
                &registry,
                "store_write_seconds",
                "Store write: submit to durable commit.",
                lat.clone(),
            ),
            store_read_seconds: histogram(
                &registry,
                "store_read_seconds",
                "Store read on the reader pool.",
                lat.clone(),
            ),
            store_batch_jobs: histogram(
                &registry,
                "store_batch_jobs",
                "Write jobs per committed transaction.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
            ),
            broker_publish_seconds: histogram(&registry, "broker_publish_seconds", "One broker publish.", lat.clone()),
            store_commit_seconds: histogram(&registry, "store_commit_seconds", "One SQLite COMMIT.", lat.clone()),
            store_sync_seconds: histogram(&registry, "store_sync_seconds", "One WAL fsync (--sync full).", lat.clone()),
            store_sync_jobs: histogram(
                &registry,
                "store_sync_jobs",
                "Writes made durable by one WAL fsync.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0],
            ),
            store_checkpoint_seconds: histogram(&registry, "store_checkpoint_seconds", "One WAL checkpoint.", lat),
            registry,
        }
    }

    /// Counts one incoming frame.
    pub fn frame_in(&self, kind: FrameIn) {
        let c = match kind {
            FrameIn::Request(i) => self.frames_in_request.get(i).unwrap_or(&self.frames_in_invalid),
            FrameIn::Invalid => &self.frames_in_invalid,
            FrameIn::Binary => &self.frames_in_binary,
            FrameIn::RateLimited => &self.frames_in_rate_limited,
        };
        c.inc();
    }

    /// Counts outgoing frames.
    pub fn frames_out(&self, kind: FrameOut, n: u64) {
        self.frames_out[kind as usize].inc_by(n);
    }

    /// Counts one error reply.
    pub fn error(&self, code: ErrorCode) {
        if let Some(c) = ERROR_CODES.iter().position(|x| *x == code).and_then(|i| self.errors.get(i)) {
            c.inc();
        }
    }

    /// Registers a collector kept elsewhere (an area's own metrics, e.g.
    /// `push::metrics`) so it renders with the rest, under the `hubbub_` prefix.
    pub fn register(&self, c: Box<dyn prometheus::core::Collector>) {
        register(&self.registry, c);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(8 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics: encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Seconds since `start`, for histograms.
pub fn since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// Counts an open socket for as long as it lives.
pub struct SocketGauge;

impl SocketGauge {
    /// Counts one more open socket until the guard is dropped.
    pub fn open() -> SocketGauge {
        let m = global();
        m.sockets_open.inc();
        m.sockets_opened.inc();
        SocketGauge
    }
}

impl Drop for SocketGauge {
    fn drop(&mut self) {
        global().sockets_open.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_renders() {
        let m = global();
        m.frame_in(FrameIn::Request(0));
        m.frame_in(FrameIn::Request(usize::MAX));
        m.frames_out(FrameOut::Event, 3);
        m.error(ErrorCode::Internal);
        let text = m.render();
        assert!(text.contains("hubbub_frames_in_total{kind=\"auth.register\"}"));
        assert!(text.contains("hubbub_frames_in_total{kind=\"invalid\"}"));
        assert!(text.contains("hubbub_frames_out_total{kind=\"event\"}"));
        assert!(text.contains("hubbub_errors_total{code=\"internal\"}"));
        assert!(text.contains("hubbub_store_write_seconds_bucket"));
        assert!(text.contains("hubbub_sockets_open"));
    }
}
