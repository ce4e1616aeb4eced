//! A simulation on the GPU: the ensemble, its dynamics and its observers, advanced in
//! fused blocks and observed at snapshots. Knows nothing about files.

use crate::dynamics::Stepper;
use crate::dynamics::init::initialize;
use crate::error::{Error, Result};
use crate::gpu::{Ensemble, Gpu};
use crate::observe::first_passage::{self, PassageCounts, TransitionCounts};
use crate::observe::passage_counts::PassageCountsGpu;
use crate::observe::{
    EnergyGpu, EnergySums, HistogramCounts, HistogramGpu, MmdGpu, Moments, MomentsGpu,
};
use crate::scenario::data::SampleTable;
use crate::scenario::{Init, Plan};
use std::time::{Duration, Instant};

/// Knobs that change how work is laid out on the device but never the results: noise is
/// indexed absolutely (src/rng.rs), so these are left out of the plan and its hash.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Invocations per workgroup of the particle kernels.
    pub workgroup_size: u32,
    /// Cap on particles per state chunk (default: the adapter's binding limit).
    pub chunk_particles: Option<u64>,
    /// Steps per dispatch (default [`DEFAULT_FUSED_STEPS`], fewer up to a snapshot).
    pub fused_steps: Option<u32>,
    /// Particles per submission (default: sized from the measured rate).
    pub slice_particles: Option<u32>,
    /// MALA: carry U and grad U from the accepted proposal (true) or evaluate them at every
    /// step (false); default: carry. The same bits either way.
    pub mala_carry: Option<bool>,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            workgroup_size: crate::gpu::abi::DEFAULT_WORKGROUP_SIZE,
            chunk_particles: None,
            fused_steps: None,
            slice_particles: None,
            mala_carry: None,
        }
    }
}

/// GPU time one submitted block aims at: long enough to amortise dispatch overhead, short
/// enough that a signal or progress update is answered within about half a second.
pub const BLOCK_TARGET: Duration = Duration::from_millis(250);

/// What one snapshot observes.
#[derive(Debug, Clone)]
pub struct Observation {
    pub step: u64,
    pub time: f64,
    pub histogram: HistogramCounts,
    /// One per `output.marginals` entry, in order.
    pub marginals: Vec<HistogramCounts>,
    pub moments: Moments,
    /// MMD^2 to the target (kernel flows).
    pub mmd2: Option<f64>,
    /// Metropolis-adjusted dynamics (MALA): proposals accepted since the previous snapshot
    /// (over this ensemble's particles); the count restarts at every snapshot.
    pub accepted: Option<u64>,
    /// Energy sums (src/observe/energy.rs) for dynamics with a potential other than a WGSL
    /// file, at the potential's time of the snapshot.
    pub energy: Option<EnergySums>,
    /// Positions of the traced particles this ensemble holds (`output.trajectories`).
    pub trace: Vec<f32>,
    /// Survival per target and absorbed count (runs with walls or targets).
    pub passage: Option<PassageCounts>,
}

pub struct Simulation<'g> {
    gpu: &'g Gpu,
    plan: Plan,
    pub ensemble: Ensemble,
    stepper: Box<dyn Stepper>,
    observers: Observers,
    step: u64,
    fused: u32,
    /// Particle-steps per second, a running estimate used to size submissions.
    rate: f64,
    slice_particles: Option<u32>,
    last_mean: Vec<f64>,
    pending: Option<Pending>,
}

/// The GPU observers of a run, made together (`Simulation::new`).
struct Observers {
    histogram: HistogramGpu,
    marginals: Vec<HistogramGpu>,
    moments: MomentsGpu,
    energy: Option<EnergyGpu>,
    mmd: Option<MmdGpu>,
    /// Survival and absorbed counts (runs with walls, targets or basins).
    passage: Option<PassageCountsGpu>,
}

impl Observers {
    /// `stepper`: the run's stepper where an observer reads its extra state (the
    /// velocities of phase-space histograms and of the kinetic temperature), else None.
    fn new(
        gpu: &Gpu,
        plan: &Plan,
        data: Option<&SampleTable>,
        ensemble: &Ensemble,
        stepper: Option<&dyn Stepper>,
        workgroup_size: u32,
    ) -> Result<Observers> {
        let extra = stepper.and_then(|s| s.extra_state());
        // Phase-space axes (dim .. 2 dim - 1) read the velocities of kinds that have them.
        let velocity = extra.filter(|_| plan.dynamics.velocity_axes());
        let histogram = HistogramGpu::new(
            gpu,
            ensemble,
            velocity,
            &plan.output.histogram,
            workgroup_size,
        );
        let marginals = plan
            .output
            .marginals
            .iter()
            .map(|spec| HistogramGpu::new(gpu, ensemble, velocity, spec, workgroup_size))
            .collect();
        let moments = MomentsGpu::new(gpu, ensemble, workgroup_size);
        let energy = match plan.dynamics.energy_potential() {
            Some(potential) if crate::observe::energy::observable(potential) => {
                let velocities = extra.zip(plan.dynamics.masses());
                Some(EnergyGpu::new(
                    gpu,
                    ensemble,
                    potential,
                    velocities,
                    workgroup_size,
                )?)
            }
            _ => None,
        };
        let mmd = match plan.dynamics.kernel_target() {
            Some(target) => {
                let targets =
                    crate::dynamics::kernel_flows::target_samples(target, data, plan.seed)?;
                Some(MmdGpu::new(gpu, ensemble, &targets)?)
            }
            None => None,
        };
        let passage = PassageCountsGpu::new(
            gpu,
            ensemble,
            plan.boundary.first_passage.len(),
            workgroup_size,
        );
        Ok(Observers {
            histogram,
            marginals,
            moments,
            energy,
            mmd,
            passage,
        })
    }
}

/// A block of `steps` steps of which the first `done` particles of the ensemble (in order)
/// have been advanced and the rest not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub steps: u32,
    pub done: u64,
}

/// Everything besides the positions that a checkpoint needs to continue bit-exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResumePoint {
    /// Step of the particles not yet advanced in `pending` (of all of them without it).
    pub step: u64,
    pub pending: Option<Pending>,
}

/// How [`Simulation::advance_to`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    Reached,
    Stopped(ResumePoint),
}

/// A first guess of the ensemble mean, used to centre the moment sums: the f32 sums about
/// a centre far from the data (0 for data around 1e4) lose the covariance to cancellation.
/// `samples` is the table of a samples init.
fn init_center(init: &Init, samples: Option<&SampleTable>, dim: usize) -> Vec<f64> {
    match init {
        Init::Point { at } => at.clone(),
        Init::Gaussian { mean, .. } => mean.clone(),
        Init::Uniform { low, high } => low.iter().zip(high).map(|(l, h)| 0.5 * (l + h)).collect(),
        Init::Mixture(m) => {
            let total: f64 = m.weights.iter().sum();
            (0..dim)
                .map(|c| {
                    let sum: f64 = m
                        .weights
                        .iter()
                        .zip(&m.means)
                        .map(|(w, mu)| w * mu[c])
                        .sum();
                    sum / total
                })
                .collect()
        }
        Init::Samples { .. } => match samples {
            Some(table) if table.rows > 0 && table.dim == dim => (0..dim)
                .map(|c| {
                    let sum: f64 = table
                        .values
                        .chunks_exact(dim)
                        .map(|row| f64::from(row[c]))
                        .sum();
                    sum / table.rows as f64
                })
                .collect(),
            _ => vec![0.0; dim],
        },
    }
}

impl<'g> Simulation<'g> {
    /// Allocates the particles `first .. first + count` and samples their initial state.
    /// `samples` is the initial sample table, `data` the dynamics' data set (if any).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &'g Gpu,
        plan: &Plan,
        samples: Option<&SampleTable>,
        data: Option<&SampleTable>,
        first: u64,
        count: u64,
        layout: &Layout,
    ) -> Result<Self> {
        let dim = plan.particles.dim;
        let wg = layout.workgroup_size;
        let max_wg = gpu
            .limits
            .max_compute_invocations_per_workgroup
            .min(gpu.limits.max_compute_workgroup_size_x)
            .min(256);
        if wg == 0 || wg > max_wg || !wg.is_power_of_two() {
            return Err(Error::Usage(format!(
                "workgroup size {wg} is not allowed on {}: use a power of two from 1 to {max_wg}",
                gpu.adapter.name
            )));
        }
        let tags = (!plan.boundary.is_empty()).then(|| {
            first_passage::initial_tags(
                dim,
                plan.boundary.first_passage.len(),
                !plan.boundary.basins.is_empty(),
            )
        });
        let words = tags.as_ref().map_or(dim, |t| t.len() as u32);
        let mut ensemble =
            Ensemble::with_words(gpu, dim, words, first, count, layout.chunk_particles)?;
        if let Some(tags) = tags {
            ensemble.attach_tags(gpu, &tags)?;
        }
        let init = || {
            initialize(
                gpu,
                &ensemble,
                &plan.particles.init,
                samples,
                plan.particles.count,
                plan.seed,
                layout.workgroup_size,
            )
        };
        let context = crate::dynamics::StepperContext {
            gpu,
            ensemble: &ensemble,
            seed: plan.seed,
            data,
            workgroup_size: layout.workgroup_size,
            chunk_particles: layout.chunk_particles,
            boundary: &plan.boundary,
            mala_carry: layout.mala_carry,
        };
        let build = |stepper: Option<&dyn Stepper>| {
            Observers::new(gpu, plan, data, &ensemble, stepper, layout.workgroup_size)
        };
        let (stepper, observers) =
            if plan.dynamics.velocity_axes() || plan.dynamics.masses().is_some() {
                // The observers bind the stepper's velocities: one after the other.
                init()?;
                let stepper = plan.dynamics.stepper(&context)?;
                let observers = build(Some(stepper.as_ref()))?;
                (stepper, observers)
            } else {
                // The stepper's pipelines are made on a second thread while this one samples
                // the initial state and makes the observers' pipelines: pipeline creation is
                // CPU work in the driver, and on a software adapter it is most of a short
                // run's start-up (docs/architecture.md, "Start-up"). Making a stepper writes
                // only its own buffers, so it needs the initial state no sooner than its
                // first step.
                std::thread::scope(|scope| {
                    let stepper = scope.spawn(|| plan.dynamics.stepper(&context));
                    let observers = init().and_then(|()| build(None));
                    let stepper = stepper
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    Ok::<_, Error>((stepper?, observers?))
                })?
            };
        gpu.check()?;
        let software = gpu.adapter.is_software();
        // A first guess of the throughput; corrected after every submission.
        let rate: f64 = if software { 2e8 } else { 2e10 };
        let fused = layout.fused_steps.unwrap_or(DEFAULT_FUSED_STEPS).max(1);
        Ok(Simulation {
            gpu,
            plan: plan.clone(),
            last_mean: init_center(&plan.particles.init, samples, dim as usize),
            ensemble,
            stepper,
            observers,
            step: 0,
            fused,
            rate,
            slice_particles: layout.slice_particles,
            pending: None,
        })
    }

    /// The MMD diagnostic's kernel bandwidth (kernel flows).
    pub fn mmd_bandwidth(&self) -> Option<f64> {
        self.observers.mmd.as_ref().map(MmdGpu::bandwidth)
    }

    pub fn step(&self) -> u64 {
        self.step
    }

    /// Centers the next moment sums on `mean` (as after a snapshot with that mean), so a
    /// resumed run sums exactly as the uninterrupted one did.
    pub fn set_center(&mut self, mean: &[f64]) {
        self.last_mean = mean.to_vec();
    }

    /// Replaces the state with checkpointed `positions` (row-major, this ensemble's
    /// particles) and `extra` state (velocities, where the dynamics has them) taken at
    /// `point`.
    pub fn restore(
        &mut self,
        positions: &[f32],
        extra: Option<&[f32]>,
        point: ResumePoint,
    ) -> Result<()> {
        let expected = self.ensemble.count * u64::from(self.ensemble.dim);
        let wrong = |what: &str, n: usize| {
            Err(Error::Output(format!(
                "checkpoint holds {n} {what} coordinates, the run needs {expected}"
            )))
        };
        if positions.len() as u64 != expected {
            return wrong("position", positions.len());
        }
        match (self.stepper.extra_state(), extra) {
            (Some(ens), Some(v)) if v.len() as u64 == expected => ens.write_positions(self.gpu, v),
            (Some(_), Some(v)) => return wrong("velocity", v.len()),
            (Some(_), None) => return wrong("velocity", 0),
            (None, _) => {}
        }
        self.ensemble.write_positions(self.gpu, positions);
        self.step = point.step;
        self.pending = point.pending;
        self.gpu.wait()
    }

    /// Advances to `target` in fused blocks. `on_progress(step)` runs after every
    /// submission with the step the ensemble has reached on average (so a long block on many
    /// particles still reports progress about every [`BLOCK_TARGET`]). `stop()` is asked
    /// after every submission; when it says yes the simulation stops there and returns the
    /// point to resume from. A block that leaves any particle NaN or Inf ends the run with
    /// [`Error::Diverged`].
    pub fn advance_to(
        &mut self,
        target: u64,
        mut on_progress: impl FnMut(u64) -> Result<()>,
        stop: &dyn Fn() -> bool,
    ) -> Result<Advance> {
        let total = self.ensemble.count.max(1);
        while self.step < target {
            // A block cut short by an earlier stop is finished first, with its own length.
            let (k, mut done) = match self.pending.take() {
                Some(p) => (p.steps, p.done),
                None => (
                    u64::from(self.fused.min(self.stepper.max_fused())).min(target - self.step)
                        as u32,
                    0,
                ),
            };
            let min_slice = self.stepper.min_slice();
            for (index, chunk) in self.ensemble.chunks.iter().enumerate() {
                let chunk_start = chunk.base - self.ensemble.first;
                // Particles per submission so that one takes about BLOCK_TARGET.
                let wanted = (self.rate * BLOCK_TARGET.as_secs_f64() / f64::from(k))
                    .min(f64::from(u32::MAX)) as u32;
                let slice = match self.slice_particles {
                    Some(forced) => forced.clamp(1, chunk.count),
                    None => wanted
                        .div_ceil(min_slice)
                        .saturating_mul(min_slice)
                        .max(min_slice)
                        .min(chunk.count),
                };
                let mut first = done.saturating_sub(chunk_start).min(u64::from(chunk.count)) as u32;
                while first < chunk.count {
                    let span = slice.min(chunk.count - first);
                    let started = Instant::now();
                    let whole = self.stepper.submit_slice(
                        self.gpu,
                        &self.ensemble,
                        index,
                        first,
                        span,
                        self.step,
                        k,
                        stop,
                    )?;
                    if !whole {
                        // A step over the whole ensemble was abandoned before it changed
                        // anything: stop before it; resume does it again.
                        self.gpu.wait()?;
                        return Ok(Advance::Stopped(self.resume_point()));
                    }
                    self.gpu.wait()?;
                    let measured =
                        f64::from(span) * f64::from(k) / started.elapsed().as_secs_f64().max(1e-6);
                    self.rate = 0.5 * (self.rate + measured);
                    first += span;
                    done = chunk_start + u64::from(first);
                    if done < self.ensemble.count {
                        on_progress(self.step + u64::from(k) * done / total)?;
                        if stop() {
                            self.pending = Some(Pending { steps: k, done });
                            return Ok(Advance::Stopped(self.resume_point()));
                        }
                    }
                }
            }
            let bad = self.stepper.take_nonfinite(self.gpu)?;
            self.step += u64::from(k);
            if bad > 0 {
                return Err(Error::Diverged {
                    step: self.step,
                    time: self.plan.dynamics.time_at(self.step),
                    count: bad,
                });
            }
            on_progress(self.step)?;
            if self.step < target && stop() {
                return Ok(Advance::Stopped(self.resume_point()));
            }
        }
        Ok(Advance::Reached)
    }

    /// MALA: proposals accepted since the last snapshot (what a checkpoint carries).
    pub fn accepted(&self) -> Result<Option<u64>> {
        self.stepper.accepted(self.gpu)
    }

    /// Sets the count of proposals accepted since the last snapshot (on resume, from the
    /// checkpoint).
    pub fn set_accepted(&mut self, count: u64) {
        self.stepper.set_accepted(self.gpu, count);
    }

    /// Where the ensemble is: its step and, inside a block cut short, how far that got.
    pub fn resume_point(&self) -> ResumePoint {
        ResumePoint {
            step: self.step,
            pending: self.pending,
        }
    }

    pub fn observe(&mut self) -> Result<Observation> {
        let passage = self.passage_counts()?;
        let absorbed = passage.as_ref().map_or(0, |p| p.absorbed);
        let histogram = self.observers.histogram.observe(self.gpu, &self.ensemble)?;
        let marginals = self
            .observers
            .marginals
            .iter()
            .map(|m| m.observe(self.gpu, &self.ensemble))
            .collect::<Result<Vec<_>>>()?;
        let moments =
            self.observers
                .moments
                .observe(self.gpu, &self.ensemble, &self.last_mean, absorbed)?;
        if moments.count > 0 {
            self.last_mean = moments.mean.clone();
        }
        let mmd2 = match &self.observers.mmd {
            Some(m) => Some(m.observe(self.gpu, &self.ensemble)?),
            None => None,
        };
        let time = self.plan.dynamics.time_at(self.step);
        let energy = match &self.observers.energy {
            Some(e) => Some(e.observe(self.gpu, time, absorbed)?),
            None => None,
        };
        let accepted = self.stepper.accepted(self.gpu)?;
        if accepted.is_some() {
            self.stepper.set_accepted(self.gpu, 0);
        }
        Ok(Observation {
            step: self.step,
            time,
            histogram,
            marginals,
            moments,
            mmd2,
            accepted,
            energy,
            trace: self.trace()?,
            passage,
        })
    }

    /// Survival and absorbed counts of a run with walls or targets (None without), reduced
    /// on the GPU (src/observe/passage_counts.rs).
    fn passage_counts(&self) -> Result<Option<PassageCounts>> {
        self.observers
            .passage
            .as_ref()
            .map(|p| p.observe(self.gpu, &self.ensemble))
            .transpose()
    }

    /// The per-particle tags (absorbed step, windings, first-passage steps), row-major;
    /// empty for a run without walls or targets.
    pub fn tags(&self) -> Result<Vec<u32>> {
        self.ensemble.read_tags(self.gpu)
    }

    /// Transitions between basins so far (None without basins).
    pub fn transitions(&self) -> Result<Option<TransitionCounts>> {
        let n = self.plan.boundary.basins.len();
        if n == 0 {
            return Ok(None);
        }
        let values = self.stepper.counters(self.gpu)?;
        Ok(Some(TransitionCounts::from_counters(n, &values)))
    }

    /// Sets the transition counts (a checkpoint's, on resume).
    pub fn set_transitions(&self, counts: &TransitionCounts) {
        self.stepper.set_counters(self.gpu, &counts.counters());
    }

    /// Replaces the tags with a checkpoint's.
    pub fn restore_tags(&self, tags: &[u32]) -> Result<()> {
        let expected = self.ensemble.count * u64::from(self.ensemble.tag_stride);
        if tags.len() as u64 != expected {
            return Err(Error::Output(format!(
                "checkpoint holds {} tag words, the run needs {expected}",
                tags.len()
            )));
        }
        self.ensemble.write_tags(self.gpu, tags);
        Ok(())
    }

    /// The traced particles (global indices below `output.trajectories`) this ensemble holds.
    fn trace(&self) -> Result<Vec<f32>> {
        let wanted = u64::from(self.plan.output.trajectories);
        let d = u64::from(self.ensemble.dim);
        let mut out = Vec::new();
        for c in &self.ensemble.chunks {
            let n = wanted.saturating_sub(c.base).min(u64::from(c.count));
            if n == 0 {
                break;
            }
            let bytes = self.gpu.read_bytes(&c.state, 0, n * d * 4)?;
            out.extend_from_slice(bytemuck::cast_slice(&bytes));
        }
        Ok(out)
    }

    pub fn positions(&self) -> Result<Vec<f32>> {
        self.ensemble.read_positions(self.gpu)
    }

    /// Whether the dynamics keeps per-particle state besides the positions.
    pub fn has_extra_state(&self) -> bool {
        self.stepper.extra_state().is_some()
    }

    /// Per-particle state besides the positions (heavy-ball velocities), row-major.
    pub fn extra_state(&self) -> Result<Option<Vec<f32>>> {
        self.stepper
            .extra_state()
            .map(|e| e.read_positions(self.gpu))
            .transpose()
    }
}

/// Steps per block when the layout does not say: long blocks amortise the per-dispatch cost
/// of loading and storing every particle; the particles are then split into slices so that
/// one submission still takes about [`BLOCK_TARGET`].
pub const DEFAULT_FUSED_STEPS: u32 = 1000;
