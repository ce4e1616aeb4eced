//! Kernel flows and mean-field interacting particles: every step couples each particle to
//! the whole ensemble through the shared Gaussian-kernel sum (src/dynamics/kernel_sum.rs),
//! with per-particle stages in shaders/kernel_flows.wgsl. CPU twins in f64 below:
//! [`sd_flow_cpu`], [`mmd_flow_cpu`], [`svgd_cpu`], [`interaction_cpu`].
//!
//! - `sd_flow`, score-difference flow, kernel form (Weber, TMLR 2023):
//!   z = y + sigma eps, y <- y + eta (D_p(z) - D_q(z)) with Gaussian-kernel denoisers
//!   D(z) = sum_j K(z, x_j) x_j / sum_j K(z, x_j) over the target samples (D_p) and the
//!   current clean particles (D_q; the approximate variant takes D_q(z) ~ y): an Euler step
//!   of the flow of the proxies' score difference (D_p - D_q) / sigma^2 applied to the clean
//!   particles.
//! - `mmd_flow` (Arbel et al. 2019), `svgd` (Liu & Wang 2016), `interaction`
//!   (McKean–Vlasov): each kind's module states its update; the shader header spells them out.

use super::kernel_sum::{KernelSum, KernelSumArgs, pair_sum_cpu};
use super::potential_params::{gpu_potential_params, potential_shader};
use super::{NonfiniteCounter, StateMemory, Stepper, StepperContext};
use crate::error::{Error, Result};
use crate::gpu::abi::{self, KernelFlowStep as StepUniform};
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::expr::PairPotential;
use crate::model::{Mixture, Potential};
use crate::observe::{first_passage, median_bandwidth};
use crate::rng::{self, INIT_CHOICE_BLOCK, STREAM_DYNAMICS, STREAM_PROXY, STREAM_TARGET};
use crate::scenario::data::SampleTable;
use crate::scenario::range::{mixture_box, samples_box};
use crate::scenario::{Interaction, SigmaSchedule, Target};
use crate::shaders;
use crate::simulation::BLOCK_TARGET;
use std::sync::Arc;

/// The variance standing in for an infinitely wide kernel (quadratic W): every weight is
/// exactly 1 in f32 for any distance below 1e6.
const FLAT_VARIANCE: f64 = 1e30;

/// Particles the SVGD median heuristic looks at each step (the first rows; particles are
/// exchangeable).
pub const SVGD_MEDIAN_ROWS: usize = 512;

/// `count` samples of `mixture` from `seed`: row r takes its component from the first word
/// of block [`INIT_CHOICE_BLOCK`] and its normals from blocks 0.. of (r, stream
/// [`STREAM_TARGET`]), so a run's target is reproducible from its manifest.
pub fn mixture_samples(mixture: &Mixture, count: u64, seed: u64) -> SampleTable {
    let key = rng::key_from_seed(seed);
    let d = mixture.dim();
    let mut values = Vec::with_capacity(count as usize * d);
    for r in 0..count {
        let word = rng::philox4x32_10(rng::counter(r, INIT_CHOICE_BLOCK, STREAM_TARGET), key)[0];
        let u = rng::unit_closed_open(word);
        let mut acc = 0.0;
        let mut k = 0;
        while k + 1 < mixture.components() {
            acc += mixture.weights[k];
            if u < acc {
                break;
            }
            k += 1;
        }
        for c in 0..d {
            let z = rng::normal(key, r, STREAM_TARGET, c as u64);
            values.push((mixture.means[k][c] + mixture.stds[k][c] * z) as f32);
        }
    }
    SampleTable {
        rows: count as usize,
        dim: d,
        values,
    }
}

/// The target samples of a kernel flow: the loaded table, or samples of its mixture.
pub fn target_samples(
    target: &Target,
    data: Option<&SampleTable>,
    seed: u64,
) -> Result<SampleTable> {
    match target {
        Target::Samples { path, .. } => data.cloned().ok_or_else(|| Error::Data {
            path: path.clone(),
            reason: "the target samples were not loaded with the plan".into(),
        }),
        Target::Mixture { mixture, count } => Ok(mixture_samples(mixture, *count, seed)),
        Target::Image {
            path,
            sha256,
            range,
            count,
        } => {
            let b = super::image_target::read_brightness(path)?;
            if b.sha256 != *sha256 {
                return Err(Error::Data {
                    path: path.clone(),
                    reason: "this input file changed since the run was planned; restore it or start a new run".into(),
                });
            }
            Ok(super::image_target::image_samples(&b, *range, *count, seed))
        }
    }
}

/// Rows of a kernel flow's target samples.
pub fn target_rows(target: &Target) -> u64 {
    match target {
        Target::Samples { rows, .. } => *rows,
        Target::Mixture { count, .. } | Target::Image { count, .. } => *count,
    }
}

/// Where a kernel flow ends: on its target.
pub(crate) fn target_box(
    target: &Target,
    data: Option<&SampleTable>,
    axis: usize,
) -> Option<[f64; 2]> {
    match target {
        Target::Mixture { mixture, .. } => mixture_box(mixture, axis, 1.0),
        Target::Samples { .. } => samples_box(data?.column_bounds()?.get(axis)?),
        Target::Image { range, .. } => range.get(axis).copied(),
    }
}

/// The data set file of a samples target.
pub(crate) fn target_file(target: &Target) -> Option<(&std::path::Path, &str)> {
    match target {
        Target::Samples { path, sha256, .. } => Some((path, sha256)),
        _ => None,
    }
}

/// Device memory of a kernel flow: its `target_rows` targets and scratch rows (proxy, two
/// halves of means and log sums, score).
pub(crate) fn kernel_flow_memory(target_rows: u64, dim: u64) -> StateMemory {
    StateMemory {
        floats_per_particle: 4 * dim + 2,
        data_rows: target_rows,
    }
}

/// Why kernel flows take no `[boundary]` or first-passage tables.
pub const FLOW_BOUNDARY_REFUSAL: &str = "kernel flows are deterministic generative flows on \
     all of R^d: they transport the particles toward a target distribution in step units, \
     with no temperature or physical time, so a wall, a periodic wrap or a passage time has \
     no meaning for them";

/// The [`super::Dynamics`] methods the kernel flows towards a target share (`sd_flow`,
/// `mmd_flow`, `svgd`; fields `target` and `steps`): step-based time, the whole ensemble in
/// every step (so no sharding), the target's box, memory and input file.
macro_rules! target_flow_dynamics {
    () => {
        fn steps(&self) -> u64 {
            self.steps
        }

        /// Refused, with the reason: [`crate::dynamics::kernel_flows::FLOW_BOUNDARY_REFUSAL`].
        fn boundary_refusal(&self, _: &$crate::scenario::Boundary) -> Option<String> {
            Some($crate::dynamics::kernel_flows::FLOW_BOUNDARY_REFUSAL.to_string())
        }

        /// Step-based: time is the step index.
        fn time_per_step(&self) -> f64 {
            1.0
        }

        fn couples_particles(&self) -> bool {
            true
        }

        /// Kernel flows end on the target.
        fn final_box(
            &self,
            data: Option<&$crate::scenario::data::SampleTable>,
            axis: usize,
        ) -> Option<[f64; 2]> {
            $crate::dynamics::kernel_flows::target_box(&self.target, data, axis)
        }

        fn state_memory(&self, dim: u64) -> $crate::dynamics::StateMemory {
            let rows = $crate::dynamics::kernel_flows::target_rows(&self.target);
            $crate::dynamics::kernel_flows::kernel_flow_memory(rows, dim)
        }

        fn kernel_target(&self) -> Option<&$crate::scenario::Target> {
            Some(&self.target)
        }

        fn input_file(&self) -> Option<(&std::path::Path, &str)> {
            $crate::dynamics::kernel_flows::target_file(&self.target)
        }
    };
}
pub(crate) use target_flow_dynamics;

/// A kernel flow's target samples on the device, uploaded by the kind that owns them.
pub struct TargetRows {
    buffer: wgpu::Buffer,
    rows: u32,
}

impl TargetRows {
    /// Uploads `table` (at most [`crate::scenario::keys`]' 2^26 rows, checked with the
    /// scenario).
    pub fn upload(gpu: &Gpu, table: &SampleTable) -> Self {
        TargetRows {
            buffer: gpu.storage_with("kernel flow targets", bytemuck::cast_slice(&table.values)),
            rows: table.rows as u32,
        }
    }

    fn source(&self) -> (&wgpu::Buffer, u32) {
        (&self.buffer, self.rows)
    }
}

/// Where SD flow takes the target's denoiser D_p from.
pub enum TargetDenoiser {
    /// The Gaussian-kernel weighted mean of the target samples.
    Samples(TargetRows),
    /// A mixture target's exact noised score: D_p(z) = z + sigma^2 grad log p_sigma(z).
    Exact(Mixture),
}

/// Where SVGD takes the target score from.
pub enum SvgdScore {
    /// A mixture target's exact score (the stages' mixture potential).
    Mixture(Mixture),
    /// The Gaussian-kernel-smoothed score of the target samples at bandwidth `bandwidth`.
    Smoothed { targets: TargetRows, bandwidth: f64 },
}

/// Which update the stages apply (`MODE` in the shader), its constants and the target data
/// it reads: built by each kind (src/dynamics/sd_flow.rs and its siblings).
pub enum Update {
    SdFlow {
        sigma: SigmaSchedule,
        eta: f64,
        approximate: bool,
        denoiser: TargetDenoiser,
    },
    MmdFlow {
        eta: f64,
        bandwidth: f64,
        noise: f64,
        targets: TargetRows,
    },
    Svgd {
        eta: f64,
        bandwidth: Option<f64>,
        score: SvgdScore,
    },
    Interaction {
        potential: Potential,
        interaction: Interaction,
        temperature: f64,
        dt: f64,
    },
}

impl Update {
    fn mode(&self) -> u32 {
        match self {
            Update::SdFlow {
                approximate: false, ..
            } => abi::FLOW_SD,
            Update::SdFlow {
                approximate: true, ..
            } => abi::FLOW_SD_APPROXIMATE,
            Update::MmdFlow { .. } => abi::FLOW_MMD,
            Update::Svgd { .. } => abi::FLOW_SVGD,
            Update::Interaction {
                interaction: Interaction::Expr(_),
                ..
            } => abi::FLOW_PAIR,
            Update::Interaction { .. } => abi::FLOW_INTERACTION,
        }
    }

    /// The pair potential written as an expression whose pair sum the step takes.
    fn pair_expr(&self) -> Option<&PairPotential> {
        match self {
            Update::Interaction {
                interaction: Interaction::Expr(w),
                ..
            } => Some(w),
            _ => None,
        }
    }

    /// The potential the stages evaluate: the confinement of interacting particles, a
    /// mixture target's exact score (SVGD; SD flow rewrites it per step's sigma).
    fn potential(&self) -> Option<Potential> {
        match self {
            Update::SdFlow {
                denoiser: TargetDenoiser::Exact(m),
                ..
            }
            | Update::Svgd {
                score: SvgdScore::Mixture(m),
                ..
            } => Some(Potential::Mixture(m.clone())),
            Update::Interaction { potential, .. } => Some(potential.clone()),
            _ => None,
        }
    }

    /// (kappa, variance) of the pair kernel of built-in interactions: W's gradient is
    /// kappa (x_i - x_j) k(x_i - x_j) with a Gaussian k of this variance; None for an
    /// expression (a pair sum).
    fn pair(interaction: &Interaction) -> Option<(f64, f64)> {
        match *interaction {
            Interaction::Gaussian { strength, width } => {
                Some((-strength / (width * width), width * width))
            }
            Interaction::Quadratic { strength } => Some((strength, FLAT_VARIANCE)),
            Interaction::Expr(_) => None,
        }
    }

    /// Quadratic W: a flat kernel, the same sum for every particle (computed once).
    fn shared_sum(&self) -> bool {
        matches!(
            self,
            Update::Interaction {
                interaction: Interaction::Quadratic { .. },
                ..
            }
        )
    }
}

/// The mixture convolved with N(0, sigma^2 I): every variance grows by sigma^2.
pub fn noised_mixture(m: &Mixture, sigma: f64) -> Mixture {
    Mixture {
        weights: m.weights.clone(),
        means: m.means.clone(),
        stds: m
            .stds
            .iter()
            .map(|s| s.iter().map(|v| (v * v + sigma * sigma).sqrt()).collect())
            .collect(),
    }
}

/// Silverman's rule of thumb for the kernel-smoothed target score:
/// eps = mean coordinate std * (4 / ((d + 2) M))^(1 / (d + 4)).
pub fn silverman_bandwidth(targets: &SampleTable) -> f64 {
    let (m, d) = (targets.rows as f64, targets.dim);
    let mut total = 0.0;
    for c in 0..d {
        let col = (0..targets.rows).map(|r| f64::from(targets.values[r * d + c]));
        let mean = col.clone().sum::<f64>() / m;
        total += (col.map(|v| (v - mean).powi(2)).sum::<f64>() / m).sqrt();
    }
    let std = (total / d as f64).max(1e-6);
    std * (4.0 / ((d as f64 + 2.0) * m)).powf(1.0 / (d as f64 + 4.0))
}

/// SVGD's h = med^2 / log N from rows of the particles (N >= 2).
pub fn svgd_bandwidth(rows: &[f32], dim: usize, particles: u64) -> f64 {
    let table = SampleTable {
        rows: rows.len() / dim,
        dim,
        values: rows.to_vec(),
    };
    let med = median_bandwidth(&table);
    (med * med / (particles.max(2) as f64).ln()).max(1e-12)
}

/// A kernel flow or interacting-particle system bound to an ensemble held in one chunk
/// (every step couples all particles).
pub struct KernelFlowGpu {
    flow: Update,
    kernel: KernelSum,
    pre: Arc<Kernel>,
    post: Arc<Kernel>,
    step: wgpu::Buffer,
    pre_bind: wgpu::BindGroup,
    post_bind: wgpu::BindGroup,
    potential_params: wgpu::Buffer,
    proxy: wgpu::Buffer,
    /// Rows [0, N): the step's first kernel sum; [N, 2N): its second.
    means: wgpu::Buffer,
    logs: wgpu::Buffer,
    score: wgpu::Buffer,
    steps: u64,
    key: [u32; 2],
    dim: u32,
    /// [0] the non-finite count; basin counters from `BASIN_COUNTERS` (`counter_words`).
    nonfinite: NonfiniteCounter,
    counter_words: u64,
    /// Quadratic W without periodic axes: one shared sum (the ensemble mean) per step.
    shared_sum: bool,
    /// Kernel interactions per submission: about [`BLOCK_TARGET`] of work.
    budget: f64,
}

/// Commands of one step, submitted whenever about `budget` interactions are recorded, so no
/// more than about [`BLOCK_TARGET`] of work is queued and a signal is answered between two.
struct Batch<'a> {
    gpu: &'a Gpu,
    encoder: wgpu::CommandEncoder,
    work: f64,
    budget: f64,
    stop: &'a dyn Fn() -> bool,
}

impl<'a> Batch<'a> {
    fn new(gpu: &'a Gpu, budget: f64, stop: &'a dyn Fn() -> bool) -> Self {
        Batch {
            gpu,
            encoder: gpu.device.create_command_encoder(&Default::default()),
            work: 0.0,
            budget,
            stop,
        }
    }

    /// Counts `interactions` just recorded; past the budget, submits, waits and asks `stop`
    /// (false: stop).
    fn recorded(&mut self, interactions: f64) -> Result<bool> {
        self.work += interactions;
        if self.work < self.budget {
            return Ok(true);
        }
        let full = std::mem::replace(
            &mut self.encoder,
            self.gpu.device.create_command_encoder(&Default::default()),
        );
        self.gpu.submit(full, Work::Stepping);
        self.work = 0.0;
        self.gpu.wait()?;
        Ok(!(self.stop)())
    }

    fn finish(self) {
        self.gpu.submit(self.encoder, Work::Stepping);
    }
}

/// Records `encode(batch, first, count)` for slices of `n` queries of about a submission's
/// work each (`m` sources per query); `Ok(false)` when the batch was told to stop.
fn sliced(
    batch: &mut Batch<'_>,
    n: u32,
    m: u32,
    mut encode: impl FnMut(&mut Batch<'_>, u32, u32) -> Result<()>,
) -> Result<bool> {
    let m = f64::from(m.max(1));
    let per = ((batch.budget / m) as u32).div_ceil(256).max(1) * 256;
    let mut q0 = 0;
    while q0 < n {
        let len = per.min(n - q0);
        encode(batch, q0, len)?;
        if !batch.recorded(f64::from(len) * m)? {
            return Ok(false);
        }
        q0 += len;
    }
    Ok(true)
}

impl KernelFlowGpu {
    /// The stepper of kind `name` applying `flow` for `steps` steps.
    pub fn new(cx: &StepperContext<'_>, name: &str, flow: Update, steps: u64) -> Result<Self> {
        let (gpu, ensemble, workgroup_size) = (cx.gpu, cx.ensemble, cx.workgroup_size);
        let dim = ensemble.dim;
        let [chunk] = ensemble.chunks.as_slice() else {
            return Err(Error::Device(format!(
                "{name} couples every particle to the whole ensemble: {} particles of dimension \
                 {dim} must fit one storage binding of {}",
                ensemble.count, gpu.adapter.name
            )));
        };
        let potential = flow.potential().unwrap_or(Potential::DoubleWell);
        let shader = potential_shader(shaders::KERNEL_FLOWS, &potential, None)
            .map_err(|why| Error::Device(format!("the {name} shader did not compose: {why}")))?;
        let potential_kind = shader.kind;
        let potential_params = gpu.storage_with(
            "kernel flow potential",
            bytemuck::cast_slice(&shader.params),
        );
        // Walls, periodic axes and targets: interacting particles only (the other kinds
        // refuse them); on periodic axes the sums take the minimum image.
        let boundary = cx.boundary;
        let periods = first_passage::periods(boundary, dim);
        let periodic = periods.iter().any(|&l| l > 0.0);
        let kernel = match flow {
            Update::Interaction { .. } => KernelSum::for_interaction(
                gpu,
                dim,
                workgroup_size.min(256),
                flow.pair_expr(),
                &periods,
            )?,
            _ => KernelSum::new(gpu, dim, workgroup_size.min(256))?,
        };
        // Minimum images differ per particle: no shared sum then.
        let shared_sum = flow.shared_sum() && !periodic;
        let walls = first_passage::overrides(boundary, ensemble.tag_stride);
        let stage = |s: u32| {
            let mut constants = vec![
                ("DIM", f64::from(dim)),
                ("POTENTIAL", f64::from(potential_kind)),
                ("MODE", f64::from(flow.mode())),
                ("STAGE", f64::from(s)),
                (
                    "SCORE_FROM",
                    match flow {
                        Update::Svgd {
                            score: SvgdScore::Smoothed { .. },
                            ..
                        } => 1.0,
                        _ => 0.0,
                    },
                ),
                (
                    "EXACT_P",
                    match flow {
                        Update::SdFlow {
                            denoiser: TargetDenoiser::Exact(_),
                            ..
                        } => 1.0,
                        _ => 0.0,
                    },
                ),
                ("SHARED_SUM", if shared_sum { 1.0 } else { 0.0 }),
            ];
            constants.extend(walls.iter().copied());
            Kernel::new(
                gpu,
                "kernel_flows",
                &shader.source,
                &constants,
                workgroup_size,
            )
        };
        let (pre, post) = (stage(abi::STAGE_PRE), stage(abi::STAGE_POST));
        let rows = u64::from(chunk.count) * u64::from(dim) * 4;
        let scratch =
            |label: &str, bytes: u64| gpu.storage_buffer(label, bytes, wgpu::BufferUsages::empty());
        let proxy = scratch("kernel flow proxy", rows);
        let means = scratch("kernel flow means", 2 * rows);
        let logs = scratch("kernel flow log sums", 2 * u64::from(chunk.count) * 4);
        let score = scratch("kernel flow score", rows);
        let step = gpu.uniform_with(
            "kernel flow step",
            bytemuck::bytes_of(&<StepUniform as bytemuck::Zeroable>::zeroed()),
        );
        let counter_words = first_passage::basin_counter_words(boundary.basins.len());
        let nonfinite = NonfiniteCounter::with_words(gpu, 4 + counter_words);
        let bounds = gpu.uniform_with(
            "bounds",
            bytemuck::cast_slice(&first_passage::spec_vec4s(boundary)),
        );
        let bind = |k: &Kernel| {
            k.bind(
                gpu,
                &[
                    &chunk.state,
                    &chunk.uniform,
                    &step,
                    &proxy,
                    &means,
                    &chunk.tags,
                    &bounds,
                    &logs,
                    &score,
                    &potential_params,
                    &nonfinite.buffer,
                ],
            )
        };
        let (pre_bind, post_bind) = (bind(&pre), bind(&post));
        let flow = KernelFlowGpu {
            flow,
            kernel,
            pre,
            post,
            step,
            pre_bind,
            post_bind,
            potential_params,
            proxy,
            means,
            logs,
            score,
            steps,
            key: rng::key_from_seed(cx.seed),
            dim,
            nonfinite,
            counter_words,
            shared_sum,
            // Interactions per second: ~1e9 on a software adapter, ~1e11 on a GPU.
            budget: BLOCK_TARGET.as_secs_f64() * if gpu.adapter.is_software() { 1e9 } else { 1e11 },
        };
        gpu.check()?;
        Ok(flow)
    }

    /// One kernel sum of the step: queries `queries` (the chunk's N rows) against `sources`,
    /// results in half `half` (0 or 1) of `means` and `logs`. Recorded in query slices of
    /// about a submission's work each; `Ok(false)` when the batch was told to stop.
    #[allow(clippy::too_many_arguments)]
    fn sum(
        &self,
        batch: &mut Batch<'_>,
        n: u32,
        queries: &wgpu::Buffer,
        sources: (&wgpu::Buffer, u32),
        payload: Option<&wgpu::Buffer>,
        variance: f64,
        half: u32,
    ) -> Result<bool> {
        sliced(batch, n, sources.1, |batch, q0, len| {
            self.kernel.encode(
                batch.gpu,
                &mut batch.encoder,
                &KernelSumArgs {
                    queries,
                    query_first: q0,
                    query_count: len,
                    query_scale: 1.0,
                    sources: sources.0,
                    source_count: sources.1,
                    payload,
                    variance,
                    out_mean: &self.means,
                    out_log: &self.logs,
                    out_first: half * n + q0,
                },
            )
        })
    }

    /// The pair sum of a pair potential written as an expression over the chunk's `n`
    /// particles (queries and sources alike), into the first half of `means`; in query
    /// slices as [`Self::sum`].
    fn pair_sum(
        &self,
        batch: &mut Batch<'_>,
        n: u32,
        particles: (&wgpu::Buffer, u32),
    ) -> Result<bool> {
        sliced(batch, n, particles.1, |batch, q0, len| {
            self.kernel.encode_pairs(
                batch.gpu,
                &mut batch.encoder,
                &KernelSumArgs {
                    queries: particles.0,
                    query_first: q0,
                    query_count: len,
                    query_scale: 1.0,
                    sources: particles.0,
                    source_count: particles.1,
                    payload: None,
                    variance: 1.0,
                    out_mean: &self.means,
                    out_log: &self.logs,
                    out_first: q0,
                },
            )
        })
    }

    /// Records the pre (proxy noise) or post (update) stage. The step's uniform is written
    /// first: a queue write lands before the next submission, which holds this stage.
    fn stage(&self, batch: &mut Batch<'_>, uniform: &StepUniform, n: u32, post: bool) {
        batch
            .gpu
            .queue
            .write_buffer(&self.step, 0, bytemuck::bytes_of(uniform));
        let (gpu, encoder) = (batch.gpu, &mut batch.encoder);
        let (kernel, bind) = if post {
            (&self.post, &self.post_bind)
        } else {
            (&self.pre, &self.pre_bind)
        };
        let mut pass = encoder.begin_compute_pass(&Default::default());
        kernel.dispatch(
            &mut pass,
            bind,
            n.div_ceil(kernel.workgroup_size),
            gpu.limits.max_compute_workgroups_per_dimension,
        );
    }

    /// Records and submits step `step`.
    /// Records and submits one step, in submissions of about [`BLOCK_TARGET`] of work each;
    /// `Ok(false)` when `stop` said yes between two of them (the positions are then as before
    /// the step: only the last stage writes them).
    fn submit_step(
        &self,
        gpu: &Gpu,
        ensemble: &Ensemble,
        step: u64,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        let chunk = &ensemble.chunks[0];
        let n = chunk.count;
        let (block0, block0_hi, lane0) = rng::noise_start(step, self.dim);
        let mut uniform = StepUniform {
            key: self.key,
            block0,
            lane0,
            noise_scale: 0.0,
            a: 0.0,
            b: 0.0,
            c: 0.0,
            block0_hi,
            t: 0.0,
            step0: step as u32,
            steps: 1,
            step0_hi: (step >> 32) as u32,
            _pad: [0; 3],
        };
        let particles = (&chunk.state, n);
        let mut batch = Batch::new(gpu, self.budget, stop);
        match &self.flow {
            Update::SdFlow {
                sigma,
                eta,
                approximate,
                denoiser,
            } => {
                let sigma = sigma.at(step, self.steps);
                uniform.noise_scale = sigma as f32;
                uniform.a = *eta as f32;
                self.stage(&mut batch, &uniform, n, false);
                let v = sigma * sigma;
                match denoiser {
                    // D_p(z) = z + sigma^2 grad log p_sigma(z), p_sigma the mixture with
                    // every variance grown by sigma^2 (computed in the update stage).
                    TargetDenoiser::Exact(m) => {
                        let (_, params) =
                            gpu_potential_params(&Potential::Mixture(noised_mixture(m, sigma)));
                        gpu.queue.write_buffer(
                            &self.potential_params,
                            0,
                            bytemuck::cast_slice(&params),
                        );
                    }
                    TargetDenoiser::Samples(targets) => {
                        let t = targets.source();
                        if !self.sum(&mut batch, n, &self.proxy, t, None, v, 0)? {
                            return Ok(false);
                        }
                    }
                }
                if !approximate && !self.sum(&mut batch, n, &self.proxy, particles, None, v, 1)? {
                    return Ok(false);
                }
            }
            Update::MmdFlow {
                eta,
                bandwidth,
                noise,
                targets,
            } => {
                uniform.noise_scale = *noise as f32;
                uniform.a = (eta / (bandwidth * bandwidth)) as f32;
                uniform.b = (1.0 / f64::from(n)) as f32;
                uniform.c = (1.0 / f64::from(targets.rows)) as f32;
                self.stage(&mut batch, &uniform, n, false);
                let v = bandwidth * bandwidth;
                if !self.sum(&mut batch, n, &self.proxy, targets.source(), None, v, 0)? {
                    return Ok(false);
                }
                if !self.sum(&mut batch, n, &self.proxy, particles, None, v, 1)? {
                    return Ok(false);
                }
            }
            Update::Svgd {
                eta,
                bandwidth,
                score,
            } => {
                let h = match bandwidth {
                    Some(h) => *h,
                    None => {
                        let rows = (n as usize).min(SVGD_MEDIAN_ROWS);
                        let bytes =
                            gpu.read_bytes(&chunk.state, 0, rows as u64 * u64::from(self.dim) * 4)?;
                        svgd_bandwidth(
                            bytemuck::cast_slice(&bytes),
                            self.dim as usize,
                            u64::from(n),
                        )
                    }
                };
                uniform.a = (eta / f64::from(n)) as f32;
                uniform.b = (2.0 / h) as f32;
                if let SvgdScore::Smoothed {
                    targets,
                    bandwidth: eps,
                } = score
                {
                    uniform.c = (1.0 / (eps * eps)) as f32;
                    let (q, t) = (&chunk.state, targets.source());
                    if !self.sum(&mut batch, n, q, t, None, eps * eps, 0)? {
                        return Ok(false);
                    }
                }
                self.stage(&mut batch, &uniform, n, false);
                let q = &chunk.state;
                if !self.sum(&mut batch, n, q, particles, Some(&self.score), h / 2.0, 0)? {
                    return Ok(false);
                }
                if !self.sum(&mut batch, n, q, particles, None, h / 2.0, 1)? {
                    return Ok(false);
                }
            }
            Update::Interaction {
                interaction,
                temperature,
                dt,
                ..
            } => {
                uniform.noise_scale = (2.0 * temperature * dt).sqrt() as f32;
                uniform.t = (step as f64 * dt) as f32;
                uniform.a = *dt as f32;
                let done = match Update::pair(interaction) {
                    Some((kappa, variance)) => {
                        uniform.b = (kappa / f64::from(n)) as f32;
                        let queries = if self.shared_sum { 1 } else { n };
                        let q = &chunk.state;
                        self.sum(&mut batch, queries, q, particles, None, variance, 0)?
                    }
                    // The pair sum P_i = sum_j grad W(x_i - x_j); the update takes P_i / N.
                    None => {
                        uniform.b = (1.0 / f64::from(n)) as f32;
                        self.pair_sum(&mut batch, n, particles)?
                    }
                };
                if !done {
                    return Ok(false);
                }
            }
        }
        self.stage(&mut batch, &uniform, n, true);
        batch.finish();
        Ok(true)
    }
}

impl Stepper for KernelFlowGpu {
    fn max_fused(&self) -> u32 {
        1
    }

    fn min_slice(&self) -> u32 {
        u32::MAX
    }

    fn submit_slice(
        &mut self,
        gpu: &Gpu,
        ensemble: &Ensemble,
        _chunk: usize,
        _first: u32,
        _span: u32,
        step0: u64,
        steps: u32,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        for s in 0..u64::from(steps) {
            if !self.submit_step(gpu, ensemble, step0 + s, stop)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64> {
        self.nonfinite.take(gpu)
    }

    fn counters(&self, gpu: &Gpu) -> Result<Vec<u64>> {
        self.nonfinite.basin_counters(gpu, self.counter_words)
    }

    fn set_counters(&self, gpu: &Gpu, values: &[u64]) {
        self.nonfinite
            .set_basin_counters(gpu, self.counter_words, values);
    }
}

/// Gaussian-kernel weighted means of `payload` (default `points`) at each row of `z`, and
/// the log sums (f64, log-sum-exp): the twin of one kernel sum.
pub(crate) fn kernel_mean_cpu(
    z: &[f64],
    points: &[f64],
    payload: Option<&[f64]>,
    dim: usize,
    variance: f64,
) -> (Vec<f64>, Vec<f64>) {
    let payload = payload.unwrap_or(points);
    let mut out = Vec::with_capacity(z.len());
    let mut logs = Vec::with_capacity(z.len() / dim);
    let mut e = vec![0.0; points.len() / dim];
    for q in z.chunks_exact(dim) {
        for (ej, y) in e.iter_mut().zip(points.chunks_exact(dim)) {
            let d2: f64 = q.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum();
            *ej = -d2 / (2.0 * variance);
        }
        let top = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        let mut acc = vec![0.0; dim];
        for (ej, p) in e.iter().zip(payload.chunks_exact(dim)) {
            let w = (ej - top).exp();
            total += w;
            for (a, v) in acc.iter_mut().zip(p) {
                *a += w * v;
            }
        }
        out.extend(acc.iter().map(|a| a / total));
        logs.push(top + total.ln());
    }
    (out, logs)
}

/// y + scale * (normals of `stream` at step `step`), the GPU's noise layout.
fn noised(
    positions: &[f64],
    dim: usize,
    scale: f64,
    seed: u64,
    stream: u32,
    step: u64,
) -> Vec<f64> {
    let key = rng::key_from_seed(seed);
    let mut z = positions.to_vec();
    for (i, row) in z.chunks_exact_mut(dim).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v += scale * rng::normal(key, i as u64, stream, step * dim as u64 + c as u64);
        }
    }
    z
}

/// CPU twin of one SD-flow step in f64 with the GPU's proxy noise: advances all particles
/// (`positions`, row-major, global indices from 0) through step `step` at proxy level
/// `sigma`.
#[allow(clippy::too_many_arguments)]
pub fn sd_flow_cpu(
    positions: &mut [f64],
    dim: u32,
    targets: &[f64],
    sigma: f64,
    eta: f64,
    approximate: bool,
    seed: u64,
    step: u64,
) {
    let d = dim as usize;
    let z = noised(positions, d, sigma, seed, STREAM_PROXY, step);
    let (dp, _) = kernel_mean_cpu(&z, targets, None, d, sigma * sigma);
    sd_flow_update(positions, d, &z, &dp, sigma, eta, approximate);
}

/// y += eta (D_p(z) - D_q(z)), D_q the kernel mean over the clean particles (or y itself,
/// approximately): the part the two SD-flow twins share.
fn sd_flow_update(
    positions: &mut [f64],
    d: usize,
    z: &[f64],
    dp: &[f64],
    sigma: f64,
    eta: f64,
    approximate: bool,
) {
    let dq = if approximate {
        positions.to_vec()
    } else {
        kernel_mean_cpu(z, positions, None, d, sigma * sigma).0
    };
    for ((y, p), q) in positions.iter_mut().zip(dp).zip(&dq) {
        *y += eta * (p - q);
    }
}

/// CPU twin of one SD-flow step whose target denoiser is a mixture's exact noised one,
/// D_p(z) = z + sigma^2 grad log (p * N(0, sigma^2 I))(z).
#[allow(clippy::too_many_arguments)]
pub fn sd_flow_exact_cpu(
    positions: &mut [f64],
    dim: u32,
    target: &Mixture,
    sigma: f64,
    eta: f64,
    approximate: bool,
    seed: u64,
    step: u64,
) {
    let d = dim as usize;
    let z = noised(positions, d, sigma, seed, STREAM_PROXY, step);
    let noised_target = noised_mixture(target, sigma);
    let dp: Vec<f64> = z
        .chunks_exact(d)
        .flat_map(|q| {
            let s = noised_target.score(q);
            q.iter()
                .zip(s)
                .map(|(a, b)| a + sigma * sigma * b)
                .collect::<Vec<_>>()
        })
        .collect();
    sd_flow_update(positions, d, &z, &dp, sigma, eta, approximate);
}

/// CPU twin of one MMD-flow step (bandwidth `h`, noise injection `beta`).
#[allow(clippy::too_many_arguments)]
pub fn mmd_flow_cpu(
    positions: &mut [f64],
    dim: u32,
    targets: &[f64],
    eta: f64,
    h: f64,
    beta: f64,
    seed: u64,
    step: u64,
) {
    let d = dim as usize;
    let (n, m) = ((positions.len() / d) as f64, (targets.len() / d) as f64);
    let z = noised(positions, d, beta, seed, STREAM_PROXY, step);
    let (mp, lp) = kernel_mean_cpu(&z, targets, None, d, h * h);
    let (mq, lq) = kernel_mean_cpu(&z, positions, None, d, h * h);
    for (i, y) in positions.chunks_exact_mut(d).enumerate() {
        let (sp, sq) = (lp[i].exp() / m, lq[i].exp() / n);
        for (c, v) in y.iter_mut().enumerate() {
            let k = i * d + c;
            *v += eta / (h * h) * (sq * (z[k] - mq[k]) - sp * (z[k] - mp[k]));
        }
    }
}

/// CPU twin of one SVGD step with kernel exp(-r^2 / h) and target score `score`.
pub fn svgd_cpu(
    positions: &mut [f64],
    dim: u32,
    score: &dyn Fn(&[f64]) -> Vec<f64>,
    eta: f64,
    h: f64,
) {
    let d = dim as usize;
    let n = (positions.len() / d) as f64;
    let scores: Vec<f64> = positions.chunks_exact(d).flat_map(score).collect();
    let (ms, logs) = kernel_mean_cpu(positions, positions, Some(&scores), d, h / 2.0);
    let (m, _) = kernel_mean_cpu(positions, positions, None, d, h / 2.0);
    for (i, y) in positions.chunks_exact_mut(d).enumerate() {
        let s = logs[i].exp();
        for (c, v) in y.iter_mut().enumerate() {
            let k = i * d + c;
            *v += eta / n * s * (ms[k] + 2.0 / h * (*v - m[k]));
        }
    }
}

/// The minimum image of a difference `d` on an axis of period `l` (> 0; 0: not periodic):
/// d - l round(d / l), in [-l/2, l/2].
pub fn minimum_image(d: f64, l: f64) -> f64 {
    if l > 0.0 { d - l * (d / l).round() } else { d }
}

/// (1/N) sum_j grad W(x_i - x_j) for every particle, in f64, with every difference its
/// minimum image on the axes k with `periods[k]` > 0 (empty: none periodic): per particle,
/// the forces of the images of all particles nearest it.
pub fn interaction_forces_periodic(
    positions: &[f64],
    dim: u32,
    interaction: &Interaction,
    periods: &[f64],
) -> Vec<f64> {
    if periods.iter().all(|&l| l <= 0.0) {
        return interaction_forces(positions, dim, interaction);
    }
    let d = dim as usize;
    let n = positions.len() / d;
    let mut out = Vec::with_capacity(positions.len());
    for q in positions.chunks_exact(d) {
        let images: Vec<f64> = positions
            .chunks_exact(d)
            .flat_map(|y| {
                (0..d).map(move |c| {
                    q[c] - minimum_image(q[c] - y[c], periods.get(c).copied().unwrap_or(0.0))
                })
            })
            .collect();
        // The query's row of the forces among [q, images]: sums over the images, / N.
        let mut rows = q.to_vec();
        rows.extend(&images);
        let f = forces_on_first(&rows, d, n, interaction);
        out.extend(f);
    }
    out
}

/// (1/n) sum over the `n` source rows after the first of grad W(row 0 - source): the force
/// on the first row.
fn forces_on_first(rows: &[f64], d: usize, n: usize, interaction: &Interaction) -> Vec<f64> {
    let (q, sources) = rows.split_at(d);
    let nf = n as f64;
    match *interaction {
        Interaction::Expr(ref w) => pair_sum_cpu(d as u32, q, sources, w)
            .iter()
            .map(|v| v / nf)
            .collect(),
        Interaction::Gaussian { strength, width } => {
            let (m, logs) = kernel_mean_cpu(q, sources, None, d, width * width);
            let kappa = -strength / (width * width);
            (0..d)
                .map(|c| kappa / nf * logs[0].exp() * (q[c] - m[c]))
                .collect()
        }
        Interaction::Quadratic { strength } => (0..d)
            .map(|c| {
                let mean = sources.chunks_exact(d).map(|y| y[c]).sum::<f64>() / nf;
                strength * (q[c] - mean)
            })
            .collect(),
    }
}

/// (1/N) sum_j grad W(x_i - x_j) for every particle, in f64: built-in interactions through
/// their kernel means, an expression through its pair sum.
pub fn interaction_forces(positions: &[f64], dim: u32, interaction: &Interaction) -> Vec<f64> {
    let d = dim as usize;
    let n = (positions.len() / d) as f64;
    let (kappa, variance) = match *interaction {
        Interaction::Gaussian { strength, width } => (-strength / (width * width), width * width),
        Interaction::Quadratic { strength } => (strength, f64::INFINITY),
        Interaction::Expr(ref w) => {
            let mut p = pair_sum_cpu(dim, positions, positions, w);
            p.iter_mut().for_each(|v| *v /= n);
            return p;
        }
    };
    let (m, logs) = if variance.is_finite() {
        kernel_mean_cpu(positions, positions, None, d, variance)
    } else {
        let mut mean = vec![0.0; d];
        for y in positions.chunks_exact(d) {
            for (a, v) in mean.iter_mut().zip(y) {
                *a += v / n;
            }
        }
        (mean.repeat(n as usize), vec![n.ln(); n as usize])
    };
    positions
        .iter()
        .enumerate()
        .map(|(k, y)| kappa / n * logs[k / d].exp() * (y - m[k]))
        .collect()
}

/// CPU twin of one interacting-particle step (Euler–Maruyama, dynamics noise stream):
/// x_i += -[grad V(x_i) + (1/N) sum_j grad W(x_i - x_j)] dt + sqrt(2 T dt) xi.
#[allow(clippy::too_many_arguments)]
pub fn interaction_cpu(
    positions: &mut [f64],
    dim: u32,
    potential: &Potential,
    interaction: &Interaction,
    temperature: f64,
    dt: f64,
    seed: u64,
    step: u64,
) {
    interaction_cpu_in(
        positions,
        dim,
        potential,
        interaction,
        temperature,
        dt,
        seed,
        step,
        &[],
    );
}

/// [`interaction_cpu`] in a box: the pair forces take the minimum image on the axes with
/// `periods[k]` > 0 ([`interaction_forces_periodic`]); the walls are the caller's (after the
/// step, [`crate::observe::first_passage::reflect_into`] and `wrap_into`).
#[allow(clippy::too_many_arguments)]
pub fn interaction_cpu_in(
    positions: &mut [f64],
    dim: u32,
    potential: &Potential,
    interaction: &Interaction,
    temperature: f64,
    dt: f64,
    seed: u64,
    step: u64,
    periods: &[f64],
) {
    let d = dim as usize;
    let pair = interaction_forces_periodic(positions, dim, interaction, periods);
    let xi = noised(
        &vec![0.0; positions.len()],
        d,
        1.0,
        seed,
        STREAM_DYNAMICS,
        step,
    );
    let noise = (2.0 * temperature * dt).sqrt();
    for (i, y) in positions.chunks_exact_mut(d).enumerate() {
        let grad = potential.gradient(y);
        for c in 0..d {
            let k = i * d + c;
            y[c] += -(grad[c] + pair[k]) * dt + noise * xi[k];
        }
    }
}
