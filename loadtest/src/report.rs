//! Results: a human table on stdout, or JSON with `--json`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::connect::ConnectReport;
use crate::dm::PhaseReport;
use crate::fanout::FanoutReport;
use crate::instr::InstrReport;
use crate::stats::{Failures, LatencySummary};

/// One step of a ramp.
#[derive(Debug, Serialize)]
pub struct RampStep {
    /// 100% delivered with no errors, and p99 within the bound.
    pub pass: bool,
    /// What the step measured.
    pub phase: PhaseReport,
}

/// The result of one scenario.
#[derive(Debug, Serialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Report {
    /// `connect`.
    Connect(ConnectReport),
    /// `dm`: one phase.
    Dm { setup_failures: Failures, phase: PhaseReport },
    /// `ramp`: its steps, up to the first failing one.
    Ramp { setup_failures: Failures, p99_bound_ms: f64, highest_passing_rate: Option<f64>, steps: Vec<RampStep> },
    /// `fanout`.
    Fanout(FanoutReport),
    /// `ephemeral`: typing events at a fixed rate, against hubbub or the relay.
    Ephemeral { relay: bool, setup_failures: Failures, phase: PhaseReport },
    /// `ephemeral --ramp`: its steps, up to the first failing one.
    EphemeralRamp {
        relay: bool,
        setup_failures: Failures,
        p99_bound_ms: f64,
        highest_passing_rate: Option<f64>,
        steps: Vec<RampStep>,
    },
    /// `groups`: G groups of M members, one phase.
    Groups { groups: usize, members: usize, setup_failures: Failures, phase: PhaseReport },
    /// `instr`: the measured phases.
    Instr(InstrReport),
    /// The server's view: how each /metrics series changed during the run.
    WithServer { client: Box<Report>, server_metrics_delta: BTreeMap<String, f64> },
}

impl Report {
    /// Attaches the server's metrics delta.
    pub fn set_server_metrics(&mut self, delta: BTreeMap<String, f64>) {
        let client =
            std::mem::replace(self, Report::Dm { setup_failures: Failures::default(), phase: PhaseReport::default() });
        *self = Report::WithServer { client: Box::new(client), server_metrics_delta: delta };
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human summary.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        match self {
            Report::Connect(r) => connect_table(&mut s, r),
            Report::Dm { setup_failures, phase } => {
                failures(&mut s, "setup failures", setup_failures);
                phase_table(&mut s, phase, "msgs/s");
            }
            Report::Ramp { setup_failures, p99_bound_ms, highest_passing_rate, steps } => {
                failures(&mut s, "setup failures", setup_failures);
                ramp_table(&mut s, "msgs/s", *p99_bound_ms, *highest_passing_rate, steps);
            }
            Report::Ephemeral { relay, setup_failures, phase } => {
                failures(&mut s, "setup failures", setup_failures);
                row(&mut s, "typing events through", if *relay { "hubbub-relay" } else { "hubbub" });
                phase_table(&mut s, phase, "events/s");
            }
            Report::EphemeralRamp { relay, setup_failures, p99_bound_ms, highest_passing_rate, steps } => {
                failures(&mut s, "setup failures", setup_failures);
                row(&mut s, "typing events through", if *relay { "hubbub-relay" } else { "hubbub" });
                ramp_table(&mut s, "events/s", *p99_bound_ms, *highest_passing_rate, steps);
            }
            Report::Fanout(r) => fanout_table(&mut s, r),
            Report::Groups { groups, members, setup_failures, phase } => {
                failures(&mut s, "setup failures", setup_failures);
                row(&mut s, "groups x members", format!("{groups} x {members}"));
                phase_table(&mut s, phase, "msgs/s");
            }
            Report::Instr(r) => {
                for p in &r.phases {
                    let _ = writeln!(
                        s,
                        "{}: {} requests, {} stored, {} events, {:.1} s",
                        p.name, p.requests, p.stored, p.events, p.seconds
                    );
                }
            }
            Report::WithServer { client, server_metrics_delta } => {
                s.push_str(&client.to_table());
                let _ = writeln!(s, "\nserver /metrics, change during the run:");
                for (k, v) in server_metrics_delta {
                    let _ = writeln!(s, "  {k:<60} {v:>14.3}");
                }
            }
        }
        s
    }
}

fn row(s: &mut String, k: &str, v: impl std::fmt::Display) {
    let _ = writeln!(s, "{k:<28} {v}");
}

fn failures(s: &mut String, title: &str, f: &Failures) {
    if f.total() == 0 {
        return;
    }
    let _ = writeln!(s, "{title}:");
    for (k, v) in &f.0 {
        let _ = writeln!(s, "  {k:<50} {v}");
    }
}

fn latency(s: &mut String, title: &str, l: &LatencySummary) {
    let _ = writeln!(
        s,
        "{title:<28} p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms  (n={})",
        l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
    );
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn connect_table(s: &mut String, r: &ConnectReport) {
    row(s, "sockets requested", r.requested);
    row(s, "users (setup)", format!("{} in {:.1} s", r.users, r.setup_seconds));
    failures(s, "setup failures", &r.setup_failures);
    row(s, "connected", r.connected);
    row(s, "connect phase", format!("{:.2} s", r.connect_seconds));
    row(s, "connections/s", format!("{:.0}", r.connections_per_sec));
    latency(s, "handshake (+ping)", &r.handshake);
    failures(s, "connect failures", &r.failures);
    row(s, "held to the end", r.held);
    failures(s, "lost during hold", &r.lost_during_hold);
    if let (Some(b), Some(a)) = (r.rss_before, r.rss_after) {
        row(s, "server RSS before/after", format!("{} / {}", mib(b), mib(a)));
    }
    if let Some(p) = r.rss_per_socket {
        row(s, "server RSS per socket", format!("{:.0} bytes ({:.2} KiB)", p, p / 1024.0));
    }
}

fn fanout_table(s: &mut String, r: &FanoutReport) {
    row(s, "followers online", format!("{} of {}", r.followers_online, r.followers_requested));
    row(s, "setup", format!("{:.1} s", r.setup_seconds));
    failures(s, "setup failures", &r.setup_failures);
    row(s, "posts", r.posts);
    row(s, "post.new expected / got", format!("{} / {}", r.expected, r.delivered));
    latency(s, "post.create -> ok", &r.ack);
    latency(s, "post.create -> follower", &r.delivery);
    let per_post: Vec<String> =
        r.last_follower_ms.iter().map(|m| m.map_or("incomplete".into(), |m| format!("{m:.1}"))).collect();
    row(s, "last follower per post (ms)", per_post.join(" "));
    row(s, "last follower p50 / max", format!("{:.2} / {:.2} ms", r.last_follower_p50_ms, r.last_follower_max_ms));
    failures(s, "errors", &r.errors);
}

/// A ramp's steps, rates in `unit`, and what it found.
fn ramp_table(s: &mut String, unit: &str, p99_bound_ms: f64, highest_passing_rate: Option<f64>, steps: &[RampStep]) {
    let _ = writeln!(
        s,
        "{:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}  result",
        "offered/s", "sent", "delivered", "errors", "p50 ms", "p99 ms", "max ms"
    );
    for st in steps {
        let p = &st.phase;
        let _ = writeln!(
            s,
            "{:>10.0} {:>10} {:>10} {:>10} {:>9.2} {:>9.2} {:>9.2}  {}",
            p.offered_rate,
            p.sent,
            p.delivered,
            p.errors.total(),
            p.end_to_end.p50_ms,
            p.end_to_end.p99_ms,
            p.end_to_end.max_ms,
            if st.pass { "pass" } else { "FAIL" }
        );
    }
    let rule = format!("100% delivered, p99 <= {p99_bound_ms} ms");
    let _ = match highest_passing_rate {
        Some(r) => writeln!(s, "highest passing rate: {r:.0} {unit} ({rule})"),
        None => writeln!(s, "no step passed ({rule})"),
    };
    if let Some(last) = steps.iter().rev().find(|st| !st.pass) {
        failures(s, "errors in the failing step", &last.phase.errors);
    }
}

/// One phase; rates in `unit` (`msgs/s`, `events/s`).
fn phase_table(s: &mut String, p: &PhaseReport, unit: &str) {
    row(s, "pairs", p.pairs);
    row(s, "offered", format!("{:.0} {unit} for {:.1} s", p.offered_rate, p.seconds));
    if p.no_replies {
        row(s, "sent / delivered", format!("{} / {}", p.sent, p.delivered));
    } else {
        row(s, "sent / acked / delivered", format!("{} / {} / {}", p.sent, p.acked, p.delivered));
    }
    if p.expected != p.acked && !p.no_replies {
        row(s, "deliveries due (acked x receivers)", p.expected);
    }
    row(s, &format!("delivered {unit}"), format!("{:.0}", p.delivered_per_sec));
    if !p.no_replies {
        latency(s, "ack (scheduled->ok)", &p.ack);
    }
    latency(s, "end-to-end (sched->event)", &p.end_to_end);
    row(s, "max sender lag", format!("{:.2} ms", p.max_send_lag_ms));
    if p.typing_sent > 0 {
        let typing = format!("{:.0}/s offered, {} sent, {} ok", p.typing_offered_rate, p.typing_sent, p.typing_acked);
        row(s, "typing.start beside", typing);
    }
    failures(s, "errors", &p.errors);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_render_both_ways() {
        let mut r =
            Report::Dm { setup_failures: Failures::default(), phase: PhaseReport { sent: 3, ..Default::default() } };
        r.set_server_metrics(BTreeMap::from([("hubbub_sockets_open".to_string(), 2.0)]));
        let table = r.to_table();
        assert!(table.contains("sent / acked / delivered"));
        assert!(table.contains("hubbub_sockets_open"));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["scenario"], "with_server");
        assert_eq!(json["client"]["phase"]["sent"], 3);
    }

    #[test]
    fn fanout_reports_render_both_ways() {
        let r = Report::Fanout(FanoutReport {
            followers_online: 10,
            posts: 2,
            last_follower_ms: vec![Some(12.5), None],
            ..Default::default()
        });
        assert!(r.to_table().contains("12.5 incomplete"));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["scenario"], "fanout");
        assert_eq!(json["followers_online"], 10);
    }
}
