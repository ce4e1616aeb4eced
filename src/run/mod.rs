//! `fokker run` and `fokker resume`: a resolved scenario in, a self-describing run directory
//! out, surviving interruption by a checkpoint.

pub mod checkpoint;
pub mod compare;
pub mod devices;
pub mod manifest;
pub mod merge;
pub mod mmd_plot;
pub mod passage;
pub mod plot_csv;
pub mod progress;
pub mod reference;
pub mod render;
pub mod report;
pub mod sample;
pub mod status;
pub mod sweep;
mod writer;

use crate::error::{Error, Result};
use crate::gpu::{AdapterChoice, Devices, Gpu};
use crate::output::{self, MetricsRow};
use crate::scenario::parse::Resolved;
use crate::scenario::{Init, ParticlesOutput, Plan};
use crate::simulation::{Layout, Observation, ResumePoint};
use checkpoint::RangePoint;
use devices::{FailDevice, Group, Outcome};
use manifest::{
    DeviceRecord, InputFile, Manifest, MomentsRecord, ShardRecord, SnapshotRecord, Status, Timings,
};
use progress::{Progress, ProgressMode};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// `--devices`: split the run across these adapters (overrides `adapter`).
    pub devices: Option<Devices>,
    pub progress: ProgressMode,
    pub layout: Layout,
    pub shard: Shard,
    /// Set by a signal handler: checkpoint at the next step boundary and stop.
    pub interrupt: Arc<AtomicBool>,
    /// Also write a checkpoint this often (wall clock) and carry on.
    pub checkpoint_every: Option<Duration>,
    /// Test hook (`FOKKER_TEST_STOP_AT`): interrupt at a chosen stop check.
    pub stop_at: Option<StopAt>,
    /// Test hook (`FOKKER_TEST_FAIL_DEVICE`): a device fails mid-run.
    pub fail_device: Option<FailDevice>,
    /// Observers of the run (the Python package's callbacks).
    pub hooks: Option<Hooks>,
}

/// Observers of a run (the Python package's callbacks and signal checks): told of progress
/// and of every snapshot written, and polled at every stop check. None of it changes the
/// results; a hook that wants the run to stop raises [`RunOptions::interrupt`], and the run
/// then checkpoints and ends `interrupted` exactly as on SIGINT.
pub trait RunHooks: Send + Sync {
    /// After a block of steps: the step reached, the steps in all and the time.
    fn progress(&self, _step: u64, _steps: u64, _time: f64) {}
    /// After a snapshot's files, metrics.csv and the manifest are written.
    fn snapshot(&self, _record: &SnapshotRecord) {}
    /// At every stop check (submission boundaries).
    fn poll(&self) {}
}

/// [`RunHooks`] shared with the run.
#[derive(Clone)]
pub struct Hooks(pub Arc<dyn RunHooks>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks(..)")
    }
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

/// The scenario text a run stores beside its manifest ([`Resolved::text`]).
pub const SCENARIO: &str = "scenario.toml";

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
    let gpus = open_devices(opts)?;
    let (first, particles) = shard.range(plan.particles.count);
    let ranges = devices::split(first, particles, gpus.len() as u64);
    check_split(plan, &gpus, particles)?;
    for (i, &(_, n)) in ranges.iter().enumerate() {
        check_memory(plan, n, &gpus[i])?;
    }
    output::prepare_run_dir(&opts.out, opts.force)?;
    if let Some(text) = &resolved.text {
        output::write_atomic(&opts.out.join(SCENARIO), text.as_bytes())?;
    }
    // Arrays given in place of files go into the run directory, where the plan says they are.
    for (path, table) in &resolved.arrays {
        output::write_atomic(
            path,
            &output::npy_f32(&[table.rows, table.dim], &table.values)?,
        )?;
    }
    let mut manifest = Manifest {
        status: Status::Running,
        fokker_version: manifest::VERSION.into(),
        git_revision: manifest::GIT_REVISION.into(),
        name: plan.name.clone(),
        seed: plan.seed,
        adapter: gpus[0].adapter.clone(),
        devices: device_records(&gpus, &ranges),
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
    let result = Group::new(
        &gpus,
        plan,
        resolved.samples.as_ref(),
        resolved.data.as_ref(),
        &ranges,
        &opts.layout,
    )
    .and_then(|mut group| {
        group.fail = opts.fail_device;
        manifest.timings.init_seconds = started.elapsed().as_secs_f64();
        manifest.mmd_bandwidth = group.parts[0].sim.mmd_bandwidth();
        execute(&mut group, opts, &mut manifest, &mut diagnostics)
    });
    finish(&gpus, opts, manifest, started, result)
}

/// The devices of a run: one per `--devices` entry, else the `--adapter` one.
fn open_devices(opts: &RunOptions) -> Result<Vec<Gpu>> {
    match &opts.devices {
        Some(devices) => crate::gpu::open_devices(devices),
        None => Ok(vec![Gpu::open(&opts.adapter)?]),
    }
}

/// Refuses to split what cannot be split across `gpus`: coupled dynamics, walls and
/// first-passage bookkeeping, or fewer particles than devices.
fn check_split(plan: &Plan, gpus: &[Gpu], particles: u64) -> Result<()> {
    let n = gpus.len() as u64;
    if n < 2 {
        return Ok(());
    }
    let (key, value, allowed) = if !plan.boundary.is_empty() {
        (
            "boundary",
            "walls, first-passage targets or basins".to_string(),
            format!(
                "one device: runs with [boundary], [[observe.first_passage]] or \
                 [[observe.basins]] keep per-particle tags that are not split across devices \
                 yet (--devices named {n}); run it with --adapter, or shard it"
            ),
        )
    } else if plan.dynamics.couples_particles() {
        (
            "dynamics.kind",
            plan.dynamics.kind_name().to_string(),
            format!(
                "one device: {} couples every particle to the whole ensemble at each step, so \
                 it is not split across devices (--devices named {n}); run it with --adapter",
                plan.dynamics.kind_name()
            ),
        )
    } else if particles < n {
        (
            "particles.count",
            particles.to_string(),
            format!("at least the number of devices {n} (every device needs a particle)"),
        )
    } else {
        return Ok(());
    };
    Err(Error::Scenario {
        source_name: "command line".into(),
        issues: vec![crate::error::ScenarioIssue {
            key: key.into(),
            value,
            allowed,
        }],
    })
}

/// The manifest's `devices`: each range and its adapter (none for one range).
fn device_records(gpus: &[Gpu], ranges: &[(u64, u64)]) -> Vec<DeviceRecord> {
    if ranges.len() < 2 {
        return Vec::new();
    }
    ranges
        .iter()
        .enumerate()
        .map(|(i, &(first, particles))| DeviceRecord {
            first,
            particles,
            adapter: gpus[i % gpus.len()].adapter.clone(),
        })
        .collect()
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
    let gpus = open_devices(opts)?;
    let ranges: Vec<(u64, u64)> = saved
        .ranges
        .iter()
        .map(|r| (r.first, r.particles))
        .collect();
    manifest.status = Status::Running;
    manifest.error = None;
    manifest.adapter = gpus[0].adapter.clone();
    manifest.devices = device_records(&gpus, &ranges);
    write_manifest(dir, &manifest)?;
    let opts = RunOptions {
        out: dir.to_path_buf(),
        ..opts.clone()
    };
    let result = Group::new(
        &gpus,
        plan,
        resolved.samples.as_ref(),
        resolved.data.as_ref(),
        &ranges,
        &opts.layout,
    )
    .and_then(|mut group| {
        let d = plan.particles.dim as usize;
        let run_first = saved.ranges[0].first;
        for (part, range) in group.parts.iter_mut().zip(&saved.ranges) {
            // A restarted range keeps its fresh initial state at step 0.
            if range.restart {
                continue;
            }
            let rows = (range.first - run_first) as usize * d
                ..(range.first - run_first + range.particles) as usize * d;
            let extra = saved.extra.as_ref().map(|e| &e[rows.clone()]);
            part.sim
                .restore(&saved.positions[rows], extra, range.point)?;
            if let Some(count) = range.accepted {
                part.sim.set_accepted(count);
            }
        }
        // Walls, targets and basins run on one device (`check_split`): absorbed particles
        // stay absorbed, windings, passages and transition counts carry on.
        if let [part] = group.parts.as_mut_slice() {
            if !saved.bounds.tags.is_empty() || part.sim.ensemble.tag_stride > 0 {
                part.sim.restore_tags(&saved.bounds.tags)?;
            }
            if let Some(t) = &saved.bounds.transitions {
                part.sim.set_transitions(t);
            }
        }
        if let Some(last) = manifest.snapshots.last() {
            group.set_center(&last.moments.mean);
        }
        group.written = manifest.snapshots.iter().map(|s| s.step).collect();
        group.fail = opts.fail_device;
        execute(&mut group, &opts, &mut manifest, &mut diagnostics)
    });
    finish(&gpus, &opts, manifest, started, result)
}

fn finish(
    gpus: &[Gpu],
    opts: &RunOptions,
    mut manifest: Manifest,
    started: Instant,
    result: Result<()>,
) -> Result<RunReport> {
    manifest.timings.wall_seconds += started.elapsed().as_secs_f64();
    // This process's GPU time (summed over the devices of a `--devices` run), added to what
    // earlier processes of a resumed run recorded.
    for g in gpus
        .iter()
        .filter_map(|gpu| gpu.gpu_seconds().ok().flatten())
    {
        let t = &mut manifest.timings;
        t.gpu_stepping_seconds = Some(t.gpu_stepping_seconds.unwrap_or(0.0) + g.stepping);
        t.gpu_observe_seconds = Some(t.gpu_observe_seconds.unwrap_or(0.0) + g.observing);
    }
    // Every snapshot file on disk before the manifest says how the run ended.
    let result = result.and_then(|()| output::sync_deferred());
    match result {
        Ok(()) => {
            manifest.status = Status::Complete;
            checkpoint::remove(&opts.out)?;
            write_manifest(&opts.out, &manifest)?;
            report::write_report(&opts.out)?;
            Ok(RunReport {
                out: opts.out.clone(),
                snapshots: manifest.snapshots.len(),
                timings: manifest.timings,
                adapter: gpus
                    .iter()
                    .map(|g| format!("{} ({})", g.adapter.name, g.adapter.backend))
                    .collect::<Vec<_>>()
                    .join(" + "),
            })
        }
        Err(e) => {
            manifest.status = match e {
                Error::Diverged { .. } => Status::Diverged,
                Error::Interrupted { .. } | Error::DeviceFailed { .. } => Status::Interrupted,
                _ => Status::Failed,
            };
            manifest.error = Some(e.to_string());
            // The original error matters more than a failure to record it.
            let _ = output::sync_deferred();
            let _ = write_records(&opts.out, &manifest)
                .and_then(|()| report::write_report(&opts.out).map(drop));
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

/// How often at most a run rewrites metrics.csv and manifest.json between snapshots.
const RECORD_EVERY: Duration = Duration::from_secs(1);

/// metrics.csv and manifest.json as the manifest holds them now.
fn write_records(out: &Path, manifest: &Manifest) -> Result<()> {
    write_metrics(out, &manifest.plan, &manifest.snapshots)?;
    write_manifest(out, manifest)
}

/// [`write_records`] once every snapshot handed to `writer` is written (the manifest lists
/// written files only).
fn flush_records(
    writer: &mut writer::SnapshotWriter,
    out: &Path,
    manifest: &Manifest,
) -> Result<()> {
    writer.flush()?;
    write_records(out, manifest)
}

pub fn write_manifest(out: &Path, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Output(format!("cannot serialise the manifest: {e}")))?;
    output::write_atomic(&out.join("manifest.json"), &json)
}

/// Checkpoints every range of `group`, after the snapshots and records written so far (so a
/// checkpoint never runs ahead of the snapshots the manifest lists). The ranges of the
/// `failed` parts (whose state is unusable) are taken from the checkpoint on disk where it
/// holds them, else marked to restart from their initial state.
fn save_checkpoint(
    out: &Path,
    group: &mut Group,
    failed: &[usize],
    manifest: &Manifest,
    writer: &mut writer::SnapshotWriter,
) -> Result<()> {
    flush_records(writer, out, manifest)?;
    // The snapshots before the checkpoint are on disk before it is.
    output::sync_deferred()?;
    let previous = if failed.is_empty() {
        None
    } else {
        checkpoint::read(out, manifest).ok()
    };
    let d = manifest.plan.particles.dim as usize;
    let with_extra = group.parts.iter().any(|p| p.sim.has_extra_state());
    let counts_accepted = manifest.plan.dynamics.metropolis_adjusted();
    let points = group.resume_points();
    let states = group.states(failed)?;
    let (mut positions, mut extra, mut ranges) = (Vec::new(), Vec::new(), Vec::new());
    for (i, state) in states.into_iter().enumerate() {
        let (first, particles) = (group.parts[i].first, group.parts[i].count);
        let rows = particles as usize * d;
        if let Some((p, e, accepted)) = state {
            positions.extend(p);
            extra.extend(e.unwrap_or_default());
            ranges.push(RangePoint {
                first,
                particles,
                point: points[i],
                accepted,
                restart: false,
            });
            continue;
        }
        let kept = previous.as_ref().and_then(|prev| {
            let r = prev
                .ranges
                .iter()
                .find(|r| r.first == first && r.particles == particles && !r.restart)?;
            let at = (first - prev.ranges[0].first) as usize * d;
            let e = match &prev.extra {
                Some(e) => e[at..at + rows].to_vec(),
                None => Vec::new(),
            };
            Some((prev.positions[at..at + rows].to_vec(), e, r.clone()))
        });
        let (p, e, range) = kept.unwrap_or_else(|| {
            let zeros = vec![0f32; rows];
            let e = if with_extra {
                zeros.clone()
            } else {
                Vec::new()
            };
            let range = RangePoint {
                first,
                particles,
                point: ResumePoint {
                    step: 0,
                    pending: None,
                },
                accepted: counts_accepted.then_some(0),
                restart: true,
            };
            (zeros, e, range)
        });
        positions.extend(p);
        extra.extend(e);
        ranges.push(range);
    }
    let extra = with_extra.then_some(extra.as_slice());
    // Walls, targets and basins run on one device (`check_split`).
    let bounds = match group.parts.as_slice() {
        [part] => checkpoint::BoundaryState {
            tags: part.sim.tags()?,
            transitions: part.sim.transitions()?,
        },
        _ => checkpoint::BoundaryState::default(),
    };
    checkpoint::write(out, &positions, extra, &bounds, &ranges, manifest)
}

/// Steps to the snapshots not yet written, writing each; checkpoints and stops when
/// `opts.interrupt` is raised.
fn execute(
    group: &mut Group,
    opts: &RunOptions,
    manifest: &mut Manifest,
    diagnostics: &mut reference::Diagnostics,
) -> Result<()> {
    let plan = manifest.plan.clone();
    let out = opts.out.as_path();
    let count = group.count();
    let total_steps = plan.dynamics.steps();
    let progress = Mutex::new(Progress::new(opts.progress, total_steps, count));
    let with_progress = |f: &mut dyn FnMut(&mut Progress)| {
        if let Ok(mut p) = progress.lock() {
            f(&mut p);
        }
    };
    let written = manifest.snapshots.last().map(|s| s.step);
    let remaining: Vec<u64> = plan
        .output
        .snapshot_steps(total_steps)
        .into_iter()
        .filter(|&s| written.is_none_or(|w| s > w))
        .collect();
    // Shared by the devices' threads (src/run/devices.rs).
    let last_checkpoint = Mutex::new(Instant::now());
    let checks = AtomicU64::new(0);
    let stop = || {
        if let Some(h) = &opts.hooks {
            h.0.poll();
        }
        if let Some(hook) = opts.stop_at
            && checks.fetch_add(1, Ordering::SeqCst) + 1 == hook.at
        {
            hook.reached(&opts.interrupt);
        }
        opts.interrupt.load(Ordering::SeqCst)
            || opts
                .checkpoint_every
                .is_some_and(|every| last_checkpoint.lock().is_ok_and(|at| at.elapsed() >= every))
    };
    let mut last_record = Instant::now();
    let mut snapshot_writer =
        writer::SnapshotWriter::new(out.to_path_buf(), Arc::new(plan.clone()));
    let result = (|| {
        for target in remaining {
            // An interrupt that came while a snapshot was written (or from a snapshot hook)
            // ends the run here, at the snapshot boundary, before stepping on.
            if let Some(h) = &opts.hooks {
                h.0.poll();
            }
            if opts.interrupt.load(Ordering::SeqCst) {
                save_checkpoint(out, group, &[], manifest, &mut snapshot_writer)?;
                return Err(Error::Interrupted {
                    step: group.step(),
                    dir: out.display().to_string(),
                });
            }
            // Until the snapshot step; a periodic checkpoint stops and goes on, a signal ends.
            loop {
                let t0 = Instant::now();
                let advanced = group.advance_to(
                    target,
                    &|step| {
                        let time = plan.dynamics.time_at(step);
                        with_progress(&mut |p| p.step(step, time));
                        if let Some(h) = &opts.hooks {
                            h.0.progress(step, total_steps, time);
                        }
                    },
                    &stop,
                );
                manifest.timings.stepping_seconds += t0.elapsed().as_secs_f64();
                manifest.timings.particle_steps_per_second = count as f64 * group.step() as f64
                    / manifest.timings.stepping_seconds.max(1e-9);
                manifest.timings.interactions_per_second = plan
                    .dynamics
                    .interactions_per_particle_step(plan.particles.count)
                    .map(|k| k * manifest.timings.particle_steps_per_second);
                let failed = match advanced? {
                    Outcome::Reached => break,
                    Outcome::Stopped => None,
                    Outcome::Failed { parts, error } => Some((parts, error)),
                };
                let failed_parts = failed.as_ref().map_or(&[][..], |f| &f.0);
                save_checkpoint(out, group, failed_parts, manifest, &mut snapshot_writer)?;
                if let Ok(mut at) = last_checkpoint.lock() {
                    *at = Instant::now();
                }
                if let Some((parts, error)) = failed {
                    return Err(Error::DeviceFailed {
                        message: format!(
                            "device {} of {} failed: {error}",
                            parts[0],
                            group.parts.len()
                        ),
                        dir: out.display().to_string(),
                    });
                }
                if opts.interrupt.load(Ordering::SeqCst) {
                    return Err(Error::Interrupted {
                        step: group.step(),
                        dir: out.display().to_string(),
                    });
                }
            }
            let t1 = Instant::now();
            let obs = group.observe()?;
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
                let (p, v) = group.particles()?;
                (Some(p), v)
            } else {
                (None, None)
            };
            let mut record =
                snapshot_record(&plan, &obs, positions.is_some(), velocities.is_some());
            let files = writer::SnapshotFiles {
                step: obs.step,
                time: obs.time,
                counts: obs.histogram.counts.clone(),
                positions,
                velocities,
            };
            snapshot_writer.write(files, out, &plan)?;
            if let Some(accepted) = obs.accepted {
                let since = manifest.snapshots.last().map(|s| s.step);
                record.accepted = Some(accepted);
                record.acceptance_rate = acceptance_rate(accepted, count, since, obs.step);
            }
            let t3 = Instant::now();
            diagnostics.write(out, &plan, &obs, &mut record)?;
            manifest.timings.reference_seconds += t3.elapsed().as_secs_f64();
            with_progress(&mut |p| p.snapshot(obs.step, obs.time, &record.density));
            manifest.snapshots.push(record);
            // Both files are rewritten whole, so with snapshots every few steps writing them
            // each time would cost time quadratic in the snapshots: at most once per
            // RECORD_EVERY, at the last snapshot, before every checkpoint (so a checkpoint
            // never runs ahead of the snapshots the manifest lists) and at every snapshot of
            // a run with hooks (Python callbacks may read the directory).
            if opts.hooks.is_some()
                || target == total_steps
                || last_record.elapsed() >= RECORD_EVERY
            {
                flush_records(&mut snapshot_writer, out, manifest)?;
                last_record = Instant::now();
            }
            manifest.timings.write_seconds += t2.elapsed().as_secs_f64();
            if let (Some(h), Some(record)) = (&opts.hooks, manifest.snapshots.last()) {
                h.0.snapshot(record);
            }
        }
        // The GIF and the trajectories read the snapshot files back.
        snapshot_writer.flush()?;
        if plan.output.gif {
            manifest.gif = Some(write_gif(out, &plan, &manifest.snapshots)?);
        }
        if manifest.shard.is_none_or(|s| s.first == 0) {
            manifest.trajectories = write_trajectories(out, &plan, &manifest.snapshots)?;
        }
        manifest.plots = reference::write_plots(out, &plan, &manifest.snapshots)?;
        manifest.mmd_plot = mmd_plot::write_mmd_plot(out, &plan, &manifest.snapshots)?;
        // Walls, targets and basins run on one device (`check_split`).
        if let [part] = group.parts.as_slice() {
            let sim = &part.sim;
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
            manifest.first_passage = passage::write_final(out, &plan, arrays, &manifest.snapshots)?
                .map(|mut r| {
                    r.escape_rate_reference = diagnostics.escape_rate();
                    r
                });
        }
        Ok(())
    })();
    with_progress(&mut |p| {
        p.finish(match &result {
            Ok(()) => "complete",
            Err(Error::Interrupted { .. } | Error::DeviceFailed { .. }) => "interrupted",
            Err(_) => "stopped",
        })
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
    let (density, heatmap) = density_paths(step);
    let shape: Vec<usize> = spec.bins.iter().map(|&b| b as usize).collect();
    output::write_atomic_deferred(&out.join(&density), &output::npy_u64(&shape, counts)?)?;
    let png = output::render_density_png(
        counts,
        spec,
        &plan.output.heatmap,
        &title(plan, step, time),
        &axis_names(plan),
    )?;
    output::write_atomic_deferred(&out.join(&heatmap), &png)?;
    Ok((density, heatmap))
}

/// The density array's and heatmap's paths of the snapshot at `step`, relative to the run
/// directory.
fn density_paths(step: u64) -> (String, String) {
    let name = snapshot_name(step);
    (format!("density/{name}.npy"), format!("density/{name}.png"))
}

/// `folder/NNNNNNNN.npy`, the rows of the snapshot at `step`.
fn rows_path(folder: &str, step: u64) -> String {
    format!("{folder}/{}.npy", snapshot_name(step))
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
    let rel = rows_path(folder, step);
    let d = plan.particles.dim as usize;
    output::write_atomic_deferred(
        &out.join(&rel),
        &output::npy_f32(&[values.len() / d, d], values)?,
    )?;
    Ok(rel)
}

/// The manifest's record of the snapshot `obs` (its files written by `writer::SnapshotFiles`,
/// with particles and velocities when `particles` / `velocities`).
fn snapshot_record(
    plan: &Plan,
    obs: &Observation,
    particles: bool,
    velocities: bool,
) -> SnapshotRecord {
    let spec = &plan.output.histogram;
    let (density, heatmap) = density_paths(obs.step);
    // The end-of-step velocities go beside the positions.
    let particles = particles.then(|| rows_path("particles", obs.step));
    let velocities = (particles.is_some() && velocities).then(|| rows_path("velocities", obs.step));
    SnapshotRecord {
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
    }
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
