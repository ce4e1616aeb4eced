//! One run split across several devices (`--devices`): each device steps a contiguous range
//! of global particle indices, as shards do, and the host pools what they observe
//! (docs/architecture.md, "Adapters and devices").
//!
//! Noise is keyed by the global index, so the pooled histograms and the concatenated
//! particles equal the single-device run's byte for byte; moments are pooled in f64 and
//! agree to round-off. The parts step side by side, one thread each.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::observe::{EnergySums, HistogramCounts, Moments};
use crate::scenario::Plan;
use crate::scenario::data::SampleTable;
use crate::simulation::{Advance, Layout, Observation, ResumePoint, Simulation};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// `n` contiguous ranges (first, count) of the `count` particles from `first`: part `i`
/// gets `[first + count*i/n, first + count*(i+1)/n)`, the rule shards use.
pub fn split(first: u64, count: u64, n: u64) -> Vec<(u64, u64)> {
    let at = |i: u64| (u128::from(count) * u128::from(i) / u128::from(n.max(1))) as u64;
    (0..n).map(|i| (first + at(i), at(i + 1) - at(i))).collect()
}

/// Test hook (`FOKKER_TEST_FAIL_DEVICE=<part>:<n>`): part `part` (counted from 0) fails as
/// a lost device would at its `n`-th progress report (counted from 1), in the middle of a
/// block, leaving its state unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailDevice {
    pub part: usize,
    pub at: u64,
}

impl std::str::FromStr for FailDevice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parsed = s
            .split_once(':')
            .and_then(|(p, n)| Some((p.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((part, at)) if at > 0 => Ok(FailDevice { part, at }),
            _ => Err(format!(
                "`{s}`: write <part>:<n> (part from 0, n a positive integer)"
            )),
        }
    }
}

/// One device's share of the run.
pub struct Part<'g> {
    pub sim: Simulation<'g>,
    pub first: u64,
    pub count: u64,
}

/// How [`Group::advance_to`] ended.
pub enum Outcome {
    Reached,
    /// Stopped by the stop flag; every part has a resume point.
    Stopped,
    /// These parts failed (their state is unusable); the others stopped. The first error.
    Failed {
        parts: Vec<usize>,
        error: Error,
    },
}

/// The parts of one run, stepped side by side.
pub struct Group<'g> {
    pub parts: Vec<Part<'g>>,
    /// Snapshot steps already written: a part behind them (restarted after a device failed)
    /// passes through each, restarting MALA's acceptance count there as the observation did.
    pub written: Vec<u64>,
    pub fail: Option<FailDevice>,
    /// Progress reports per part in this process (what the failure hook counts).
    reports: Vec<AtomicU64>,
}

/// Runs `f` on every item: inline for one, else one scoped thread each; results in order.
fn each<T: Send, R: Send>(items: &mut [T], f: impl Fn(usize, &mut T) -> R + Sync) -> Vec<R> {
    if let [one] = items {
        return vec![f(0, one)];
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter_mut()
            .enumerate()
            .map(|(i, item)| {
                let f = &f;
                scope.spawn(move || f(i, item))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

impl<'g> Group<'g> {
    /// Allocates and samples one part per range, range `i` on `gpus[i % gpus.len()]`.
    pub fn new(
        gpus: &'g [Gpu],
        plan: &Plan,
        samples: Option<&SampleTable>,
        data: Option<&SampleTable>,
        ranges: &[(u64, u64)],
        layout: &Layout,
    ) -> Result<Group<'g>> {
        let mut slots: Vec<(usize, (u64, u64))> = ranges.iter().copied().enumerate().collect();
        let parts = each(&mut slots, |_, (i, (first, count))| {
            let sim = Simulation::new(
                &gpus[*i % gpus.len()],
                plan,
                samples,
                data,
                *first,
                *count,
                layout,
            )?;
            Ok(Part {
                sim,
                first: *first,
                count: *count,
            })
        });
        Ok(Group {
            parts: parts.into_iter().collect::<Result<_>>()?,
            written: Vec::new(),
            fail: None,
            reports: ranges.iter().map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// The step every part has reached.
    pub fn step(&self) -> u64 {
        self.parts.iter().map(|p| p.sim.step()).min().unwrap_or(0)
    }

    pub fn count(&self) -> u64 {
        self.parts.iter().map(|p| p.count).sum()
    }

    /// Advances every part to `target` side by side. `progress(step)` gets the step the
    /// ensemble has reached on average; `stop()` is asked by every part at its submission
    /// boundaries. A part that fails stops the others at their next boundary.
    pub fn advance_to(
        &mut self,
        target: u64,
        progress: &(dyn Fn(u64) + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Outcome> {
        let failed = AtomicBool::new(false);
        let total = self.count().max(1);
        let reached: Vec<AtomicU64> = self
            .parts
            .iter()
            .map(|p| AtomicU64::new(p.sim.step()))
            .collect();
        let counts: Vec<u64> = self.parts.iter().map(|p| p.count).collect();
        let (written, fail, reports) = (&self.written, self.fail, &self.reports);
        let report = |i: usize, step: u64| {
            reached[i].store(step, Ordering::Relaxed);
            let sum: u128 = reached
                .iter()
                .zip(&counts)
                .map(|(s, &c)| u128::from(s.load(Ordering::Relaxed)) * u128::from(c))
                .sum();
            progress((sum / u128::from(total)) as u64);
        };
        let results = each(&mut self.parts, |i, part| {
            let stop = || failed.load(Ordering::SeqCst) || stop();
            let on_progress = |step: u64| {
                let n = reports[i].fetch_add(1, Ordering::SeqCst) + 1;
                if fail.is_some_and(|f| f.part == i && f.at == n) {
                    return Err(Error::Device(format!(
                        "test hook: device {i} was lost at step {step}"
                    )));
                }
                report(i, step);
                Ok(())
            };
            let sim = &mut part.sim;
            let result = (|| {
                let from = sim.step();
                for &s in written.iter().filter(|&&s| s > from && s < target) {
                    match sim.advance_to(s, on_progress, &stop)? {
                        Advance::Reached => sim.set_accepted(0),
                        stopped => return Ok(stopped),
                    }
                }
                sim.advance_to(target, on_progress, &stop)
            })();
            if result.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            result
        });
        let mut outcome = Outcome::Reached;
        let mut errors = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(Advance::Reached) => {}
                Ok(Advance::Stopped(_)) => outcome = Outcome::Stopped,
                // Divergence is the run's result, not a device's failure.
                Err(e @ Error::Diverged { .. }) => return Err(e),
                Err(e) => errors.push((i, e)),
            }
        }
        if errors.is_empty() {
            return Ok(outcome);
        }
        if self.parts.len() == 1 {
            return Err(errors.remove(0).1);
        }
        let parts = errors.iter().map(|(i, _)| *i).collect();
        Ok(Outcome::Failed {
            parts,
            error: errors.remove(0).1,
        })
    }

    /// Every part's resume point, in order.
    pub fn resume_points(&self) -> Vec<ResumePoint> {
        self.parts.iter().map(|p| p.sim.resume_point()).collect()
    }

    /// Per part but those in `skip`: positions, extra state and MALA's count, read side by
    /// side.
    #[allow(clippy::type_complexity)]
    pub fn states(
        &mut self,
        skip: &[usize],
    ) -> Result<Vec<Option<(Vec<f32>, Option<Vec<f32>>, Option<u64>)>>> {
        each(&mut self.parts, |i, p| {
            if skip.contains(&i) {
                return Ok(None);
            }
            Ok(Some((
                p.sim.positions()?,
                p.sim.extra_state()?,
                p.sim.accepted()?,
            )))
        })
        .into_iter()
        .collect()
    }

    /// Positions and extra state of the whole group, in global order.
    pub fn particles(&mut self) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let mut positions = Vec::new();
        let mut extra: Option<Vec<f32>> = None;
        for (p, e, _) in self.states(&[])?.into_iter().flatten() {
            positions.extend(p);
            if let Some(e) = e {
                extra.get_or_insert_with(Vec::new).extend(e);
            }
        }
        Ok((positions, extra))
    }

    pub fn set_center(&mut self, mean: &[f64]) {
        for p in &mut self.parts {
            p.sim.set_center(mean);
        }
    }

    /// Observes every part side by side and pools: histograms and counts add up (u64),
    /// moments pool in f64, energy sums add up, traces concatenate in index order.
    pub fn observe(&mut self) -> Result<Observation> {
        let mut all = each(&mut self.parts, |_, p| p.sim.observe())
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        if all.len() == 1 {
            return Ok(all.remove(0));
        }
        let add = |parts: Vec<&HistogramCounts>| {
            let mut out = parts[0].clone();
            for h in &parts[1..] {
                out.counts
                    .iter_mut()
                    .zip(&h.counts)
                    .for_each(|(a, b)| *a += b);
                out.below
                    .iter_mut()
                    .zip(&h.below)
                    .for_each(|(a, b)| *a += b);
                out.above
                    .iter_mut()
                    .zip(&h.above)
                    .for_each(|(a, b)| *a += b);
                out.outside += h.outside;
                out.nonfinite += h.nonfinite;
            }
            out
        };
        let histogram = add(all.iter().map(|o| &o.histogram).collect());
        let marginals = (0..all[0].marginals.len())
            .map(|m| add(all.iter().map(|o| &o.marginals[m]).collect()))
            .collect();
        let moments = Moments::pool(&all.iter().map(|o| &o.moments).collect::<Vec<_>>());
        if moments.count > 0 {
            // Every part sums about the pooled mean next, as a resumed run does.
            self.set_center(&moments.mean);
        }
        let first = &all[0];
        Ok(Observation {
            step: first.step,
            time: first.time,
            histogram,
            marginals,
            moments,
            // Coupled dynamics (the only ones with a target) are not split, nor are runs with
            // walls or first-passage targets (`check_split`).
            mmd2: first.mmd2,
            passage: None,
            accepted: all.iter().map(|o| o.accepted).sum(),
            energy: EnergySums::pool(all.iter().filter_map(|o| o.energy.as_ref())),
            trace: all.iter().flat_map(|o| o.trace.iter().copied()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_contiguous_and_covers_the_range() {
        assert_eq!(split(10, 7, 3), vec![(10, 2), (12, 2), (14, 3)]);
        assert_eq!(split(0, 5, 1), vec![(0, 5)]);
        let parts = split(3, 10_003, 8);
        assert_eq!(parts[0].0, 3);
        for w in parts.windows(2) {
            assert_eq!(w[0].0 + w[0].1, w[1].0);
        }
        assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), 10_003);
    }

    #[test]
    fn the_failure_hook_parses() {
        assert_eq!("1:3".parse(), Ok(FailDevice { part: 1, at: 3 }));
        for bad in ["1", "1:0", "x:2", ""] {
            assert!(bad.parse::<FailDevice>().unwrap_err().contains(bad));
        }
    }
}
