//! Dynamics: one module per kind, each owning its plan type, scenario keys and parser,
//! defaults, memory estimate, stepper (GPU pipeline), references and CPU twin, and
//! registered with one line in [`registry!`] below. docs/architecture.md, "Adding a
//! dynamics kind", walks through it.

pub mod blocks;
pub mod diffusion;
pub mod empirical;
pub mod forward;
pub mod gradient_flow;
pub mod image_target;
pub mod init;
pub mod interaction;
pub mod kernel_flows;
pub mod kernel_sum;
pub mod langevin;
pub mod mmd_flow;
pub mod potential_params;
pub mod probability_flow;
pub mod reverse_sde;
pub mod sd_flow;
pub mod sde;
pub mod svgd;
pub mod underdamped;

use crate::error::Result;
use crate::gpu::{Ensemble, Gpu};
use crate::model::expr::SdeModel;
use crate::model::{Mixture, Potential, Process, Temperature};
use crate::scenario::data::SampleTable;
use crate::scenario::walk::{Issues, Section};
use crate::scenario::{Init, Target};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Declares the registered kinds: the plan enum (serialised with the kind's name as its
/// `kind` tag, the newtype's fields beside it), the name list the scenario parser offers,
/// and the dispatch from a plan to its kind. Each line is `Variant(PlanType) = "name"`.
macro_rules! registry {
    ($($variant:ident($plan:ty) = $name:literal,)*) => {
        /// The dynamics of a plan: one variant per registered kind, each a newtype over the
        /// kind's own plan type, which implements [`Dynamics`].
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum DynamicsPlan {
            $(#[serde(rename = $name)] $variant($plan),)*
        }

        impl DynamicsPlan {
            /// Every kind's name as a scenario writes it, in registration order.
            pub const KINDS: &[&str] = &[$($name),*];

            /// The kind behind the plan.
            pub fn as_dyn(&self) -> &(dyn Dynamics + 'static) {
                match self {
                    $(DynamicsPlan::$variant(p) => p,)*
                }
            }

            /// The `kind` as written in a scenario.
            pub fn kind_name(&self) -> &'static str {
                match self {
                    $(DynamicsPlan::$variant(_) => $name,)*
                }
            }
        }

        $(impl From<$plan> for DynamicsPlan {
            fn from(plan: $plan) -> Self {
                DynamicsPlan::$variant(plan)
            }
        })*

        /// (name, parser) of every kind.
        const PARSERS: &[(&str, ParseFn)] = &[$(
            ($name, |issues, sec, cx| {
                <$plan as ParseKind>::parse(issues, sec, cx)
                    .map(|(plan, data)| (DynamicsPlan::$variant(plan), data))
            }),
        )*];
    };
}

registry! {
    Langevin(langevin::LangevinPlan) = "langevin",
    GradientFlow(gradient_flow::GradientFlowPlan) = "gradient_flow",
    Forward(forward::ForwardPlan) = "forward",
    ReverseSde(reverse_sde::ReverseSdePlan) = "reverse_sde",
    ProbabilityFlow(probability_flow::ProbabilityFlowPlan) = "probability_flow",
    SdFlow(sd_flow::SdFlowPlan) = "sd_flow",
    MmdFlow(mmd_flow::MmdFlowPlan) = "mmd_flow",
    Svgd(svgd::SvgdPlan) = "svgd",
    Interaction(interaction::InteractionPlan) = "interaction",
    Sde(sde::SdePlan) = "sde",
    Underdamped(underdamped::UnderdampedPlan) = "underdamped",
}

impl std::ops::Deref for DynamicsPlan {
    type Target = dyn Dynamics;

    fn deref(&self) -> &Self::Target {
        self.as_dyn()
    }
}

/// What a kind's parser knows besides its own `[dynamics]` table.
pub(crate) struct ParseContext<'a> {
    /// `particles.dim`, when it is valid.
    pub dim: Option<usize>,
    /// The scenario file's directory: relative input paths start here.
    pub base_dir: &'a Path,
}

type ParseFn = for<'a, 'b> fn(
    &mut Issues,
    Section<'a>,
    &ParseContext<'b>,
) -> Option<(DynamicsPlan, Option<SampleTable>)>;

/// Reading a kind's `[dynamics]` table: its keys, their defaults and checks.
pub(crate) trait ParseKind: Sized {
    /// The plan of `sec` (whose `kind` already names this kind) and the data set it reads
    /// (an empirical score's or a kernel flow's samples, loaded once here), or None after
    /// recording every problem in `issues`.
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)>;
}

/// Parses `[dynamics]` as the kind its `kind` key names.
pub(crate) fn parse(
    issues: &mut Issues,
    sec: Section<'_>,
    cx: &ParseContext<'_>,
) -> Option<(DynamicsPlan, Option<SampleTable>)> {
    let name = crate::scenario::resolve::kind(issues, sec, DynamicsPlan::KINDS)?;
    let (_, parse) = PARSERS.iter().find(|(n, _)| *n == name)?;
    parse(issues, sec, cx)
}

/// What the run hands a kind to build its stepper.
pub struct StepperContext<'a> {
    pub gpu: &'a Gpu,
    pub ensemble: &'a Ensemble,
    pub seed: u64,
    /// The dynamics' data set (an empirical score, a kernel flow's target samples), loaded
    /// with the plan.
    pub data: Option<&'a SampleTable>,
    pub workgroup_size: u32,
    /// Particles per chunk, when the layout asks for a particular chunking.
    pub chunk_particles: Option<u64>,
    /// Walls and first-passage targets (empty when the run has none; only kinds whose
    /// `boundary_refusal` is None get any).
    pub boundary: &'a crate::scenario::Boundary,
    /// MALA: carry U and grad U from the accepted proposal or evaluate them at every step
    /// (None: by the potential; `langevin::Mala`). The same bits either way.
    pub mala_carry: Option<bool>,
}

/// Device memory a kind needs beyond the positions: `floats_per_particle` f32 per particle
/// (velocities, scratch rows) and `data_rows` rows of `dim` f32 (a data set, targets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateMemory {
    pub floats_per_particle: u64,
    pub data_rows: u64,
}

/// The references (`[output] reference`) a kind supports.
pub enum References<'a> {
    /// None: asking for one is a scenario error.
    None,
    /// Overdamped Langevin in `potential` at `temperature`: the grid Fokker–Planck solution,
    /// the Boltzmann density, and the Ornstein–Uhlenbeck transient for a quadratic U.
    Langevin {
        potential: &'a Potential,
        temperature: &'a Temperature,
    },
    /// Gradient descent in a quadratic U: the continuous flow exp(-A t) ("analytic" only,
    /// from a gaussian or mixture init).
    Descent { potential: &'a Potential },
    /// The general SDE dX = f dt + sqrt(2 D) dW written by the user: the grid solution of
    /// d rho / dt = -div(f rho) + laplacian(D rho).
    Sde { model: &'a SdeModel },
    /// Underdamped Langevin dynamics: Kramers' equation on a position and its velocity
    /// (1D phase space) and the Boltzmann x Maxwell stationary law on any axes.
    Underdamped(&'a underdamped::UnderdampedPlan),
    /// A closed-form law at every time ([`Dynamics::exact_law`]; "analytic" only).
    /// `needs_mixture_init`: the law is the initial law pushed forward, so the init must be
    /// a gaussian or a mixture.
    ExactLaw { needs_mixture_init: bool },
}

/// A dynamics kind: everything the run, the scenario resolver, the references and the
/// outputs ask of it. Implemented by each kind's plan type.
pub trait Dynamics: std::fmt::Debug {
    /// Number of steps the run takes.
    fn steps(&self) -> u64;

    /// Time units per step (positive), to turn `output.every` into steps; for dynamics on a
    /// non-uniform grid the mean step.
    fn time_per_step(&self) -> f64;

    /// The dynamics' own time after `step` steps (physical time, or process time, which
    /// decreases, for reverse dynamics).
    fn time_at(&self, step: u64) -> f64 {
        step as f64 * self.time_per_step()
    }

    /// The potential U and temperature T whose equilibrium exp(-U/T) the dynamics relaxes
    /// towards (T = 0: descent into the minima). Drives the default histogram range and the
    /// free energy.
    fn potential(&self) -> Option<(&Potential, f64)> {
        None
    }

    /// Where the density ends up on axis `axis` (the default histogram range holds it and
    /// the initial law): by default the equilibrium box of [`Dynamics::potential`].
    fn final_box(&self, data: Option<&SampleTable>, axis: usize) -> Option<[f64; 2]> {
        let _ = data;
        let (potential, temperature) = self.potential()?;
        crate::scenario::range::equilibrium_box(potential, temperature, axis)
    }

    /// The potential whose energy observables (src/observe/energy.rs: ⟨U⟩ and the
    /// configurational temperature) are reported: by default [`Dynamics::potential`]'s.
    fn energy_potential(&self) -> Option<&Potential> {
        self.potential().map(|(p, _)| p)
    }

    /// Per-axis masses of a kind whose [`Stepper::extra_state`] is its velocities
    /// (underdamped): the energy observer's kinetic temperature ⟨Σ_k m_k v_k²⟩ / dim.
    fn masses(&self) -> Option<&[f64]> {
        None
    }

    /// Whether histograms may read the velocities as axes dim .. 2 dim - 1 (phase space):
    /// then the stepper's [`Stepper::extra_state`] is the velocity ensemble.
    fn velocity_axes(&self) -> bool {
        false
    }

    /// The default histogram range of phase-space axis `axis` when it is a velocity axis
    /// (axis >= dim, for kinds with [`Dynamics::velocity_axes`]); None for positions.
    fn velocity_box(&self, axis: usize) -> Option<[f64; 2]> {
        let _ = axis;
        None
    }

    /// The forward process whose Gaussian prior `init = { kind = "prior" }` stands for.
    fn prior_process(&self) -> Option<&Process> {
        None
    }

    /// Device memory beyond the positions, for particles of dimension `dim`.
    fn state_memory(&self, dim: u64) -> StateMemory {
        let _ = dim;
        StateMemory::default()
    }

    /// Whether a step needs the whole ensemble (kernel sums over the particles themselves):
    /// such dynamics cannot be sharded.
    fn couples_particles(&self) -> bool {
        false
    }

    /// The target of a kernel flow (whose MMD^2 each snapshot reports).
    fn kernel_target(&self) -> Option<&Target> {
        None
    }

    /// The data set file the dynamics read, if any: (path, sha256).
    fn input_file(&self) -> Option<(&Path, &str)> {
        None
    }

    /// Whether moves are Metropolis-adjusted proposals (Langevin with `mala`): metrics.csv
    /// then has an `acceptance_rate` column and snapshots an acceptance count.
    fn metropolis_adjusted(&self) -> bool {
        false
    }

    /// Gaussian-kernel evaluations per particle and step for dynamics built on kernel sums
    /// (`particles` is the ensemble size N), None for the others.
    fn interactions_per_particle_step(&self, particles: u64) -> Option<f64> {
        let _ = particles;
        None
    }

    /// The references this kind supports.
    fn references(&self) -> References<'_> {
        References::None
    }

    /// The closed-form law at time `t` for [`References::ExactLaw`] kinds.
    fn exact_law(&self, init: &Init, data: Option<&SampleTable>, t: f64) -> Option<Mixture> {
        let _ = (init, data, t);
        None
    }

    /// Problems only the whole plan shows (beyond the kind's own keys), e.g. a written
    /// diffusion negative on the histogram box.
    fn check_plan(&self, plan: &crate::scenario::Plan) -> Vec<crate::error::ScenarioIssue> {
        let _ = plan;
        Vec::new()
    }

    /// Why the kind cannot run with these `[boundary]` walls, `[[observe.first_passage]]`
    /// targets or basins; None when its stepper applies them (docs/architecture.md,
    /// "Boundaries and first passage").
    fn boundary_refusal(&self, boundary: &crate::scenario::Boundary) -> Option<String> {
        let _ = boundary;
        Some("its stepper has no walls, periodic wrap or first-passage bookkeeping".into())
    }

    /// Why the kind cannot take `bridge = true` on a first-passage target (the Brownian
    /// bridge's crossing probability needs constant isotropic noise, sigma^2 = 2 T per
    /// coordinate); None when its stepper applies it.
    fn bridge_refusal(&self) -> Option<String> {
        Some(
            "the Brownian-bridge crossing probability needs overdamped Langevin's constant \
             isotropic noise (kind = \"langevin\" without mala)"
                .into(),
        )
    }

    /// The GPU stepper for `cx.ensemble`.
    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>>;

    /// CPU twin in f64: advances the whole ensemble (`state.positions`, row-major, global
    /// particle indices from 0; `state.extra` the kind's extra per-particle state) through
    /// steps `step0 .. step0 + steps` with the GPU's noise.
    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()>;
}

/// The state a CPU twin advances.
#[derive(Debug, Clone, Default)]
pub struct TwinState {
    pub positions: Vec<f64>,
    /// Per-particle state besides the positions (heavy-ball velocities), `dim` per particle;
    /// empty for kinds without any (a twin that needs it starts it at zero).
    pub extra: Vec<f64>,
}

/// What a CPU twin is given besides the state.
pub struct TwinContext<'a> {
    pub dim: u32,
    pub seed: u64,
    pub data: Option<&'a SampleTable>,
    pub step0: u64,
    pub steps: u64,
}

impl DynamicsPlan {
    /// The target image a kernel flow samples, if any: (path, sha256). Not a table: it is
    /// read (and its hash checked) by the stepper when the run starts or resumes.
    pub fn image_file(&self) -> Option<(&Path, &str)> {
        match self.kernel_target() {
            Some(Target::Image { path, sha256, .. }) => Some((path, sha256)),
            _ => None,
        }
    }
}

/// A dynamics' GPU pipeline bound to an ensemble. The simulation advances the particles in
/// blocks of steps, each block in slices of particles submitted one after the other, so
/// particles must be independent within a block (dynamics whose steps couple the ensemble
/// say so with [`Stepper::max_fused`] = 1 and [`Stepper::min_slice`] = u32::MAX).
pub trait Stepper: Send {
    /// Most steps one block may hold (the block is split further into dispatches as the
    /// dynamics needs).
    fn max_fused(&self) -> u32 {
        u32::MAX
    }

    /// Submissions cover a multiple of this many particles (or the rest of a chunk).
    fn min_slice(&self) -> u32 {
        16_384
    }

    /// Submits steps `step0 .. step0 + steps` for particles `first .. first + span` of chunk
    /// `chunk`; need not wait for the last submission. A stepper whose steps take many
    /// submissions (kernel sums over the whole ensemble) asks `stop` between them and, when
    /// it says yes, returns `Ok(false)` with the state as it was before the step: the step is
    /// then done again on resume. Otherwise `Ok(true)`.
    #[allow(clippy::too_many_arguments)]
    fn submit_slice(
        &mut self,
        gpu: &Gpu,
        ensemble: &Ensemble,
        chunk: usize,
        first: u32,
        span: u32,
        step0: u64,
        steps: u32,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool>;

    /// Reads and clears the count of particles found NaN or Inf since the last call.
    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64>;

    /// Per-particle state besides the positions (heavy-ball velocities): checkpointed and
    /// restored with them.
    fn extra_state(&self) -> Option<&Ensemble> {
        None
    }

    /// Metropolis-adjusted dynamics (Langevin with `mala`): the proposals accepted since
    /// the count was last set, over all particles. None: the dynamics accepts every move.
    fn accepted(&self, _gpu: &Gpu) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Sets the count [`Stepper::accepted`] reads (0 after a snapshot, a checkpoint's count
    /// on resume); nothing for dynamics without an accept step.
    fn set_accepted(&self, _gpu: &Gpu, _count: u64) {}

    /// The 64-bit counters of basin transitions (src/gpu/abi.rs, `BASIN_COUNTERS`): the
    /// steps with each basin as the last one, then the transitions per ordered pair; empty
    /// for a stepper without basins.
    fn counters(&self, _gpu: &Gpu) -> Result<Vec<u64>> {
        Ok(Vec::new())
    }

    /// Sets those counters (on resume).
    fn set_counters(&self, _gpu: &Gpu, _values: &[u64]) {}
}

/// The 4-byte NaN/Inf particle counter the kernels bump by bit test (`x != x` would be
/// compiled away).
pub struct NonfiniteCounter {
    pub buffer: wgpu::Buffer,
}

impl NonfiniteCounter {
    pub fn new(gpu: &Gpu) -> Self {
        NonfiniteCounter {
            buffer: gpu.storage_buffer("nonfinite count", 4, wgpu::BufferUsages::empty()),
        }
    }

    /// A counter with `words` u32 words (at least one): word 0 is the non-finite count,
    /// the others are the stepper's own (MALA's accepted proposals).
    pub fn with_words(gpu: &Gpu, words: u64) -> Self {
        NonfiniteCounter {
            buffer: gpu.storage_buffer(
                "nonfinite count",
                4 * words.max(1),
                wgpu::BufferUsages::empty(),
            ),
        }
    }

    /// The 64-bit basin counters from word `BASIN_COUNTERS` (`words` u32 words; empty
    /// without basins).
    pub fn basin_counters(&self, gpu: &Gpu, words: u64) -> Result<Vec<u64>> {
        if words == 0 {
            return Ok(Vec::new());
        }
        let at = u64::from(crate::gpu::abi::BASIN_COUNTERS) * 4;
        let b = gpu.read_bytes(&self.buffer, at, words * 4)?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&b);
        Ok(words
            .chunks_exact(2)
            .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32))
            .collect())
    }

    /// Sets those counters (on resume).
    pub fn set_basin_counters(&self, gpu: &Gpu, words: u64, values: &[u64]) {
        if words == 0 {
            return;
        }
        let w: Vec<u32> = values
            .iter()
            .flat_map(|v| [*v as u32, (*v >> 32) as u32])
            .collect();
        let at = u64::from(crate::gpu::abi::BASIN_COUNTERS) * 4;
        gpu.queue
            .write_buffer(&self.buffer, at, bytemuck::cast_slice(&w));
    }

    pub fn take(&self, gpu: &Gpu) -> Result<u64> {
        let bytes = gpu.read_bytes(&self.buffer, 0, 4)?;
        let count = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if count > 0 {
            gpu.queue.write_buffer(&self.buffer, 0, &[0; 4]);
        }
        Ok(u64::from(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolve_str;

    const MIXTURE: &str = "weights = [1.0], means = [[0.0, 0.0]], stds = [1.0]";

    /// A minimal `[dynamics]` table of each registered kind.
    fn dynamics_table(kind: &str) -> String {
        let body = match kind {
            "langevin" | "gradient_flow" | "underdamped" => {
                "potential = { kind = \"double_well\" }\ndt = 0.01\nsteps = 3".to_string()
            }
            "forward" => "process = { kind = \"vp\" }\ndt = 0.01\nsteps = 3".to_string(),
            "reverse_sde" | "probability_flow" => format!(
                "process = {{ kind = \"vp\" }}\nscore = {{ kind = \"mixture\", {MIXTURE} }}\nsteps = 3"
            ),
            "sd_flow" => format!(
                "target = {{ kind = \"mixture\", {MIXTURE}, count = 16 }}\nsigma = 0.5\nsteps = 3"
            ),
            "mmd_flow" | "svgd" => {
                format!("target = {{ kind = \"mixture\", {MIXTURE}, count = 16 }}\nsteps = 3")
            }
            "interaction" => "potential = { kind = \"double_well\" }\ninteraction = { kind = \
                              \"quadratic\", strength = 1.0 }\ndt = 0.01\nsteps = 3"
                .to_string(),
            "sde" => "drift = [\"-x\", \"-w*y\"]\ndiffusion = \"0.5\"\nparams = { w = 2.0 }\n\
                      dt = 0.01\nsteps = 3"
                .to_string(),
            other => panic!("no minimal table for kind {other}: add one here"),
        };
        format!(
            "[particles]\ncount = 16\ndim = 2\ninit = {{ kind = \"point\", at = [0.0, 0.0] }}\n\
             [dynamics]\nkind = \"{kind}\"\n{body}\n"
        )
    }

    /// Every registered kind parses from its name, reports that name, serialises with it as
    /// the `kind` tag and reads back to the same plan; a name nobody registered is refused
    /// with the registered ones listed.
    #[test]
    fn every_registered_kind_round_trips_through_its_name() {
        for &name in DynamicsPlan::KINDS {
            let text = dynamics_table(name);
            let resolved = match resolve_str(&text, "t.toml", Path::new(""), &[], None) {
                Ok(r) => r,
                Err(e) => panic!("{name}: {e}"),
            };
            let dynamics = &resolved.plan.dynamics;
            assert_eq!(dynamics.kind_name(), name);
            assert_eq!(dynamics.steps(), 3, "{name}");
            let json = serde_json::to_value(dynamics).expect("serialise");
            assert_eq!(json["kind"], name);
            let back: DynamicsPlan = serde_json::from_value(json).expect("deserialise");
            assert_eq!(&back, dynamics);
        }
        let text = dynamics_table("langevin").replace("\"langevin\"", "\"langevine\"");
        let err = resolve_str(&text, "t.toml", Path::new(""), &[], None)
            .expect_err("an unregistered kind");
        let message = err.to_string();
        assert!(message.contains("dynamics.kind"), "{message}");
        assert!(message.contains("langevin"), "{message}");
    }
}
