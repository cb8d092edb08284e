//! Bookkeeping that must be right for the figures to mean anything:
//! latency histograms (recorded in microseconds, merged across tasks),
//! failure counts by reason, and the send-time stamp carried in each message.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly (60 s); larger values are clamped.
const MAX_MICROS: u64 = 60_000_000;

/// A latency histogram in microseconds, 3 significant digits.
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Histogram<u64>,
    clamped: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram covering 1 µs to 60 s.
    pub fn new() -> Latency {
        #[allow(clippy::expect_used)]
        let hist = Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant bounds that hdrhistogram accepts");
        Latency { hist, clamped: 0 }
    }

    /// Records one latency. Values above 60 s are recorded as 60 s and counted.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        if us > MAX_MICROS {
            self.clamped += 1;
        }
        let _ = self.hist.record(us.min(MAX_MICROS));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.hist.add(&other.hist);
        self.clamped += other.clamped;
    }

    /// Values recorded.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The percentiles reported, in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.hist.len(),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: ms(self.hist.max()),
            clamped: self.clamped,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
    /// Values above 60 s, recorded as 60 s.
    pub clamped: u64,
}

/// Failures counted by reason (a short, stable string).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Failures(pub BTreeMap<String, u64>);

impl Failures {
    /// Counts one failure.
    pub fn add(&mut self, reason: impl Into<String>) {
        *self.0.entry(reason.into()).or_default() += 1;
    }

    /// Counts `n` failures of one reason.
    pub fn add_n(&mut self, reason: impl Into<String>, n: u64) {
        if n > 0 {
            *self.0.entry(reason.into()).or_default() += n;
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Failures) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Text of a load-test message: the phase, sender, sequence number and the
/// *scheduled* send time (µs since the run's base instant), so the receiver
/// measures latency from when the message should have left, not when it did.
pub fn stamp(phase: u32, sender: usize, seq: u64, scheduled_us: u64) -> String {
    format!("lt {phase} {sender} {seq} {scheduled_us}")
}

/// A parsed [`stamp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// `dm` run or ramp step the message belongs to.
    pub phase: u32,
    /// Index of the sending pair.
    pub sender: usize,
    /// The sender's sequence number (also the request id).
    pub seq: u64,
    /// Scheduled send time, µs after the phase start.
    pub scheduled_us: u64,
}

/// Parses a [`stamp`]; `None` for any other text.
pub fn parse_stamp(text: &str) -> Option<Stamp> {
    let mut it = text.strip_prefix("lt ")?.split(' ');
    let s = Stamp {
        phase: it.next()?.parse().ok()?,
        sender: it.next()?.parse().ok()?,
        seq: it.next()?.parse().ok()?,
        scheduled_us: it.next()?.parse().ok()?,
    };
    it.next().is_none().then_some(s)
}

/// When message `seq` (from 0) of a sender is due, in µs after the phase
/// start, at `rate` messages per second. Senders are spread over the first
/// interval by `offset` (0..1) so they do not all fire at once.
pub fn due_us(seq: u64, rate: f64, offset: f64) -> u64 {
    ((seq as f64 + offset) * 1_000_000.0 / rate) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_values() {
        let mut l = Latency::new();
        for ms in 1..=1000u64 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 2.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
    }

    #[test]
    fn merging_equals_recording_in_one() {
        let (mut a, mut b, mut all) = (Latency::new(), Latency::new(), Latency::new());
        for us in [5u64, 50, 500, 5000] {
            a.record(Duration::from_micros(us));
            all.record(Duration::from_micros(us));
        }
        for us in [7u64, 70_000, 700_000] {
            b.record(Duration::from_micros(us));
            all.record(Duration::from_micros(us));
        }
        a.merge(&b);
        assert_eq!(a.summary(), all.summary());
        assert_eq!(a.count(), 7);
    }

    #[test]
    fn huge_and_zero_latencies_are_kept() {
        let mut l = Latency::new();
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(3600));
        let s = l.summary();
        assert_eq!(s.count, 2);
        assert_eq!(s.clamped, 1);
        assert!(s.max_ms >= 59_000.0);
        assert_eq!(Latency::new().summary(), LatencySummary::default());
    }

    #[test]
    fn stamps_round_trip_and_reject_other_text() {
        let t = stamp(3, 17, 42, 1_234_567);
        assert_eq!(parse_stamp(&t), Some(Stamp { phase: 3, sender: 17, seq: 42, scheduled_us: 1_234_567 }));
        assert_eq!(parse_stamp("hello"), None);
        assert_eq!(parse_stamp("lt 1 2 3"), None);
        assert_eq!(parse_stamp("lt 1 2 3 4 5"), None);
        assert_eq!(parse_stamp("lt a 2 3 4"), None);
    }

    #[test]
    fn schedule_is_open_loop() {
        assert_eq!(due_us(0, 10.0, 0.0), 0);
        assert_eq!(due_us(10, 10.0, 0.0), 1_000_000);
        assert_eq!(due_us(1, 100.0, 0.5), 15_000);
    }

    #[test]
    fn failures_merge_by_reason() {
        let mut a = Failures::default();
        a.add("timeout");
        let mut b = Failures::default();
        b.add("timeout");
        b.add("http 401");
        a.merge(&b);
        assert_eq!(a.0["timeout"], 2);
        assert_eq!(a.total(), 3);
    }
}
