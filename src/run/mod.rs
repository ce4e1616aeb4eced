//! `fokker run`: a resolved scenario in, a self-describing run directory out.

pub mod manifest;
pub mod progress;

use crate::error::{Error, Result};
use crate::gpu::{AdapterChoice, Gpu};
use crate::output::{self, MetricsRow};
use crate::scenario::parse::Resolved;
use crate::scenario::{Init, ParticlesOutput, Plan};
use crate::simulation::{Layout, Observation, Simulation};
use manifest::{HistogramRecord, InputFile, Manifest, SnapshotRecord, Status, Timings};
use progress::{Progress, ProgressMode};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to run, beyond the plan: none of it changes the results.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out: PathBuf,
    pub force: bool,
    pub adapter: AdapterChoice,
    pub progress: ProgressMode,
    pub layout: Layout,
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
    match &plan.particles.init {
        Init::Samples { path, sha256, .. } => vec![InputFile {
            path: path.display().to_string(),
            sha256: sha256.clone(),
        }],
        _ => Vec::new(),
    }
}

/// Bytes of device memory the plan needs: state, histogram bins and moment partials.
pub fn device_bytes(plan: &Plan) -> u64 {
    let p = &plan.particles;
    let state = p.count * u64::from(p.dim) * 4;
    let bins = (plan.output.histogram.total_bins() as u64 + 6) * 4;
    let d = u64::from(p.dim);
    let partials = p.count.div_ceil(16 * 64) * (d + d * (d + 1) / 2 + 1) * 4;
    state + bins + partials
}

/// Peak host memory for outputs: a particle snapshot (f32) when particles are written.
pub fn host_bytes(plan: &Plan) -> u64 {
    let p = &plan.particles;
    let particles = if plan.output.particles == ParticlesOutput::None {
        0
    } else {
        2 * p.count * u64::from(p.dim) * 4
    };
    particles + plan.output.histogram.total_bins() as u64 * 8 * 2
}

/// Opens the adapter, runs the plan and writes `opts.out`. On failure after the directory
/// was made, the manifest records `failed` or `diverged` and the error is returned.
pub fn run(resolved: &Resolved, opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    let gpu = Gpu::open(&opts.adapter)?;
    output::prepare_run_dir(&opts.out, opts.force)?;
    let plan = &resolved.plan;
    let mut manifest = Manifest {
        status: Status::Running,
        fokker_version: manifest::VERSION.into(),
        git_revision: manifest::GIT_REVISION.into(),
        name: plan.name.clone(),
        seed: plan.seed,
        adapter: gpu.adapter.clone(),
        plan_hash: resolved.hash.clone(),
        plan: plan.clone(),
        inputs: input_files(plan),
        timings: Timings::default(),
        snapshots: Vec::new(),
        metrics: "metrics.csv".into(),
        gif: None,
        error: None,
    };
    write_manifest(&opts.out, &manifest)?;
    let mut writer = RunWriter {
        out: &opts.out,
        plan,
        metrics: Vec::new(),
        frames: Vec::new(),
    };
    let result = execute(&gpu, resolved, opts, &mut manifest, &mut writer, started);
    manifest.timings.wall_seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            manifest.status = Status::Complete;
            write_manifest(&opts.out, &manifest)?;
            Ok(RunReport {
                out: opts.out.clone(),
                snapshots: manifest.snapshots.len(),
                timings: manifest.timings,
                adapter: format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
            })
        }
        Err(e) => {
            manifest.status = if matches!(e, Error::Diverged { .. }) {
                Status::Diverged
            } else {
                Status::Failed
            };
            manifest.error = Some(e.to_string());
            // The original error matters more than a failure to record it.
            let _ = write_manifest(&opts.out, &manifest);
            Err(e)
        }
    }
}

fn write_manifest(out: &Path, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Output(format!("cannot serialise the manifest: {e}")))?;
    output::write_atomic(&out.join("manifest.json"), &json)
}

fn execute(
    gpu: &Gpu,
    resolved: &Resolved,
    opts: &RunOptions,
    manifest: &mut Manifest,
    writer: &mut RunWriter,
    started: Instant,
) -> Result<()> {
    let plan = &resolved.plan;
    let count = plan.particles.count;
    let total_steps = plan.dynamics.steps();
    let mut sim = Simulation::new(gpu, plan, resolved.samples.as_ref(), 0, count, &opts.layout)?;
    manifest.timings.init_seconds = started.elapsed().as_secs_f64();
    let mut progress = Progress::new(opts.progress, total_steps, count);
    let snapshots = plan.output.snapshot_steps(total_steps);
    let result = (|| {
        for &target in &snapshots {
            let t0 = Instant::now();
            sim.advance_to(target, |step| {
                progress.step(step, plan.dynamics.time_at(step));
                Ok(())
            })?;
            manifest.timings.stepping_seconds += t0.elapsed().as_secs_f64();
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
            let positions = if write_particles {
                Some(sim.positions()?)
            } else {
                None
            };
            let record = writer.snapshot(&obs, positions.as_deref())?;
            progress.snapshot(obs.step, obs.time, &record.density);
            manifest.snapshots.push(record);
            manifest.timings.particle_steps_per_second =
                count as f64 * sim.step() as f64 / manifest.timings.stepping_seconds.max(1e-9);
            write_manifest(writer.out, manifest)?;
            manifest.timings.write_seconds += t2.elapsed().as_secs_f64();
        }
        if plan.output.gif {
            manifest.gif = Some(writer.gif()?);
        }
        Ok(())
    })();
    progress.finish(if result.is_ok() {
        "complete"
    } else {
        "stopped"
    });
    result
}

/// Writes each snapshot's files as it is observed.
struct RunWriter<'a> {
    out: &'a Path,
    plan: &'a Plan,
    metrics: Vec<MetricsRow>,
    frames: Vec<image::RgbImage>,
}

impl RunWriter<'_> {
    fn snapshot(&mut self, obs: &Observation, positions: Option<&[f32]>) -> Result<SnapshotRecord> {
        let spec = &self.plan.output.histogram;
        let name = snapshot_name(obs.step);
        let density = format!("density/{name}.npy");
        let heatmap = format!("density/{name}.png");
        let shape: Vec<usize> = spec.bins.iter().map(|&b| b as usize).collect();
        output::write_atomic(
            &self.out.join(&density),
            &output::npy_u64(&shape, &obs.histogram.counts)?,
        )?;
        let axis_names: Vec<String> = spec.axes.iter().map(|a| format!("x{a}")).collect();
        let title = match &self.plan.name {
            Some(n) => format!("{n}   t = {:.4}   step {}", obs.time, obs.step),
            None => format!("t = {:.4}   step {}", obs.time, obs.step),
        };
        let image = output::render_density_image(
            &obs.histogram.counts,
            spec,
            &self.plan.output.heatmap,
            &title,
            &axis_names,
        )?;
        output::write_atomic(&self.out.join(&heatmap), &output::png_bytes(&image)?)?;
        if self.plan.output.gif {
            self.frames.push(image);
        }
        let particles = match positions {
            Some(p) => {
                let rel = format!("particles/{name}.npy");
                let d = self.plan.particles.dim as usize;
                output::write_atomic(
                    &self.out.join(&rel),
                    &output::npy_f32(&[p.len() / d, d], p)?,
                )?;
                Some(rel)
            }
            None => None,
        };
        self.metrics.push(MetricsRow {
            step: obs.step,
            time: obs.time,
            mean: obs.moments.mean.clone(),
            cov: obs.moments.cov.clone(),
        });
        output::write_atomic(
            &self.out.join("metrics.csv"),
            output::metrics_csv(self.plan.particles.dim as usize, &self.metrics).as_bytes(),
        )?;
        let h = &obs.histogram;
        Ok(SnapshotRecord {
            step: obs.step,
            time: obs.time,
            density,
            heatmap,
            particles,
            histogram: HistogramRecord {
                axes: spec.axes.clone(),
                bins: spec.bins.clone(),
                range: spec.range.clone(),
                in_range: h.in_range(),
                outside: h.outside,
                nonfinite: h.nonfinite,
                below: h.below.clone(),
                above: h.above.clone(),
            },
        })
    }

    fn gif(&mut self) -> Result<String> {
        let bytes = output::encode_gif(&self.frames, 200)?;
        output::write_atomic(&self.out.join("density.gif"), &bytes)?;
        self.frames.clear();
        Ok("density.gif".into())
    }
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
