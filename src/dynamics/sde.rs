//! `kind = "sde"`: the general Itô SDE written by the user,
//!   dX = f(X, t) dt + sqrt(2 D(X, t)) dW,
//! one drift expression per axis and an isotropic diffusion D >= 0, integrated by
//! Euler–Maruyama,
//!   x_{k+1} = x_k + f(x_k, t_k) dt + sqrt(2 D(x_k, t_k) dt) xi_k,   t_k = k dt,
//! on the Langevin pipeline's layout (shaders/sde.wgsl, generated f and D in its user
//! region) with the same Philox noise, so a drift -grad U with D = T reproduces Langevin.
//! Euler–Maruyama of the Itô SDE needs no grad D term; grad D belongs to the Fokker–Planck
//! flux J = f rho - grad(D rho) (the grid reference). A model meant in the "D grad rho"
//! convention has drift f + grad D.

use super::langevin::{EulerShader, LangevinGpu};
use super::{
    Dynamics, ParseContext, ParseKind, References, Stepper, StepperContext, TwinContext, TwinState,
};
use crate::error::{Error, Result, ScenarioIssue};
use crate::model::expr::SdeModel;
use crate::model::wgsl_model::WgslModel;
use crate::observe::first_passage;
use crate::rng::{self, NoiseStream};
use crate::scenario::data::SampleTable;
use crate::scenario::walk::{Issues, Section};
use crate::scenario::{Plan, expr_keys, keys};
use crate::shaders;
use serde::{Deserialize, Serialize};

/// The model: expressions, or a WGSL file (src/model/wgsl_model.rs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SdeForm {
    /// drift, diffusion and params, as written.
    Expr(SdeModel),
    /// `wgsl = "file.wgsl"` defining user_drift and user_diffusion, with params.
    Wgsl(WgslModel),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SdePlan {
    #[serde(flatten)]
    pub model: SdeForm,
    pub dt: f64,
    pub steps: u64,
    pub t_end: f64,
}

const KEYS: &[&str] = &[
    "kind",
    "drift",
    "diffusion",
    "params",
    "dt",
    "t_end",
    "steps",
];
const WGSL_KEYS: &[&str] = &["kind", "wgsl", "params", "dt", "t_end", "steps"];

/// The shader for `model`: shaders/sde.wgsl with f and D generated into its user region
/// (or the user's WGSL in their place), and the params array (one 0 when there are none: a
/// binding cannot be empty).
pub fn sde_shader(model: &SdeForm) -> Result<(String, Vec<f32>), String> {
    let (functions, params) = match model {
        SdeForm::Expr(m) => (
            vec![
                ("user_drift", m.wgsl_drift("model_params")),
                ("user_diffusion", m.wgsl_diffusion("model_params")),
            ],
            m.params(),
        ),
        // The file's code replaces the drift stub; the diffusion stub goes (the file
        // defines both).
        SdeForm::Wgsl(w) => (
            vec![
                ("user_drift", w.code_with_params("model_params", 0)),
                ("user_diffusion", String::new()),
            ],
            w.params(),
        ),
    };
    let source = shaders::with_user_functions(shaders::SDE, &functions)?;
    shaders::validate(&source)?;
    let mut params: Vec<f32> = params.iter().map(|&v| v as f32).collect();
    if params.is_empty() {
        params.push(0.0);
    }
    Ok((source, params))
}

impl ParseKind for SdePlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        let model = if sec.get("wgsl").is_some() {
            expr_keys::wgsl_model(issues, sec, cx.base_dir, WGSL_KEYS).map(SdeForm::Wgsl)
        } else {
            sec.check_keys(KEYS, issues);
            expr_keys::sde(issues, sec, cx.dim).map(SdeForm::Expr)
        };
        let dt = keys::positive_dt(issues, sec);
        let (steps, t_end) = keys::duration(issues, sec, dt)?;
        let plan = SdePlan {
            model: model?,
            dt: dt?,
            steps,
            t_end,
        };
        if let Err(why) = sde_shader(&plan.model) {
            let (key, what) = match &plan.model {
                SdeForm::Expr(_) => ("drift", "expressions whose generated WGSL compiles"),
                SdeForm::Wgsl(_) => (
                    "wgsl",
                    "a WGSL file defining fn user_drift(x: Point, t: f32) -> Point and fn \
                     user_diffusion(x: Point, t: f32) -> f32 that compiles with the sde shader",
                ),
            };
            issues.add(
                &sec.key(key),
                sec.get(key),
                format!("{what}; naga says: {why}"),
            );
            return None;
        }
        Some((plan, None))
    }
}

/// Points per histogram axis and times at which D is checked to be >= 0.
const CHECK_POINTS: usize = 65;
const CHECK_TIMES: usize = 9;

impl Dynamics for SdePlan {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn time_per_step(&self) -> f64 {
        self.dt
    }

    fn references(&self) -> References<'_> {
        match &self.model {
            SdeForm::Expr(model) => References::Sde { model },
            SdeForm::Wgsl(_) => References::None,
        }
    }

    /// D must be >= 0 where the particles are observed: on a 65-point grid per histogram
    /// axis over the histogram range (other coordinates 0) at 9 times from 0 to t_end. A D
    /// negative elsewhere shows up as non-finite particles at run time (exit 3).
    fn check_plan(&self, plan: &Plan) -> Vec<ScenarioIssue> {
        let SdeForm::Expr(model) = &self.model else {
            return Vec::new();
        };
        let spec = &plan.output.histogram;
        let dim = model.dim();
        let params = model.params();
        let mut scratch = Vec::new();
        let mut out = vec![0.0; 2 * dim + 1];
        let axes: Vec<usize> = spec.axes.iter().map(|&a| a as usize).collect();
        let points = CHECK_POINTS.pow(axes.len() as u32);
        for k in 0..CHECK_TIMES {
            let t = self.t_end * k as f64 / (CHECK_TIMES - 1) as f64;
            for p in 0..points {
                let mut x = vec![0.0; dim];
                let mut rest = p;
                for (j, &a) in axes.iter().enumerate() {
                    let i = rest % CHECK_POINTS;
                    rest /= CHECK_POINTS;
                    let [lo, hi] = spec.range[j];
                    x[a] = lo + (hi - lo) * i as f64 / (CHECK_POINTS - 1) as f64;
                }
                model.eval_into(&x, t, &params, &mut scratch, &mut out);
                let d = out[dim];
                if !(d.is_finite() && d >= 0.0) {
                    return vec![ScenarioIssue {
                        key: "dynamics.diffusion".into(),
                        value: format!("\"{}\"", model.source().diffusion),
                        allowed: format!(
                            "D(x, t) >= 0 and finite on the histogram box; D = {d} at x = \
                             {x:?}, t = {t}"
                        ),
                    }];
                }
            }
        }
        Vec::new()
    }

    /// Walls, periodic axes, targets and basins after every step, as for Langevin
    /// (shaders/sde.wgsl with common/boundary.wgsl); the grid reference follows them.
    fn boundary_refusal(&self, _: &crate::scenario::Boundary) -> Option<String> {
        None
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        let (source, params) = sde_shader(&self.model)
            .map_err(|why| Error::Device(format!("the sde shader did not compose: {why}")))?;
        let overrides = first_passage::overrides(cx.boundary, cx.ensemble.tag_stride);
        Ok(Box::new(LangevinGpu::with_shader(
            cx.gpu,
            cx.ensemble,
            &EulerShader {
                label: "sde",
                source: &source,
                entry: "main",
                overrides: &overrides,
                params: &params,
                tags: true,
                bounds: first_passage::spec_vec4s(cx.boundary),
                counters: first_passage::basin_counter_words(cx.boundary.basins.len()),
            },
            self.dt,
            0.0,
            cx.seed,
            cx.workgroup_size,
        )))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        let SdeForm::Expr(model) = &self.model else {
            return Err(Error::Usage(
                "a WGSL sde model has no CPU twin (write it as expressions)".into(),
            ));
        };
        sde_cpu(
            &mut state.positions,
            cx.dim,
            0,
            model,
            self.dt,
            cx.seed,
            cx.step0,
            cx.steps,
        );
        Ok(())
    }
}

/// CPU twin of shaders/sde.wgsl in f64: particles `first ..` (row-major `positions`) through
/// steps `step0 .. step0 + steps` with the GPU's Philox noise.
#[allow(clippy::too_many_arguments)]
pub fn sde_cpu(
    positions: &mut [f64],
    dim: u32,
    first: u64,
    model: &SdeModel,
    dt: f64,
    seed: u64,
    step0: u64,
    steps: u64,
) {
    let key = rng::key_from_seed(seed);
    let d = dim as usize;
    let params = model.params();
    let mut scratch = Vec::new();
    let mut out = vec![0.0; 2 * d + 1];
    for (i, x) in positions.chunks_exact_mut(d).enumerate() {
        let mut noise = NoiseStream::new(key, first + i as u64, step0, dim);
        for k in step0..step0 + steps {
            let t = k as f64 * dt;
            model.eval_into(x, t, &params, &mut scratch, &mut out);
            let scale = (2.0 * out[d] * dt).sqrt();
            for c in 0..d {
                x[c] += out[c] * dt + scale * noise.next_normal();
            }
        }
    }
}
