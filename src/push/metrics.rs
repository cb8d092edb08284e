//! The push metrics (`hubbub_push_*` at `GET /metrics`), registered into
//! the process-wide set on first use.

use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

/// Delivery latency buckets in seconds (first enqueue to accepted): 10 ms to 1 day.
const DELIVERY_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0, 86400.0];

/// Counters, gauge and histogram of the push path.
pub struct PushMetrics {
    /// Notifications queued (leased ones included), as last counted by a worker.
    pub queue_depth: IntGauge,
    /// Notifications a push service or gateway accepted, by platform.
    pub sent: IntCounterVec,
    /// Failed delivery attempts (each retry counts), by platform.
    pub failed: IntCounterVec,
    /// Notifications given up (too old, or refused for good), by platform.
    pub gave_up: IntCounterVec,
    /// Devices removed because their endpoint or gateway said they are gone.
    pub devices_dropped: IntCounter,
    /// Notifications not queued, by reason (`device_full`: the device has
    /// `--push-max-pending` jobs).
    pub not_queued: IntCounterVec,
    /// Intake entries the last intake pass read (`--push-intake` means more wait).
    pub intake_batch: IntGauge,
    /// Intake passes that failed (retried; their entries stay).
    pub intake_failed: IntCounter,
    /// Intake starts, by where the cursor came from (`stored`: the node's
    /// saved cursor; `floor`: the store's intake floor; `give_up`: back
    /// `--push-give-up-secs`).
    pub intake_starts: IntCounterVec,
    /// How far the intake's cursor trails the clock, in seconds (at start:
    /// how far back it resumed).
    pub intake_lag_seconds: IntGauge,
    /// Intake cursor saves (at most about one per second).
    pub intake_cursor_saves: IntCounter,
    /// Time from a notification's first enqueue to its acceptance, in seconds.
    pub delivery_seconds: Histogram,
}

/// The process's push metrics.
pub fn push() -> &'static PushMetrics {
    static M: LazyLock<PushMetrics> = LazyLock::new(PushMetrics::new);
    &M
}

fn ok<T>(name: &str, r: prometheus::Result<T>) -> T {
    // Only reachable with a malformed name or buckets in this file.
    r.unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

impl PushMetrics {
    fn new() -> PushMetrics {
        let g = crate::metrics::global();
        let vec = |name: &str, help: &str, label: &str| {
            let v = ok(name, IntCounterVec::new(Opts::new(name, help), &[label]));
            g.register(Box::new(v.clone()));
            v
        };
        let queue_depth = ok("push_queue_depth", IntGauge::new("push_queue_depth", "Push notifications queued."));
        g.register(Box::new(queue_depth.clone()));
        let devices_dropped =
            ok("push_devices_dropped_total", IntCounter::new("push_devices_dropped_total", "Push devices gone."));
        g.register(Box::new(devices_dropped.clone()));
        let intake_batch =
            ok("push_intake_batch", IntGauge::new("push_intake_batch", "Intake entries read by the last pass."));
        g.register(Box::new(intake_batch.clone()));
        let intake_failed =
            ok("push_intake_failed_total", IntCounter::new("push_intake_failed_total", "Failed intake passes."));
        g.register(Box::new(intake_failed.clone()));
        let intake_lag_seconds = ok(
            "push_intake_lag_seconds",
            IntGauge::new("push_intake_lag_seconds", "How far the push intake cursor trails the clock."),
        );
        g.register(Box::new(intake_lag_seconds.clone()));
        let intake_cursor_saves = ok(
            "push_intake_cursor_saves_total",
            IntCounter::new("push_intake_cursor_saves_total", "Push intake cursor saves."),
        );
        g.register(Box::new(intake_cursor_saves.clone()));
        let opts = HistogramOpts::new("push_delivery_seconds", "First enqueue to accepted by the push service.")
            .buckets(DELIVERY_BUCKETS.to_vec());
        let delivery_seconds = ok("push_delivery_seconds", Histogram::with_opts(opts));
        g.register(Box::new(delivery_seconds.clone()));
        PushMetrics {
            queue_depth,
            sent: vec("push_sent_total", "Push notifications accepted.", "platform"),
            failed: vec("push_failed_total", "Failed push delivery attempts.", "platform"),
            gave_up: vec("push_gave_up_total", "Push notifications given up.", "platform"),
            devices_dropped,
            not_queued: vec("push_not_queued_total", "Push notifications not queued.", "reason"),
            intake_batch,
            intake_failed,
            intake_starts: vec("push_intake_starts_total", "Push intake starts, by cursor source.", "from"),
            intake_lag_seconds,
            intake_cursor_saves,
            delivery_seconds,
        }
    }
}
