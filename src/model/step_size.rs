//! The step size of Langevin dynamics: a constant dt, or a schedule dt_k over the step index
//! (decreasing-step Langevin Monte Carlo). Time is the sum of the steps taken:
//! t_k = dt_0 + ... + dt_{k-1}. Everything here is f64 on the host (docs/architecture.md,
//! "Host coefficients in f64"); the GPU receives dt_k, t_k and the noise scale per step.
//!
//! With N steps and u_k = k / (N - 1) (u_0 = 0 when N = 1):
//!   geometric: dt_k = start (end / start)^u_k,   t_k = start (r^k - 1) / (r - 1),
//!              r = (end / start)^(1 / (N - 1)), evaluated as expm1(k l) / expm1(l) with
//!              l = ln(end / start) / (N - 1) so that r near 1 loses nothing;
//!   linear:    dt_k = start + (end - start) u_k,
//!              t_k = k start + (end - start) k (k - 1) / (2 (N - 1)).
//! Both reach dt_{N-1} = end at the last step. A constant is written in the plan as a bare
//! number, as before there were schedules, so existing plans and their hashes are unchanged.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Geometric,
    Linear,
}

/// `dt = { start, end, kind }`: dt_0 = start, dt_{N-1} = end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DtSchedule {
    pub start: f64,
    pub end: f64,
    pub kind: ScheduleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StepSize {
    Constant(f64),
    Schedule(DtSchedule),
}

impl From<f64> for StepSize {
    fn from(dt: f64) -> Self {
        StepSize::Constant(dt)
    }
}

impl StepSize {
    /// The constant, or None for a schedule.
    pub fn constant(&self) -> Option<f64> {
        match self {
            StepSize::Constant(dt) => Some(*dt),
            StepSize::Schedule(_) => None,
        }
    }

    /// dt_k, the size of step k of a run of `steps` steps.
    pub fn dt(&self, k: u64, steps: u64) -> f64 {
        match self {
            StepSize::Constant(dt) => *dt,
            StepSize::Schedule(s) => {
                let u = if steps <= 1 {
                    0.0
                } else {
                    k as f64 / (steps - 1) as f64
                };
                match s.kind {
                    ScheduleKind::Geometric => s.start * ((s.end / s.start).ln() * u).exp(),
                    ScheduleKind::Linear => s.start + (s.end - s.start) * u,
                }
            }
        }
    }

    /// t_k, the time after k steps of a run of `steps` steps: the sum of dt_0 .. dt_{k-1}
    /// (k dt for a constant).
    pub fn time(&self, k: u64, steps: u64) -> f64 {
        let kf = k as f64;
        match self {
            StepSize::Constant(dt) => kf * dt,
            StepSize::Schedule(s) => {
                let n1 = steps.saturating_sub(1).max(1) as f64;
                match s.kind {
                    ScheduleKind::Geometric => {
                        let l = (s.end / s.start).ln() / n1;
                        if l == 0.0 {
                            kf * s.start
                        } else {
                            s.start * (kf * l).exp_m1() / l.exp_m1()
                        }
                    }
                    ScheduleKind::Linear => {
                        kf * s.start + (s.end - s.start) * kf * (kf - 1.0) / (2.0 * n1)
                    }
                }
            }
        }
    }

    /// The mean step t_N / N: what `output.every` (time units) is divided by to give a
    /// snapshot period in steps.
    pub fn mean(&self, steps: u64) -> f64 {
        match self {
            StepSize::Constant(dt) => *dt,
            StepSize::Schedule(_) => self.time(steps, steps) / steps.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(start: f64, end: f64, kind: ScheduleKind) -> StepSize {
        StepSize::Schedule(DtSchedule { start, end, kind })
    }

    /// dt_k as written: the ends exactly (start) and to a few ulps (end, through exp/ln),
    /// the geometric ratio dt_{k+1} / dt_k constant, the linear difference constant.
    #[test]
    fn dt_follows_the_schedule() {
        let n = 1001;
        let g = schedule(0.1, 1e-3, ScheduleKind::Geometric);
        assert_eq!(g.dt(0, n), 0.1);
        assert!((g.dt(n - 1, n) / 1e-3 - 1.0).abs() < 1e-14);
        let r = (1e-3f64 / 0.1).powf(1.0 / 1000.0);
        for k in 0..n - 1 {
            // exp of a ~5-magnitude argument: relative error a few times 1e-16 times 5.
            assert!(
                (g.dt(k + 1, n) / g.dt(k, n) / r - 1.0).abs() < 1e-14,
                "k = {k}"
            );
        }
        let l = schedule(0.01, 0.03, ScheduleKind::Linear);
        assert_eq!(l.dt(0, n), 0.01);
        assert!((l.dt(n - 1, n) - 0.03).abs() < 1e-17);
        assert!((l.dt(500, n) - 0.02).abs() < 1e-17);
        for k in 0..n - 1 {
            assert!((l.dt(k + 1, n) - l.dt(k, n) - 2e-5).abs() < 1e-17);
        }
        // One step: dt_0 = start.
        assert_eq!(g.dt(0, 1), 0.1);
        assert_eq!(StepSize::Constant(0.5).dt(17, 3), 0.5);
    }

    /// t_k is the sum of the steps taken: the closed forms against a compensated running sum
    /// of dt_k. Each dt_k and t_k carries a relative error of a few ulps (exp, expm1 of an
    /// argument up to |ln(end / start)| ~ 5), so 1e-13 relative is ~500 ulps of margin.
    #[test]
    fn time_is_the_sum_of_the_steps() {
        let n = 5000;
        for s in [
            schedule(0.1, 1e-3, ScheduleKind::Geometric),
            schedule(1e-3, 0.1, ScheduleKind::Geometric),
            schedule(0.02, 0.02, ScheduleKind::Geometric),
            schedule(0.05, 1e-3, ScheduleKind::Linear),
            schedule(1e-3, 0.05, ScheduleKind::Linear),
        ] {
            let (mut sum, mut c) = (0.0f64, 0.0f64);
            for k in 0..=n {
                let t = s.time(k, n);
                assert!(
                    (t - sum).abs() <= 1e-13 * sum,
                    "{s:?} k = {k}: {t} vs {sum}"
                );
                // Kahan summation: the reference itself is exact to ~1 ulp.
                let y = s.dt(k, n) - c;
                let next = sum + y;
                c = (next - sum) - y;
                sum = next;
            }
            assert_eq!(s.time(0, n), 0.0);
            assert!((s.mean(n) - s.time(n, n) / n as f64).abs() == 0.0);
        }
        assert_eq!(StepSize::Constant(0.25).time(4, 10), 1.0);
    }

    /// A constant is a bare number in JSON (plans and hashes as before schedules); a schedule
    /// is the table as written.
    #[test]
    fn serialises_as_written() {
        assert_eq!(
            serde_json::to_string(&StepSize::Constant(0.01)).unwrap(),
            "0.01"
        );
        let s = schedule(0.1, 0.001, ScheduleKind::Geometric);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"start":0.1,"end":0.001,"kind":"geometric"}"#);
        assert_eq!(serde_json::from_str::<StepSize>(&json).unwrap(), s);
        assert_eq!(
            serde_json::from_str::<StepSize>("0.01").unwrap(),
            StepSize::Constant(0.01)
        );
    }
}
