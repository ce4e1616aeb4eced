//! The temperature of Langevin dynamics: a constant, or a function of time written by the
//! user (annealing). A constant is written in the plan as a bare number, as before there
//! were schedules, so existing plans and their hashes are unchanged.

use super::StepSize;
use super::expr::TimeExpr;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Temperature {
    Constant(f64),
    /// T(t), checked >= 0 at every step time of the run when the scenario is read.
    Expr(TimeExpr),
}

impl Temperature {
    /// T at time t.
    pub fn at(&self, t: f64) -> f64 {
        match self {
            Temperature::Constant(v) => *v,
            Temperature::Expr(e) => e.at(t),
        }
    }

    /// The constant, or None for a schedule.
    pub fn constant(&self) -> Option<f64> {
        match self {
            Temperature::Constant(v) => Some(*v),
            Temperature::Expr(_) => None,
        }
    }

    /// Whether there is no noise at all (a constant 0).
    pub fn is_zero(&self) -> bool {
        self.constant() == Some(0.0)
    }

    /// The highest temperature at the times of steps 0 ..= steps (step k at t_k, the sum of
    /// the steps before it), sampled at no more than [`SCAN_POINTS`] evenly spaced steps:
    /// what the default histogram range must hold.
    pub fn hottest(&self, steps: u64, dt: &StepSize) -> f64 {
        match self {
            Temperature::Constant(v) => *v,
            Temperature::Expr(_) => scan_steps(steps, dt)
                .map(|t| self.at(t))
                .fold(0.0, f64::max),
        }
    }

    /// The first step time (of at most [`SCAN_POINTS`] evenly spaced ones) where T is
    /// negative or not finite, with that value.
    pub fn first_invalid(&self, steps: u64, dt: &StepSize) -> Option<(f64, f64)> {
        scan_steps(steps, dt)
            .map(|t| (t, self.at(t)))
            .find(|(_, v)| !(v.is_finite() && *v >= 0.0))
    }
}

/// Most step times a schedule is checked at: every step of runs up to this length.
pub const SCAN_POINTS: u64 = 1 << 20;

/// Times t_k of steps 0 ..= steps, every step up to [`SCAN_POINTS`], evenly thinned above.
pub fn scan_steps(steps: u64, dt: &StepSize) -> impl Iterator<Item = f64> {
    let dt = *dt;
    let stride = steps.div_ceil(SCAN_POINTS).max(1);
    (0..=steps / stride)
        .map(move |k| k * stride)
        .chain(std::iter::once(steps))
        .map(move |k| dt.time(k, steps))
}
