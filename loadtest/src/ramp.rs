//! Ramps: raise the total rate step by step, each step a phase on the
//! sockets the previous step left, until a step fails (below 100%
//! delivered, an error, or p99 over the bound). Shared by `ramp` (DMs) and
//! `ephemeral --ramp` (typing events), so both apply the same rules.

use crate::dm::PhaseReport;
use crate::report::RampStep;

/// The most steps a ramp takes.
pub const MAX_STEPS: usize = 200;

/// The total rates a ramp tries, in order.
pub fn rates(start: f64, step: f64, max: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut r = start;
    while r <= max + 1e-9 && out.len() <= MAX_STEPS {
        out.push(r);
        r += step;
    }
    out
}

/// What a ramp found: the highest passing total rate, and every step run.
pub struct Outcome {
    /// The highest total rate whose step passed (`None`: not even the first).
    pub highest_passing_rate: Option<f64>,
    /// The steps, up to and including the first failing one.
    pub steps: Vec<RampStep>,
}

/// Runs `phase(pairs, step_number, rate_per_pair)` for each total rate of
/// `rates` on the pairs the previous step left (the rate spread over those
/// still alive), and stops after the first failing step. A step passes when
/// [`PhaseReport::complete`] and its end-to-end p99 is within `p99_ms`.
/// `unit` names what is counted in the progress lines (`msgs/s`).
pub async fn run<P, F, Fut>(mut pairs: Vec<P>, rates: Vec<f64>, p99_ms: f64, unit: &str, mut phase: F) -> Outcome
where
    F: FnMut(Vec<P>, u32, f64) -> Fut,
    Fut: Future<Output = (Vec<P>, PhaseReport)>,
{
    let mut out = Outcome { highest_passing_rate: None, steps: Vec::new() };
    for (i, total) in rates.into_iter().enumerate() {
        if pairs.is_empty() {
            break;
        }
        let per_pair = total / pairs.len() as f64;
        let (left, report) = phase(pairs, i as u32 + 1, per_pair).await;
        pairs = left;
        let pass = report.complete() && report.end_to_end.p99_ms <= p99_ms;
        eprintln!(
            "step {}: {:.0} {unit} offered, {} delivered of {}, p99 {:.2} ms: {}",
            i + 1,
            report.offered_rate,
            report.delivered,
            report.sent,
            report.end_to_end.p99_ms,
            if pass { "pass" } else { "FAIL" }
        );
        out.steps.push(RampStep { pass, phase: report });
        if !pass {
            break;
        }
        out.highest_passing_rate = Some(total);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_steps_are_bounded_and_inclusive() {
        assert_eq!(rates(1000.0, 1000.0, 3000.0), vec![1000.0, 2000.0, 3000.0]);
        assert_eq!(rates(5.0, 10.0, 5.0), vec![5.0]);
        assert!(rates(1.0, 1e-9, 1e9).len() <= MAX_STEPS + 1);
    }

    #[tokio::test]
    async fn a_ramp_stops_at_the_first_failing_step() {
        let step = |pairs: Vec<u8>, n: u32, per_pair: f64| async move {
            let delivered = if n < 3 { 10 } else { 9 };
            let r = PhaseReport {
                offered_rate: per_pair * pairs.len() as f64,
                sent: 10,
                acked: 10,
                expected: 10,
                delivered,
                ..Default::default()
            };
            (pairs, r)
        };
        let out = run(vec![1, 2], rates(100.0, 100.0, 1000.0), 50.0, "msgs/s", step).await;
        assert_eq!(out.highest_passing_rate, Some(200.0));
        assert_eq!(out.steps.len(), 3);
        assert!((out.steps[1].phase.offered_rate - 200.0).abs() < 1e-9);
    }
}
