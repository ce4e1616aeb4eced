//! `fokker run` and `fokker resume`: a resolved scenario in, a self-describing run directory
//! out, surviving interruption by a checkpoint.

pub mod checkpoint;
pub mod compare;
pub mod manifest;
pub mod merge;
pub mod mmd_plot;
pub mod passage;
pub mod plot_csv;
pub mod progress;
pub mod reference;
pub mod render;
pub mod sample;

use crate::error::{Error, Result};
use crate::gpu::{AdapterChoice, Gpu};
use crate::output::{self, MetricsRow};
use crate::scenario::parse::Resolved;
use crate::scenario::{Init, ParticlesOutput, Plan};
use crate::simulation::{Advance, Layout, Observation, Simulation};
use manifest::{InputFile, Manifest, MomentsRecord, ShardRecord, SnapshotRecord, Status, Timings};
use progress::{Progress, ProgressMode};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One task of a job array: shard `index` of `count` owns a contiguous range of global
/// particle indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// (first global index, particles) of this shard of `total` particles.
    pub fn range(&self, total: u64) -> (u64, u64) {
        let at = |i: u64| (u128::from(total) * u128::from(i) / u128::from(self.count)) as u64;
        (at(self.index), at(self.index + 1) - at(self.index))
    }
}

/// How to run, beyond the plan: none of it changes the results.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out: PathBuf,
    pub force: bool,
    pub adapter: AdapterChoice,
    pub progress: ProgressMode,
    pub layout: Layout,
    pub shard: Shard,
    /// Set by a signal handler: checkpoint at the next step boundary and stop.
    pub interrupt: Arc<AtomicBool>,
    /// Also write a checkpoint this often (wall clock) and carry on.
    pub checkpoint_every: Option<Duration>,
    /// Test hook (`FOKKER_TEST_STOP_AT`): interrupt at a chosen stop check.
    pub stop_at: Option<StopAt>,
}

/// A test hook that makes interruption land at the same place on any adapter, however fast:
/// the run asks whether to stop at every submission boundary (and between the submissions
/// of a kernel-sum step), and at the `at`-th time it asks (counted from 1 in this process)
/// the interrupt flag that SIGTERM / SIGINT set is raised, as if the signal had come just
/// then. With `wait_for_signal` the run instead says so on stderr and waits (up to a
/// minute) for a real signal to raise the flag, so that a test can send one exactly there.
/// Set from the environment as `FOKKER_TEST_STOP_AT=<at>` or `<at>:signal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopAt {
    pub at: u64,
    pub wait_for_signal: bool,
}

impl std::str::FromStr for StopAt {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (at, wait_for_signal) = match s.split_once(':') {
            Some((at, "signal")) => (at, true),
            Some(_) => return Err(format!("`{s}`: write <n> or <n>:signal")),
            None => (s, false),
        };
        match at.trim().parse() {
            Ok(at) if at > 0 => Ok(StopAt {
                at,
                wait_for_signal,
            }),
            _ => Err(format!("`{s}`: <n> is a positive integer")),
        }
    }
}

impl StopAt {
    /// The line the run writes to stderr while it waits for the signal.
    pub const WAITING: &'static str = "test hook: waiting for a signal";

    /// Called at the `at`-th stop check.
    fn reached(&self, interrupt: &AtomicBool) {
        if !self.wait_for_signal {
            interrupt.store(true, Ordering::SeqCst);
            return;
        }
        eprintln!("{} at stop check {}", Self::WAITING, self.at);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !interrupt.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub out: PathBuf,
    pub snapshots: usize,
    pub timings: Timings,
    pub adapter: String,
}

/// Relative file name of a snapshot: the zero-padded step.
pub fn snapshot_name(step: u64) -> String {
    format!("{step:08}")
}

fn input_files(plan: &Plan) -> Vec<InputFile> {
    let mut files = Vec::new();
    if let Init::Samples { path, sha256, .. } = &plan.particles.init {
        files.push(InputFile {
            path: path.display().to_string(),
            sha256: sha256.clone(),
        });
    }
    let dynamics_files = plan.dynamics.input_file().into_iter();
    for (path, sha256) in dynamics_files.chain(plan.dynamics.image_file()) {
        files.push(InputFile {
            path: path.display().to_string(),
            sha256: sha256.to_string(),
        });
    }
    files
}

/// Bytes of device memory the plan needs: state, histogram bins and moment partials.
pub fn device_bytes(plan: &Plan) -> u64 {
    let p = &plan.particles;
    let state = p.count.saturating_mul(u64::from(p.dim) * 4);
    let histograms = std::iter::once(&plan.output.histogram).chain(&plan.output.marginals);
    let tallies = u64::from(crate::gpu::abi::HIST_TALLIES);
    let bins: u64 = histograms
        .map(|h| (h.total_bins() as u64 + tallies) * 4)
        .sum();
    let d = u64::from(p.dim);
    let partials = p.count.div_ceil(
        u64::from(crate::observe::moments::ITEMS)
            * u64::from(crate::gpu::abi::DEFAULT_WORKGROUP_SIZE),
    ) * (d + d * (d + 1) / 2 + 1)
        * 4;
    state
        .saturating_add(bins)
        .saturating_add(partials)
        .saturating_add(dynamics_bytes(plan))
        .saturating_add(p.count.saturating_mul(tag_bytes(plan)))
}

/// Bytes of per-particle tags of a run with walls or targets (absorbed step, windings,
/// first-passage steps: src/observe/first_passage.rs), also read back at every snapshot.
fn tag_bytes(plan: &Plan) -> u64 {
    4 * crate::observe::first_passage::tag_stride(&plan.boundary, plan.particles.dim) as u64
}

/// Device memory a dynamics needs beyond the positions (its kind's estimate).
fn dynamics_bytes(plan: &Plan) -> u64 {
    let (n, d) = (plan.particles.count, u64::from(plan.particles.dim));
    let m = plan.dynamics.state_memory(d);
    n.saturating_mul(m.floats_per_particle * 4)
        .saturating_add(m.data_rows.saturating_mul(d * 4))
}

/// Peak host memory for outputs: a particle snapshot (f32) when particles are written.
pub fn host_bytes(plan: &Plan) -> u64 {
    let p = &plan.particles;
    let particles = if plan.output.particles == ParticlesOutput::None {
        0
    } else {
        p.count.saturating_mul(u64::from(p.dim) * 8)
    };
    particles
        .saturating_add(plan.output.histogram.total_bins() as u64 * 8 * 2)
        .saturating_add(p.count.saturating_mul(tag_bytes(plan)))
}

/// Refuses, before anything is allocated, a plan that cannot fit: on a software adapter the
/// device memory is host memory, so state and outputs are checked against the memory the
/// kernel says is available. (wgpu does not report a discrete GPU's memory; there an
/// allocation failure is caught by the device's error handler and reported the same way.)
fn check_memory(plan: &Plan, particles: u64, gpu: &Gpu) -> Result<()> {
    let dim = plan.particles.dim;
    let refuse = |what: String| {
        Err(Error::Device(format!(
            "out of memory: particles.count = {} (dim {dim}) {what}; use fewer particles per run \
             or shard it (--shard-count)",
            plan.particles.count
        )))
    };
    let capacity = crate::gpu::ensemble::chunk_capacity(&gpu.limits, dim, None).max(1);
    if particles.div_ceil(capacity) > crate::gpu::ensemble::MAX_CHUNKS {
        return refuse(format!(
            "needs {} GiB of GPU memory, beyond what {} can address",
            particles.saturating_mul(u64::from(dim) * 4) >> 30,
            gpu.adapter.name
        ));
    }
    if !gpu.adapter.is_software() {
        return Ok(());
    }
    let share = particles as f64 / plan.particles.count.max(1) as f64;
    let needed = (device_bytes(plan).saturating_add(host_bytes(plan)) as f64 * share) as u64;
    match available_memory().filter(|&a| needed > a) {
        Some(available) => refuse(format!(
            "needs about {} MiB here and {} MiB are available",
            needed >> 20,
            available >> 20
        )),
        None => Ok(()),
    }
}

/// MemAvailable from /proc/meminfo (Linux), in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Opens the adapter, runs the plan and writes `opts.out`. On failure after the directory
/// was made, the manifest records `failed`, `diverged` or `interrupted` and the error is
/// returned.
pub fn run(resolved: &Resolved, opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    let plan = &resolved.plan;
    let shard = opts.shard;
    if shard.count == 0 || shard.index >= shard.count {
        return Err(Error::Usage(format!(
            "--shard-index {} must be below --shard-count {}",
            shard.index, shard.count
        )));
    }
    if shard.count > 1 && plan.dynamics.couples_particles() {
        return Err(Error::Scenario {
            source_name: "command line".into(),
            issues: vec![crate::error::ScenarioIssue {
                key: "dynamics.kind".into(),
                value: plan.dynamics.kind_name().into(),
                allowed: format!(
                    "--shard-count 1: {} couples every particle to the whole ensemble at each \
                     step, so it cannot be split into shards (--shard-count {} was given)",
                    plan.dynamics.kind_name(),
                    shard.count
                ),
            }],
        });
    }
    if shard.count > plan.particles.count {
        return Err(Error::Scenario {
            source_name: "command line".into(),
            issues: vec![crate::error::ScenarioIssue {
                key: "particles.count".into(),
                value: plan.particles.count.to_string(),
                allowed: format!(
                    "at least the shard count {} (every shard needs a particle)",
                    shard.count
                ),
            }],
        });
    }
    // References are built before anything is written, so a bad one leaves no directory.
    let mut diagnostics =
        reference::Diagnostics::new(plan, resolved.samples.as_ref(), resolved.data.as_ref())?;
    let gpu = Gpu::open(&opts.adapter)?;
    let (first, particles) = shard.range(plan.particles.count);
    check_memory(plan, particles, &gpu)?;
    output::prepare_run_dir(&opts.out, opts.force)?;
    let mut manifest = Manifest {
        status: Status::Running,
        fokker_version: manifest::VERSION.into(),
        git_revision: manifest::GIT_REVISION.into(),
        name: plan.name.clone(),
        seed: plan.seed,
        adapter: gpu.adapter.clone(),
        plan_hash: resolved.hash.clone(),
        plan: plan.clone(),
        shard: (shard.count > 1).then_some(ShardRecord {
            index: shard.index,
            count: shard.count,
            first,
            particles,
        }),
        merged_from: Vec::new(),
        inputs: input_files(plan),
        timings: Timings::default(),
        snapshots: Vec::new(),
        metrics: "metrics.csv".into(),
        gif: None,
        trajectories: None,
        plots: Vec::new(),
        error: None,
        mmd_bandwidth: None,
        mmd_plot: None,
        first_passage: None,
    };
    write_manifest(&opts.out, &manifest)?;
    let result = Simulation::new(
        &gpu,
        plan,
        resolved.samples.as_ref(),
        resolved.data.as_ref(),
        first,
        particles,
        &opts.layout,
    )
    .and_then(|mut sim| {
        manifest.timings.init_seconds = started.elapsed().as_secs_f64();
        manifest.mmd_bandwidth = sim.mmd_bandwidth();
        execute(&mut sim, opts, &mut manifest, &mut diagnostics)
    });
    finish(&gpu, opts, manifest, started, result)
}

/// `fokker resume DIR`: continues an interrupted run from its checkpoint. The result is
/// byte-identical to an uninterrupted run on the same adapter.
pub fn resume(dir: &Path, opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    let mut manifest = read_manifest(dir)?;
    let saved = checkpoint::read(dir, &manifest)?;
    let resolved = checkpoint::verify_inputs(dir, &manifest)?;
    let plan = &resolved.plan;
    let mut diagnostics =
        reference::Diagnostics::new(plan, resolved.samples.as_ref(), resolved.data.as_ref())?;
    let gpu = Gpu::open(&opts.adapter)?;
    let (first, particles) = match manifest.shard {
        Some(s) => (s.first, s.particles),
        None => (0, plan.particles.count),
    };
    manifest.status = Status::Running;
    manifest.error = None;
    manifest.adapter = gpu.adapter.clone();
    write_manifest(dir, &manifest)?;
    let opts = RunOptions {
        out: dir.to_path_buf(),
        ..opts.clone()
    };
    let result = Simulation::new(
        &gpu,
        plan,
        resolved.samples.as_ref(),
        resolved.data.as_ref(),
        first,
        particles,
        &opts.layout,
    )
    .and_then(|mut sim| {
        sim.restore(&saved.positions, saved.extra.as_deref(), saved.point)?;
        // Absorbed particles stay absorbed, windings and passages carry on.
        if !saved.bounds.tags.is_empty() || sim.ensemble.tag_stride > 0 {
            sim.restore_tags(&saved.bounds.tags)?;
        }
        if let Some(count) = saved.accepted {
            sim.set_accepted(count);
        }
        if let Some(t) = &saved.bounds.transitions {
            sim.set_transitions(t);
        }
        if let Some(last) = manifest.snapshots.last() {
            sim.set_center(&last.moments.mean);
        }
        execute(&mut sim, &opts, &mut manifest, &mut diagnostics)
    });
    finish(&gpu, &opts, manifest, started, result)
}

fn finish(
    gpu: &Gpu,
    opts: &RunOptions,
    mut manifest: Manifest,
    started: Instant,
    result: Result<()>,
) -> Result<RunReport> {
    manifest.timings.wall_seconds += started.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            manifest.status = Status::Complete;
            checkpoint::remove(&opts.out)?;
            write_manifest(&opts.out, &manifest)?;
            Ok(RunReport {
                out: opts.out.clone(),
                snapshots: manifest.snapshots.len(),
                timings: manifest.timings,
                adapter: format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
            })
        }
        Err(e) => {
            manifest.status = match e {
                Error::Diverged { .. } => Status::Diverged,
                Error::Interrupted { .. } => Status::Interrupted,
                _ => Status::Failed,
            };
            manifest.error = Some(e.to_string());
            // The original error matters more than a failure to record it.
            let _ = write_manifest(&opts.out, &manifest);
            Err(e)
        }
    }
}

pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Data {
        path,
        reason: format!("not a fokker manifest: {e}"),
    })
}

pub fn write_manifest(out: &Path, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Output(format!("cannot serialise the manifest: {e}")))?;
    output::write_atomic(&out.join("manifest.json"), &json)
}

/// Steps to the snapshots not yet written, writing each; checkpoints and stops when
/// `opts.interrupt` is raised.
fn execute(
    sim: &mut Simulation,
    opts: &RunOptions,
    manifest: &mut Manifest,
    diagnostics: &mut reference::Diagnostics,
) -> Result<()> {
    let plan = manifest.plan.clone();
    let out = opts.out.as_path();
    let count = sim.ensemble.count;
    let total_steps = plan.dynamics.steps();
    let mut progress = Progress::new(opts.progress, total_steps, count);
    let written = manifest.snapshots.last().map(|s| s.step);
    let remaining: Vec<u64> = plan
        .output
        .snapshot_steps(total_steps)
        .into_iter()
        .filter(|&s| written.is_none_or(|w| s > w))
        .collect();
    let last_checkpoint = Cell::new(Instant::now());
    let checks = Cell::new(0u64);
    let stop = || {
        if let Some(hook) = opts.stop_at {
            checks.set(checks.get() + 1);
            if checks.get() == hook.at {
                hook.reached(&opts.interrupt);
            }
        }
        opts.interrupt.load(Ordering::SeqCst)
            || opts
                .checkpoint_every
                .is_some_and(|every| last_checkpoint.get().elapsed() >= every)
    };
    let result = (|| {
        for target in remaining {
            // Until the snapshot step; a periodic checkpoint stops and goes on, a signal ends.
            loop {
                let t0 = Instant::now();
                let advanced = sim.advance_to(
                    target,
                    |step| {
                        progress.step(step, plan.dynamics.time_at(step));
                        Ok(())
                    },
                    &stop,
                );
                manifest.timings.stepping_seconds += t0.elapsed().as_secs_f64();
                manifest.timings.particle_steps_per_second =
                    count as f64 * sim.step() as f64 / manifest.timings.stepping_seconds.max(1e-9);
                manifest.timings.interactions_per_second = plan
                    .dynamics
                    .interactions_per_particle_step(plan.particles.count)
                    .map(|k| k * manifest.timings.particle_steps_per_second);
                let Advance::Stopped(point) = advanced? else {
                    break;
                };
                let bounds = checkpoint::BoundaryState {
                    tags: sim.tags()?,
                    transitions: sim.transitions()?,
                };
                checkpoint::write(
                    out,
                    &sim.positions()?,
                    sim.extra_state()?.as_deref(),
                    &bounds,
                    point,
                    sim.accepted()?,
                    manifest,
                )?;
                last_checkpoint.set(Instant::now());
                if opts.interrupt.load(Ordering::SeqCst) {
                    return Err(Error::Interrupted {
                        step: point.step,
                        dir: out.display().to_string(),
                    });
                }
            }
            let t1 = Instant::now();
            let obs = sim.observe()?;
            manifest.timings.observe_seconds += t1.elapsed().as_secs_f64();
            let bad = obs.histogram.nonfinite.max(obs.moments.nonfinite);
            if bad > 0 {
                return Err(Error::Diverged {
                    step: obs.step,
                    time: obs.time,
                    count: bad,
                });
            }
            let t2 = Instant::now();
            let write_particles = match plan.output.particles {
                ParticlesOutput::None => false,
                ParticlesOutput::Final => target == total_steps,
                ParticlesOutput::Snapshots => true,
            };
            let (positions, velocities) = if write_particles {
                (Some(sim.positions()?), sim.extra_state()?)
            } else {
                (None, None)
            };
            let mut record = write_snapshot(
                out,
                &plan,
                &obs,
                positions.as_deref(),
                velocities.as_deref(),
            )?;
            if let Some(accepted) = obs.accepted {
                let since = manifest.snapshots.last().map(|s| s.step);
                record.accepted = Some(accepted);
                record.acceptance_rate = acceptance_rate(accepted, count, since, obs.step);
            }
            let t3 = Instant::now();
            diagnostics.write(out, &plan, &obs, &mut record)?;
            manifest.timings.reference_seconds += t3.elapsed().as_secs_f64();
            progress.snapshot(obs.step, obs.time, &record.density);
            manifest.snapshots.push(record);
            write_metrics(out, &plan, &manifest.snapshots)?;
            write_manifest(out, manifest)?;
            manifest.timings.write_seconds += t2.elapsed().as_secs_f64();
        }
        if plan.output.gif {
            manifest.gif = Some(write_gif(out, &plan, &manifest.snapshots)?);
        }
        if manifest.shard.is_none_or(|s| s.first == 0) {
            manifest.trajectories = write_trajectories(out, &plan, &manifest.snapshots)?;
        }
        manifest.plots = reference::write_plots(out, &plan, &manifest.snapshots)?;
        manifest.mmd_plot = mmd_plot::write_mmd_plot(out, &plan, &manifest.snapshots)?;
        let (passages, windings) = passage::from_tags(&plan, &sim.tags()?);
        let unwrapped = match &windings {
            Some(w) => Some(passage::Unwrapped::of(&plan, &sim.positions()?, w)),
            None => None,
        };
        let arrays = passage::FinalArrays {
            count: count as usize,
            passages,
            windings,
            unwrapped,
            transitions: sim.transitions()?,
        };
        manifest.first_passage = passage::write_final(out, &plan, arrays, &manifest.snapshots)?;
        Ok(())
    })();
    progress.finish(match &result {
        Ok(()) => "complete",
        Err(Error::Interrupted { .. }) => "interrupted",
        Err(_) => "stopped",
    });
    result
}

pub(crate) fn title(plan: &Plan, step: u64, time: f64) -> String {
    match &plan.name {
        Some(n) => format!("{n}   t = {time:.4}   step {step}"),
        None => format!("t = {time:.4}   step {step}"),
    }
}

fn axis_names(plan: &Plan) -> Vec<String> {
    reference::axis_names(&plan.output.histogram, plan.particles.dim)
}

/// Writes one snapshot's density array and heatmap (and particles) and describes them.
pub fn write_density(
    out: &Path,
    plan: &Plan,
    step: u64,
    time: f64,
    counts: &[u64],
) -> Result<(String, String)> {
    let spec = &plan.output.histogram;
    let name = snapshot_name(step);
    let density = format!("density/{name}.npy");
    let heatmap = format!("density/{name}.png");
    let shape: Vec<usize> = spec.bins.iter().map(|&b| b as usize).collect();
    output::write_atomic(&out.join(&density), &output::npy_u64(&shape, counts)?)?;
    let png = output::render_density_png(
        counts,
        spec,
        &plan.output.heatmap,
        &title(plan, step, time),
        &axis_names(plan),
    )?;
    output::write_atomic(&out.join(&heatmap), &png)?;
    Ok((density, heatmap))
}

/// Writes `folder/NNNNNNNN.npy` of row-major `values` (dim per particle) and returns its
/// relative path.
pub(crate) fn write_rows(
    out: &Path,
    plan: &Plan,
    folder: &str,
    step: u64,
    values: &[f32],
) -> Result<String> {
    let rel = format!("{folder}/{}.npy", snapshot_name(step));
    let d = plan.particles.dim as usize;
    output::write_atomic(
        &out.join(&rel),
        &output::npy_f32(&[values.len() / d, d], values)?,
    )?;
    Ok(rel)
}

fn write_snapshot(
    out: &Path,
    plan: &Plan,
    obs: &Observation,
    positions: Option<&[f32]>,
    velocities: Option<&[f32]>,
) -> Result<SnapshotRecord> {
    let spec = &plan.output.histogram;
    let (density, heatmap) = write_density(out, plan, obs.step, obs.time, &obs.histogram.counts)?;
    let particles = positions
        .map(|p| write_rows(out, plan, "particles", obs.step, p))
        .transpose()?;
    // The end-of-step velocities, beside the positions.
    let velocities = match (positions, velocities) {
        (Some(_), Some(v)) => Some(write_rows(out, plan, "velocities", obs.step, v)?),
        _ => None,
    };
    Ok(SnapshotRecord {
        step: obs.step,
        time: obs.time,
        density,
        heatmap,
        particles,
        velocities,
        histogram: reference::histogram_record(spec, &obs.histogram),
        moments: MomentsRecord {
            count: obs.moments.count,
            mean: obs.moments.mean.clone(),
            cov: obs.moments.cov.clone(),
        },
        trace: obs.trace.clone(),
        reference: None,
        marginals: Vec::new(),
        mmd2: obs.mmd2,
        accepted: None,
        acceptance_rate: None,
        energy: obs.energy.clone().map(manifest::EnergyRecord::from_sums),
        passage: obs.passage.clone(),
    })
}

/// MALA's acceptance rate at a snapshot: `accepted` proposals out of `particles` times the
/// steps since the previous snapshot `since` (None at the first snapshot, or with no step
/// taken since: no proposals).
pub fn acceptance_rate(
    accepted: u64,
    particles: u64,
    since: Option<u64>,
    step: u64,
) -> Option<f64> {
    let steps = step.checked_sub(since?).filter(|&s| s > 0)?;
    let proposals = particles as f64 * steps as f64;
    (proposals > 0.0).then(|| accepted as f64 / proposals)
}

/// metrics.csv from the snapshot records (so a resumed or merged run writes it whole).
pub fn write_metrics(out: &Path, plan: &Plan, snapshots: &[SnapshotRecord]) -> Result<()> {
    let rows: Vec<MetricsRow> = snapshots
        .iter()
        .map(|s| MetricsRow {
            step: s.step,
            time: s.time,
            mean: s.moments.mean.clone(),
            cov: s.moments.cov.clone(),
            mmd2: s.mmd2,
            acceptance_rate: s.acceptance_rate,
            energy: energy_columns(plan, s),
        })
        .collect();
    let with_acceptance = plan.dynamics.metropolis_adjusted();
    let mut csv = output::metrics_csv(plan.particles.dim as usize, &rows, with_acceptance);
    if plan.output.reference.is_some() {
        csv = reference::extend_metrics(csv, snapshots);
    }
    let csv = passage::extend_metrics(csv, plan, snapshots);
    output::write_atomic(&out.join("metrics.csv"), csv.as_bytes())
}

/// The energy columns of a snapshot's metrics.csv row: `mean_potential`,
/// `kinetic_temperature` (dynamics with velocities) and `configurational_temperature` for
/// dynamics whose potential is observed (`Dynamics::energy_potential`), empty where a
/// snapshot has none (a WGSL potential); none for other dynamics.
fn energy_columns(plan: &Plan, s: &SnapshotRecord) -> Vec<(&'static str, Option<f64>)> {
    if plan.dynamics.energy_potential().is_none() {
        return Vec::new();
    }
    let e = s.energy.as_ref();
    let mut out = vec![("mean_potential", e.and_then(|e| e.mean_potential))];
    if plan.dynamics.masses().is_some() {
        out.push(("kinetic_temperature", e.and_then(|e| e.kinetic_temperature)));
    }
    out.push((
        "configurational_temperature",
        e.and_then(|e| e.configurational_temperature),
    ));
    out
}

/// density.gif from the stored density arrays, so that it is the same whether the run was
/// interrupted, resumed or merged.
pub fn write_gif(out: &Path, plan: &Plan, snapshots: &[SnapshotRecord]) -> Result<String> {
    let mut frames = Vec::with_capacity(snapshots.len());
    for s in snapshots {
        let (_, counts) = output::read_npy_u64(&out.join(&s.density))?;
        frames.push(output::render_density_image(
            &counts,
            &plan.output.histogram,
            &plan.output.heatmap,
            &title(plan, s.step, s.time),
            &axis_names(plan),
        )?);
    }
    output::write_atomic(&out.join("density.gif"), &output::encode_gif(&frames, 200)?)?;
    Ok("density.gif".into())
}

/// `trajectories.npy` (f32, snapshots x traced particles x dim) from the snapshot records,
/// when the plan traces particles.
pub fn write_trajectories(
    out: &Path,
    plan: &Plan,
    snapshots: &[SnapshotRecord],
) -> Result<Option<String>> {
    let d = plan.particles.dim as usize;
    let k = (plan.output.trajectories as usize).min(plan.particles.count as usize);
    if k == 0 || snapshots.is_empty() {
        return Ok(None);
    }
    let mut values = Vec::with_capacity(snapshots.len() * k * d);
    for s in snapshots {
        if s.trace.len() != k * d {
            return Err(Error::Output(format!(
                "snapshot at step {} traced {} coordinates, expected {}",
                s.step,
                s.trace.len(),
                k * d
            )));
        }
        values.extend_from_slice(&s.trace);
    }
    output::write_atomic(
        &out.join("trajectories.npy"),
        &output::npy_f32(&[snapshots.len(), k, d], &values)?,
    )?;
    // The paths on the histogram's axes (a 1D histogram: its axis against time).
    let spec = &plan.output.histogram;
    let axis = |s: &SnapshotRecord, p: usize, a: u32| f64::from(s.trace[p * d + a as usize]);
    let paths: Vec<Vec<(f64, f64)>> = (0..k)
        .map(|p| {
            snapshots
                .iter()
                .map(|s| match spec.axes[..] {
                    [a, b] => (axis(s, p, a), axis(s, p, b)),
                    _ => (s.time, axis(s, p, spec.axes[0])),
                })
                .collect()
        })
        .collect();
    let names = axis_names(plan);
    let (x, y, labels) = match spec.axes[..] {
        [_, _] => (
            spec.range[0],
            spec.range[1],
            (names[0].as_str(), names[1].as_str()),
        ),
        _ => {
            let times = snapshots.iter().map(|s| s.time);
            let (t0, t1) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
                (a.min(t), b.max(t))
            });
            let t1 = if t1 > t0 { t1 } else { t0 + 1.0 };
            ([t0, t1], spec.range[0], ("t", names[0].as_str()))
        }
    };
    let title = match &plan.name {
        Some(n) => format!("{n}: {k} traced particles"),
        None => format!("{k} traced particles"),
    };
    let png = output::plot::path_chart(&title, labels, &paths, x, y)?;
    output::write_atomic(&out.join("trajectories.png"), &output::png_bytes(&png)?)?;
    Ok(Some("trajectories.npy".into()))
}

/// What `--dry-run` prints: the resolved plan, its hash, the snapshots and the memory.
pub fn dry_run_report(resolved: &Resolved, out: &Path) -> Result<String> {
    let plan = &resolved.plan;
    let json = serde_json::to_string_pretty(plan)
        .map_err(|e| Error::Output(format!("cannot serialise the plan: {e}")))?;
    let snapshots = plan.output.snapshot_steps(plan.dynamics.steps());
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    Ok(format!(
        "plan (hash {}):\n{json}\n\nsteps: {}, snapshots: {} (steps {:?}{})\nparticles: {} x dim {}\n\
         GPU memory: {:.1} MiB (state {:.1} MiB)\nhost memory for outputs: {:.1} MiB\noutput directory: {}\n",
        resolved.hash,
        plan.dynamics.steps(),
        snapshots.len(),
        &snapshots[..snapshots.len().min(8)],
        if snapshots.len() > 8 { ", ..." } else { "" },
        plan.particles.count,
        plan.particles.dim,
        mib(device_bytes(plan)),
        mib(plan.particles.count * u64::from(plan.particles.dim) * 4),
        mib(host_bytes(plan)),
        out.display()
    ))
}
