//! Code generated from expressions, run on the GPU: values and gradients of potentials,
//! drifts and diffusions, functions of time and pair potentials against the f64 tape, each
//! within the tape's own f32 error bound (`Tape::f32_error_bounds`, from the WGSL accuracy
//! table), at thousands of points per expression; then whole runs: an annealing schedule
//! against the chain's own law, `kind = "sde"` against the exact law of a linear chain and
//! against its f64 twin particle by particle.

mod common;

use common::f32err::{NORMAL_ERROR, U, carry_bounds, spectral_norm_bound};
use common::sim::{largest_difference, noise_word_boundary, run_block, twin_start};
use common::stats;
use fokker::dynamics::DynamicsPlan;
use fokker::dynamics::init::init_cpu;
use fokker::dynamics::sde::{SdeForm, SdePlan, sde_cpu};
use fokker::gpu::{Gpu, Kernel};
use fokker::model::expr::parse::{Names, parse};
use fokker::model::expr::tape::F32_ULP;
use fokker::model::expr::tree::{self, Var};
use fokker::model::expr::{
    ExprPotential, Params, Point, PotentialSource, SdeModel, SdeSource, Tape, TimeExpr, TimeSource,
    point_lane,
};
use fokker::model::{Potential, Temperature};
use fokker::observe::{histogram_cpu, moments_cpu};
use fokker::rng;
use fokker::scenario::*;
use fokker::simulation::{Layout, Simulation};

/// Floats per point in and out: coordinates 0..7 and t in; the scalar and the point's 8
/// lanes out.
const STRIDE: usize = 9;

/// The test kernel around `functions`, which define `test_scalar(x: Point, t: f32) -> f32`
/// and `test_point(x: Point, t: f32) -> Point` (reading `potential_params`).
fn kernel_source(functions: &str) -> String {
    let lanes: String = (0..8)
        .map(|k| format!("    outputs[b + {}u] = {};\n", k + 1, point_lane("p", k)))
        .collect();
    format!(
        "struct Point {{
    a: vec4<f32>,
    b: vec4<f32>,
}}

@group(0) @binding(0) var<storage, read> inputs: array<f32>;
@group(0) @binding(1) var<storage, read> potential_params: array<f32>;
@group(0) @binding(2) var<storage, read_write> outputs: array<f32>;
override WG: u32 = 64u;

{functions}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
    // The params are bound even where no expression reads them.
    _ = potential_params[0];
    let i = gid.x;
    if (i >= arrayLength(&inputs) / {STRIDE}u) {{ return; }}
    let b = {STRIDE}u * i;
    let x = Point(
        vec4<f32>(inputs[b], inputs[b + 1u], inputs[b + 2u], inputs[b + 3u]),
        vec4<f32>(inputs[b + 4u], inputs[b + 5u], inputs[b + 6u], inputs[b + 7u]),
    );
    let t = inputs[b + 8u];
    let p = test_point(x, t);
    outputs[b] = test_scalar(x, t);
{lanes}}}
"
    )
}

/// Runs the kernel of `functions` on `inputs` (STRIDE floats per point) with `params`.
fn run_kernel(gpu: &Gpu, name: &str, functions: &str, inputs: &[f32], params: &[f64]) -> Vec<f32> {
    let source = kernel_source(functions);
    if let Err(why) = fokker::shaders::validate(&source) {
        panic!("{name}: the test kernel does not validate: {why}\n{source}");
    }
    let kernel = Kernel::new(gpu, name, &source, &[], 64);
    let mut p: Vec<f32> = params.iter().map(|&v| v as f32).collect();
    if p.is_empty() {
        p.push(0.0);
    }
    let input = gpu.storage_with("inputs", bytemuck::cast_slice(inputs));
    let params = gpu.storage_with("potential_params", bytemuck::cast_slice(&p));
    let bytes = 4 * inputs.len() as u64;
    let output = gpu.storage_buffer("outputs", bytes, wgpu::BufferUsages::empty());
    let bind = kernel.bind(gpu, &[&input, &params, &output]);
    let points = (inputs.len() / STRIDE) as u32;
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        kernel.dispatch(
            &mut pass,
            &bind,
            points.div_ceil(64),
            gpu.limits.max_compute_workgroups_per_dimension,
        );
    }
    gpu.queue.submit([encoder.finish()]);
    let out = gpu.read_bytes(&output, 0, bytes).expect("readback");
    gpu.check().expect("no device errors");
    bytemuck::cast_slice(&out).to_vec()
}

/// One generated model: its WGSL (`test_scalar`, `test_point`), the tape whose outputs are
/// the scalar and then the point's first `lanes` lanes (the rest must be 0), its params, and
/// the box of points and times where the WGSL accuracy table bounds every function it calls.
struct Case {
    name: String,
    functions: String,
    tape: Tape,
    lanes: usize,
    params: Vec<f64>,
    /// Per axis (as many as the expression has), and for t.
    boxes: Vec<[f64; 2]>,
    t: [f64; 2],
}

fn params(list: &[(&str, f64)]) -> Params {
    list.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn potential(name: &str, expr: &str, dim: usize, p: &[(&str, f64)], boxes: Vec<[f64; 2]>) -> Case {
    let u = ExprPotential::new(PotentialSource {
        expr: expr.into(),
        params: params(p),
        dim,
    })
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(boxes.len(), dim);
    Case {
        name: name.into(),
        functions: format!(
            "{}{}fn test_scalar(x: Point, t: f32) -> f32 {{ return user_value(x, t); }}\n\
             fn test_point(x: Point, t: f32) -> Point {{ return user_gradient(x, t); }}\n",
            u.wgsl_value(),
            u.wgsl()
        ),
        tape: u.tape().clone(),
        lanes: dim,
        params: u.params(),
        boxes,
        t: [0.0, 3.0],
    }
}

/// The drift as the point and D as the scalar.
fn sde(
    name: &str,
    drift: &[&str],
    diffusion: &str,
    p: &[(&str, f64)],
    boxes: Vec<[f64; 2]>,
) -> Case {
    let m = SdeModel::new(SdeSource {
        drift: drift.iter().map(|s| s.to_string()).collect(),
        diffusion: diffusion.into(),
        params: params(p),
    })
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let dim = m.dim();
    // The model's tape: f_0 .. f_{dim-1}, D, grad D; here D first, then f.
    let mut tape = m.tape().clone();
    let outputs = tape.outputs.clone();
    tape.outputs = std::iter::once(outputs[dim])
        .chain(outputs[..dim].iter().copied())
        .collect();
    Case {
        name: name.into(),
        functions: format!(
            "{}{}fn test_scalar(x: Point, t: f32) -> f32 {{ return user_diffusion(x, t); }}\n\
             fn test_point(x: Point, t: f32) -> Point {{ return user_drift(x, t); }}\n",
            m.wgsl_drift("potential_params"),
            m.wgsl_diffusion("potential_params")
        ),
        tape,
        lanes: dim,
        params: m.params(),
        boxes,
        t: [0.0, 3.0],
    }
}

/// A function of time (a temperature schedule) as the scalar; the point is 0.
fn time(name: &str, expr: &str, p: &[(&str, f64)], t: [f64; 2]) -> Case {
    let params = params(p);
    let f = fokker::model::expr::TimeExpr::new(fokker::model::expr::TimeSource {
        expr: expr.into(),
        params: params.clone(),
    })
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    // The same tape TimeExpr compiles (its source under the names of a schedule).
    let names: Vec<String> = params.keys().cloned().collect();
    let e = parse(
        expr,
        &Names {
            dim: 0,
            time: true,
            space: false,
            pair: false,
            params: &names,
        },
    )
    .expect("parses");
    Case {
        name: name.into(),
        functions: format!(
            "{}fn test_scalar(x: Point, t: f32) -> f32 {{ return user_temperature(t); }}\n\
             fn test_point(x: Point, t: f32) -> Point {{ return Point(vec4<f32>(0.0), vec4<f32>(0.0)); }}\n",
            f.wgsl("user_temperature", &|k| format!("potential_params[{k}u]"))
        ),
        tape: Tape::new(&[e]),
        lanes: 0,
        params: f.params(),
        boxes: Vec::new(),
        t,
    }
}

/// A pair potential at s = coordinate 0: W as the scalar, 2 W'(s) as lane 0.
fn pair(name: &str, expr: &str, p: &[(&str, f64)], s: [f64; 2]) -> Case {
    let params = params(p);
    let w = fokker::model::expr::PairPotential::new(fokker::model::expr::TimeSource {
        expr: expr.into(),
        params: params.clone(),
    })
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    // The same tape PairPotential compiles: W and 2 dW/ds.
    let names: Vec<String> = params.keys().cloned().collect();
    let e = parse(
        expr,
        &Names {
            dim: 0,
            time: false,
            space: false,
            pair: true,
            params: &names,
        },
    )
    .expect("parses");
    let dw = tree::mul(tree::num(2.0), tree::derivative(&e, Var::S));
    Case {
        name: name.into(),
        functions: format!(
            "{}fn test_scalar(x: Point, t: f32) -> f32 {{ return user_pair(x.a.x).x; }}\n\
             fn test_point(x: Point, t: f32) -> Point {{\n    \
             return Point(vec4<f32>(user_pair(x.a.x).y, 0.0, 0.0, 0.0), vec4<f32>(0.0));\n}}\n",
            w.wgsl("potential_params")
        ),
        tape: Tape::new(&[e, dw]),
        lanes: 1,
        params: w.params(),
        boxes: vec![s],
        t: [0.0, 0.0],
    }
}

/// Uniform numbers in [0, 1) from Philox (a stream of its own).
struct Uniforms {
    key: [u32; 2],
    block: u32,
    words: Vec<u32>,
}

impl Uniforms {
    fn new(seed: u64) -> Self {
        Uniforms {
            key: rng::key_from_seed(seed),
            block: 0,
            words: Vec::new(),
        }
    }

    fn next(&mut self) -> f64 {
        if self.words.is_empty() {
            let w = rng::philox4x32_10(rng::counter(0, self.block, 99), self.key);
            self.block += 1;
            self.words.extend_from_slice(&w);
        }
        rng::unit_closed_open(self.words.pop().expect("refilled"))
    }
}

const POINTS: usize = 4096;

/// Runs `case` at POINTS points of its box and checks every output against the f64 tape
/// within its bound (finite everywhere: the boxes are where the accuracy table applies),
/// and the point's unused lanes are exactly 0. Returns the largest error / bound.
fn check(gpu: &Gpu, case: &Case, seed: u64) -> f64 {
    let mut u = Uniforms::new(seed);
    let dim = case.boxes.len();
    let mut inputs = vec![0f32; POINTS * STRIDE];
    for row in inputs.chunks_exact_mut(STRIDE) {
        for (k, slot) in row[..8].iter_mut().enumerate() {
            // Lanes past the expression's axes hold NaN: reading one shows.
            *slot = match case.boxes.get(k) {
                Some([lo, hi]) => (lo + (hi - lo) * u.next()) as f32,
                None => f32::NAN,
            };
        }
        row[8] = (case.t[0] + (case.t[1] - case.t[0]) * u.next()) as f32;
    }
    let out = run_kernel(gpu, &case.name, &case.functions, &inputs, &case.params);
    let mut worst: f64 = 0.0;
    for (i, (row, got)) in inputs
        .chunks_exact(STRIDE)
        .zip(out.chunks_exact(STRIDE))
        .enumerate()
    {
        let x: Vec<f64> = row[..dim].iter().map(|&v| f64::from(v)).collect();
        let at = Point {
            x: &x,
            t: f64::from(row[8]),
            s: x.first().copied().unwrap_or(0.0),
        };
        let want = case.tape.eval(&at, &case.params);
        let bound = case.tape.f32_error_bounds(&at, &case.params);
        for k in 0..=case.lanes {
            assert!(
                want[k].is_finite() && bound[k].is_finite(),
                "{}: point {i} {x:?}, t = {}: output {k} = {} with bound {} (the box must keep \
                 every function inside the accuracy table)",
                case.name,
                at.t,
                want[k],
                bound[k]
            );
            let err = (f64::from(got[k]) - want[k]).abs();
            assert!(
                err <= bound[k],
                "{}: point {i} {x:?}, t = {}: output {k}: gpu {} vs f64 {}, off by {err:e} > \
                 bound {:e}\n{}",
                case.name,
                at.t,
                got[k],
                want[k],
                bound[k],
                case.functions
            );
            if bound[k] > 0.0 && err / bound[k] > worst {
                worst = err / bound[k];
                if std::env::var("DEBUG_WORST").is_ok() {
                    println!(
                        "  {} k={k} x={x:?} t={} gpu={} f64={} err={err:e} bound={:e}",
                        case.name, at.t, got[k], want[k], bound[k]
                    );
                }
            }
        }
        for (k, &v) in got.iter().enumerate().skip(case.lanes + 1) {
            assert_eq!(v, 0.0, "{}: point {i}: unused output {k}", case.name);
        }
    }
    worst
}

/// Müller–Brown written out term by term (the standard constants; `s` scales it).
const MUELLER_BROWN: &str = "s*(-200*exp(-(x - 1)^2 - 10*y^2) \
    - 100*exp(-x^2 - 10*(y - 0.5)^2) \
    - 170*exp(-6.5*(x + 0.5)^2 + 11*(x + 0.5)*(y - 1.5) - 6.5*(y - 1.5)^2) \
    + 15*exp(0.7*(x + 1)^2 + 0.6*(x + 1)*(y - 1) + 0.7*(y - 1)^2))";

/// A potential in `dim` coordinates x0 .. x{dim-1}: a quadratic with neighbour couplings, a
/// quartic and a Gaussian bump over all axes.
fn coupled(dim: usize) -> String {
    let mut terms: Vec<String> = (0..dim)
        .map(|i| format!("{}*x{i}^2", 0.5 + 0.25 * i as f64))
        .collect();
    terms.extend((1..dim).map(|i| format!("0.3*x{}*x{i}", i - 1)));
    terms.push("0.1*x0^4".into());
    let squares: Vec<String> = (0..dim).map(|i| format!("x{i}^2")).collect();
    terms.push(format!("exp(-0.2*({}))", squares.join(" + ")));
    terms.join(" + ")
}

/// Every kind of generated function against the f64 tape it was printed from, at 4096
/// points of a box where the WGSL accuracy table bounds every function the expression calls:
/// each output within `Tape::f32_error_bounds` (finite everywhere, checked), lanes past the
/// model's axes exactly 0 and coordinates past them never read (they hold NaN). A wrong
/// operand, operator, select order, lane or param index is off by far more than f32 error.
#[test]
fn generated_code_agrees_with_the_f64_tape_within_its_bound() {
    let gpu = common::gpu();
    let square = |lo: f64, hi: f64, d: usize| vec![[lo, hi]; d];
    let mut cases = vec![
        // The potential; |3x| <= pi keeps sin and cos inside their accuracy range.
        potential(
            "issue",
            "a*(x^2 - 1)^2 + 0.5*k*y^2 + c*sin(3*x)*exp(-t)",
            2,
            &[("a", 1.3), ("k", 4.1), ("c", 0.2)],
            vec![[-1.04, 1.04], [-3.0, 3.0]],
        ),
        potential(
            "Mueller-Brown",
            MUELLER_BROWN,
            2,
            &[("s", 0.05)],
            vec![[-1.5, 1.2], [-0.5, 2.0]],
        ),
        potential(
            "mixture log-sum-exp",
            "-log(w1*exp(-0.5*((x - m1)^2 + y^2 + z^2)/v1) + w2*exp(-0.5*((x + m1)^2 + (y - 1)^2 \
             + z^2)/v2) + (1 - w1 - w2)*exp(-0.5*(x^2 + (y + 1)^2 + (z - 0.5)^2)/v1))",
            3,
            &[
                ("w1", 0.3),
                ("w2", 0.45),
                ("m1", 1.2),
                ("v1", 0.35),
                ("v2", 0.8),
            ],
            square(-3.0, 3.0, 3),
        ),
        potential(
            "rational",
            "(x^2 + 1)/(y^2 + 2) + x*y/(1 + x^2 + y^2) + (1 + x^2)^-3",
            2,
            &[],
            square(-2.5, 2.5, 2),
        ),
        // y away from 0: atan2's accuracy needs a normal y.
        potential(
            "atan2 min max abs",
            "atan2(y, x + 3) + min(x, y)^2 + max(abs(x) - 1, 0.5*y) + abs(x*y - 0.3)",
            2,
            &[],
            vec![[-2.0, 2.0], [0.05, 2.0]],
        ),
        potential(
            "powers",
            "x^7 - 3*x^-2*y^4 + (x^2 + y^2 + 1)^1.5 + pow(1 + y^2, 0.25) + x^64 + y^-5",
            2,
            &[],
            vec![[0.5, 1.1], [0.6, 1.5]],
        ),
        potential(
            "hyperbolic log sqrt tan",
            "tanh(x)*y + sinh(0.5*y) + cosh(0.3*x) + tan(0.5*x) + sqrt(2 + y^2) + log(1 + x^2)",
            2,
            &[],
            square(-3.0, 3.0, 2),
        ),
        sde(
            "sde nonlinear",
            &["-x^3 + y", "-y"],
            "0.5 + 0.4*tanh(x)",
            &[],
            square(-2.0, 2.0, 2),
        ),
        sde(
            "sde linear",
            &["b11*x + b12*y + c1", "b21*x + b22*y + c2"],
            "d",
            &[
                ("b11", -1.0),
                ("b12", 2.0),
                ("b21", -0.5),
                ("b22", -1.5),
                ("c1", 0.3),
                ("c2", -0.7),
                ("d", 0.4),
            ],
            square(-3.0, 3.0, 2),
        ),
        time("schedule", "0.05 + 0.95*exp(-t)", &[], [0.0, 10.0]),
        time(
            "logarithmic schedule",
            "T0 / log(2 + t)",
            &[("T0", 1.7)],
            [0.0, 100.0],
        ),
        pair(
            "Lennard-Jones",
            "eps*((sig/r)^12 - 2*(sig/r)^6)",
            &[("eps", 0.8), ("sig", 1.1)],
            [0.8, 4.0],
        ),
        pair("soft pair", "exp(-r^2/2) + 1/(1 + r)", &[], [0.0, 9.0]),
    ];
    for dim in 1..=8 {
        cases.push(potential(
            &format!("coupled, dim {dim}"),
            &coupled(dim),
            dim,
            &[],
            square(-2.0, 2.0, dim),
        ));
    }
    for (k, case) in cases.iter().enumerate() {
        let worst = check(&gpu, case, 1000 + k as u64);
        println!("{}: largest error / bound {worst:.3}", case.name);
    }
}

fn plan(count: u64, dim: u32, init: Init, dynamics: DynamicsPlan, hist: HistogramSpec) -> Plan {
    Plan {
        name: None,
        seed: 42,
        boundary: Default::default(),
        particles: ParticlesPlan { count, dim, init },
        dynamics,
        output: OutputPlan {
            every_steps: None,
            histogram: hist,
            heatmap: HeatmapSpec {
                colormap: "viridis".into(),
                scale: Scale::Log,
            },
            particles: ParticlesOutput::None,
            gif: false,
            trajectories: 0,
            reference: None,
            marginals: Vec::new(),
        },
    }
}

/// Runs `plan` to its end: the final positions.
fn run_positions(plan: &Plan) -> Vec<f32> {
    let gpu = common::gpu();
    let count = plan.particles.count;
    let mut sim =
        Simulation::new(&gpu, plan, None, None, 0, count, &Layout::default()).expect("simulation");
    sim.advance_to(plan.dynamics.steps(), |_| Ok(()), &|| false)
        .expect("advance");
    sim.positions().expect("positions")
}

fn sde_model(drift: &[&str], diffusion: &str, p: &[(&str, f64)]) -> SdeModel {
    SdeModel::new(SdeSource {
        drift: drift.iter().map(|s| s.to_string()).collect(),
        diffusion: diffusion.into(),
        params: params(p),
    })
    .expect("compiles")
}

fn sde_dynamics(model: SdeModel, dt: f64, steps: u64) -> DynamicsPlan {
    DynamicsPlan::Sde(SdePlan {
        model: SdeForm::Expr(model),
        dt,
        steps,
        t_end: steps as f64 * dt,
    })
}

/// Annealing in the 1D double well U = (x^2 - 1)^2 from x = 0, T(t) = 0.05 + 0.95 e^-t
/// written as a schedule, to t = 6 (T = 0.052), observed at t = 1 and t = 6. The
/// Euler–Maruyama chain's own law, with the temperature of each step, comes from its
/// transition operator (tests/common/chain.rs, cells of 1/200, a tenth of a bin), so the
/// histograms need no time-step allowance: Pearson's statistic against it is below its
/// chi-square limit (a schedule shifted by 0.2 in time already gives ten times the limit at
/// t = 1, where the law still depends on the whole schedule so far). And since U is even and
/// the start symmetric, each particle of the chain ends in either well with probability 1/2
/// exactly: at the end, the fraction at x > 0 is 1/2 within Hoeffding's
/// sqrt(ln(2 / FALSE_ALARM) / (2 N)) (2.7 / sqrt(N), 5.4 binomial standard deviations
/// sqrt(1/4 / N): the non-asymptotic bound, exceeded with probability at most FALSE_ALARM by a
/// correct run), plus the mass f32 could move across 0: a particle f32 moves by less than 1/2
/// (its carried bounds are of order 1e-3, tests/langevin_gpu.rs) changes side only if the
/// chain puts it within 1/2 of the barrier top, where the cooled chain's law holds 5e-6.
#[test]
fn annealing_splits_the_double_well_evenly() {
    let (n, dt, steps) = (100_000u64, 0.01, 600u64);
    // Histograms at t = 1 (T = 0.40, still crossing the barrier: the law there depends on
    // the whole schedule so far) and at the end.
    let checkpoints = [100u64, steps];
    let schedule = TimeExpr::new(TimeSource {
        expr: "0.05 + 0.95*exp(-t)".into(),
        params: Params::new(),
    })
    .expect("compiles");
    let (bins, lo, hi) = (100usize, -2.5, 2.5);
    let spec = HistogramSpec {
        axes: vec![0],
        bins: vec![bins as u32],
        range: vec![[lo, hi]],
    };
    let dynamics = DynamicsPlan::Langevin(fokker::dynamics::langevin::LangevinPlan {
        potential: Potential::DoubleWell,
        temperature: Temperature::Expr(schedule.clone()),
        dt: dt.into(),
        steps,
        t_end: steps as f64 * dt,
        mala: false,
    });
    let p = plan(n, 1, Init::Point { at: vec![0.0] }, dynamics, spec.clone());
    let gpu = common::gpu();
    let mut sim =
        Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default()).expect("simulation");
    let law = common::chain::scheduled_chain_law(
        &|x| 4.0 * x * (x * x - 1.0),
        &|k| schedule.at(k as f64 * dt),
        dt,
        0.0,
        lo,
        hi,
        1.0 / 200.0,
        &checkpoints,
    );
    assert!(
        law.lost.abs() < 1e-9,
        "the grid holds the law: lost {}",
        law.lost
    );
    for (k, &step) in checkpoints.iter().enumerate() {
        sim.advance_to(step, |_| Ok(()), &|| false)
            .expect("advance");
        let pos: Vec<f64> = sim
            .positions()
            .expect("positions")
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let probs = law.bins(k, bins, lo, hi);
        let left: f64 = probs[..bins / 2].iter().sum();
        assert!(
            (left - 0.5).abs() < 1e-9,
            "the chain's law is symmetric: {left}"
        );
        let counts = histogram_cpu(&pos, 1, &spec).counts;
        let (mut stat, mut dof) = (0.0, 0usize);
        for (&o, &q) in counts.iter().zip(&probs) {
            let e = q * n as f64;
            if e >= 5.0 {
                stat += (o as f64 - e).powi(2) / e;
                dof += 1;
            }
        }
        let dof = dof - 1;
        let limit = stats::chi_square_limit(dof);
        assert!(
            dof >= 10 && stat < limit,
            "step {step}: chi-square {stat:.1} over {dof} dof exceeds {limit:.1}"
        );
        // The chain's mass on the barrier, |x| < 1/2: where f32 could change a side.
        let barrier: f64 = probs[bins * 2 / 5..bins * 3 / 5].iter().sum();
        let right = pos.iter().filter(|&&x| x > 0.0).count() as f64 / n as f64;
        let allowed = ((2.0 / stats::FALSE_ALARM).ln() / (2.0 * n as f64)).sqrt() + barrier;
        if step == steps {
            assert!(
                (right - 0.5).abs() <= allowed,
                "mass at x > 0: {right} (1/2 within {allowed:.4})"
            );
        }
        println!(
            "step {step}: chi-square {stat:.1} over {dof} dof (limit {limit:.1}); x > 0: \
             {right:.4}; chain mass at |x| < 1/2: {barrier:.1e}"
        );
    }
}

/// Drift f = B x + c with a non-symmetric B (eigenvalues -1.25 +- 0.97 i) and constant D:
/// Euler–Maruyama is the linear Gaussian recursion x' = M x + dt c + sqrt(2 D dt) xi,
/// M = I + dt B, so from the point x0 its law after k steps is Gaussian with mean
/// m' = M m + dt c and covariance S' = M S M^T + 2 D dt I, iterated exactly in f64. The
/// sample mean and covariance of N particles are within Z_LIMIT standard errors of them
/// (sqrt(S_ii / N); for the covariance (S_aa S_bb + S_ab^2) / N, and its 1/N normalisation's
/// bias S_ab / N), plus f32's bound on how far a particle's coordinate can have moved
/// (below).
#[test]
fn sde_linear_drift_matches_the_exact_chain_law() {
    let (n, dt, steps) = (200_000u64, 0.01, 100u64);
    let b = [[-1.0, 2.0], [-0.5, -1.5]];
    let c = [0.3, -0.7];
    let d = 0.4;
    let x0 = [1.5, -1.0];
    let model = sde_model(
        &["b11*x + b12*y + c1", "b21*x + b22*y + c2"],
        "d",
        &[
            ("b11", b[0][0]),
            ("b12", b[0][1]),
            ("b21", b[1][0]),
            ("b22", b[1][1]),
            ("c1", c[0]),
            ("c2", c[1]),
            ("d", d),
        ],
    );
    let spec = HistogramSpec {
        axes: vec![0, 1],
        bins: vec![8, 8],
        range: vec![[-3.0, 3.0], [-3.0, 3.0]],
    };
    let p = plan(
        n,
        2,
        Init::Point { at: x0.to_vec() },
        sde_dynamics(model, dt, steps),
        spec,
    );
    let pos: Vec<f64> = run_positions(&p).iter().map(|&v| f64::from(v)).collect();
    let got = moments_cpu(&pos, 2);
    // The chain's exact law, and beside it f32's bound e on how far a coordinate of a
    // particle can be from its exact-arithmetic chain, carried by |M|_inf: per step the
    // uploaded params and dt are rounded (u), f = (b1 x + b2 y) + c costs two products and
    // two sums and f dt one more (1 ULP each), s = sqrt((2 D) dt) is within 6 ULP (half of
    // D's and dt's rounding and a product, 4.5 ULP for sqrt), s xi one more and the f32
    // normal NORMAL_ERROR s, the two sums one ULP of their results each. With X a bound on
    // the coordinates' size, per step
    // r = ULP (3 X + 6 dt (|B| X + |c|) + 8 s |xi|) + s NORMAL_ERROR. r is linear in X and
    // |xi|, so with X = sum_i |m_i| + sd_i and |xi| -> 1 it bounds the mean and the root
    // mean square of the displacement over the ensemble.
    let m_step = [
        [1.0 + dt * b[0][0], dt * b[0][1]],
        [dt * b[1][0], 1.0 + dt * b[1][1]],
    ];
    let m_norm = m_step
        .iter()
        .map(|r| r[0].abs() + r[1].abs())
        .fold(0.0, f64::max);
    let b_norm = b
        .iter()
        .map(|r| r[0].abs() + r[1].abs())
        .fold(0.0, f64::max);
    let s = (2.0 * d * dt).sqrt();
    let mut mean = x0;
    let mut cov = [[0.0f64; 2]; 2];
    let mut e = 0.0;
    for _ in 0..steps {
        let scale: f64 = (0..2).map(|i| mean[i].abs() + cov[i][i].sqrt()).sum();
        let c_max = c[0].abs().max(c[1].abs());
        e = m_norm * e
            + F32_ULP * (3.0 * scale + 6.0 * dt * (b_norm * scale + c_max) + 8.0 * s)
            + s * NORMAL_ERROR;
        mean = [
            m_step[0][0] * mean[0] + m_step[0][1] * mean[1] + dt * c[0],
            m_step[1][0] * mean[0] + m_step[1][1] * mean[1] + dt * c[1],
        ];
        let mut next = [[0.0; 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                next[i][j] = (0..2)
                    .flat_map(|k| (0..2).map(move |l| (k, l)))
                    .map(|(k, l)| m_step[i][k] * cov[k][l] * m_step[j][l])
                    .sum::<f64>()
                    + if i == j { 2.0 * d * dt } else { 0.0 };
            }
        }
        cov = next;
    }
    let nf = n as f64;
    for i in 0..2 {
        let tol = stats::Z_LIMIT * (cov[i][i] / nf).sqrt() + e;
        assert!(
            (got.mean[i] - mean[i]).abs() <= tol,
            "mean {i}: {} vs the chain's {} (tolerance {tol:.2e})",
            got.mean[i],
            mean[i]
        );
        for j in 0..2 {
            let se = ((cov[i][i] * cov[j][j] + cov[i][j].powi(2)) / nf).sqrt();
            let f32_part = (cov[i][i].sqrt() + cov[j][j].sqrt()) * e + e * e;
            let tol = stats::Z_LIMIT * se + cov[i][j].abs() / nf + f32_part;
            assert!(
                (got.cov[i * 2 + j] - cov[i][j]).abs() <= tol,
                "cov {i} {j}: {} vs the chain's {} (tolerance {tol:.2e})",
                got.cov[i * 2 + j],
                cov[i][j]
            );
        }
    }
    println!(
        "mean {:?} vs {mean:?}; cov {:?} vs {cov:?}; f32 bound {e:.1e}",
        got.mean, got.cov
    );
}

/// The general SDE with a nonlinear drift and a position-dependent D, GPU against its f64
/// twin (`sde_cpu`, the same Philox noise) particle by particle: each particle within the f32
/// bound carried along its own twin trajectory (below), and the histograms differ only by
/// particles within their bound of a bin edge.
#[test]
fn sde_gpu_agrees_with_its_twin() {
    let (n, dt, steps) = (2000u64, 5e-3, 200u64);
    let model = sde_model(&["-x^3 + y", "-y"], "0.5 + 0.4*tanh(x)", &[]);
    let init = Init::Gaussian {
        mean: vec![0.0, 0.0],
        std: vec![1.0, 1.0],
    };
    let spec = HistogramSpec {
        axes: vec![0, 1],
        bins: vec![16, 16],
        range: vec![[-3.0, 3.0], [-3.0, 3.0]],
    };
    let p = plan(
        n,
        2,
        init.clone(),
        sde_dynamics(model.clone(), dt, steps),
        spec.clone(),
    );
    let gpu_pos = run_positions(&p);
    let mut twin = init_cpu(&init, None, 2, 0, n, n, p.seed);
    // The f32 initial sampling: 3 u |x| (shift, scale, store) and the f32 normal's error.
    let mut bound: Vec<f64> = twin
        .chunks_exact(2)
        .map(|r| 3.0 * U * r[0].abs().max(r[1].abs()) + NORMAL_ERROR)
        .collect();
    sde_twin_with_bounds(&mut twin, &mut bound, &model, dt, p.seed, steps);
    let mut worst: f64 = 0.0;
    for (k, (g, c)) in gpu_pos
        .chunks_exact(2)
        .zip(twin.chunks_exact(2))
        .enumerate()
    {
        let diff = (0..2)
            .map(|i| (f64::from(g[i]) - c[i]).abs())
            .fold(0.0, f64::max);
        worst = worst.max(diff / bound[k]);
        assert!(
            diff <= bound[k],
            "particle {k}: gpu {g:?} vs twin {c:?}, off by {diff:e} > bound {:e}",
            bound[k]
        );
    }
    let gpu64: Vec<f64> = gpu_pos.iter().map(|&v| f64::from(v)).collect();
    let (hg, hc) = (
        histogram_cpu(&gpu64, 2, &spec),
        histogram_cpu(&twin, 2, &spec),
    );
    let moved = stats::counts_moved(&hg.counts, &hc.counts);
    let near = stats::near_edges(&twin, 2, &spec, &bound);
    assert!(
        moved <= 2 * near,
        "{moved} counts moved between GPU and twin; {near} particles near an edge"
    );
    let mut sorted = bound.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "largest error / bound {worst:.3}; bounds: median {:.1e}, largest {:.1e}; {moved} \
         counts moved, {near} particles near an edge",
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
}

/// `sde_cpu` one step at a time from `x` (rows of 2; time-independent models), and with it
/// a first-order bound on how far the f32 GPU particle can be (max norm). The step is
/// x' = x + f(x) dt + s(x) xi with s = sqrt(2 D dt): an error e is carried on by its
/// Jacobian J = I + dt Df + xi grad(s)^T, grad s = dt grad D / s (Df by central differences
/// of the f64 drift, grad D from the model's tape), bounded per coordinate and in the 2-norm
/// as in tests/langevin_gpu.rs's `twin_with_bounds` (`carry_bounds`). The step's own rounding r, per
/// coordinate: f and D within their tape bounds e_f, e_D (`Tape::f32_error_bounds`), dt
/// rounded on upload (e_dt); f dt within e_f dt + |f| e_dt + 1 ULP; s within
/// s ((e_D / D + e_dt / dt + 1 ULP) / 2 + 4.5 ULP) (the product (2 D) dt, then sqrt's
/// inherited 4.5 ULP); s xi within that times |xi| plus s NORMAL_ERROR and 1 ULP; the two
/// sums 1 ULP of their results.
fn sde_twin_with_bounds(
    x: &mut [f64],
    e: &mut [f64],
    model: &SdeModel,
    dt: f64,
    seed: u64,
    steps: u64,
) {
    let d = model.dim();
    let params = model.params();
    let root_d = (d as f64).sqrt();
    let e_dt = (dt - f64::from(dt as f32)).abs();
    let drift = |x: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; 2 * d + 1];
        model.eval_into(x, 0.0, &params, &mut Vec::new(), &mut out);
        out
    };
    let norm = |v: &[f64]| v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    for (p, (row, e)) in x.chunks_exact_mut(d).zip(e.iter_mut()).enumerate() {
        let mut each = vec![*e; d];
        let mut e2 = root_d * *e;
        for k in 0..steps {
            let out = drift(row);
            let bounds = model
                .tape()
                .f32_error_bounds(&Point::new(row, 0.0), &params);
            let (f, dd, grad_d) = (&out[..d], out[d], &out[d + 1..]);
            let e_f = norm(&bounds[..d]);
            let e_d = bounds[d];
            let s = (2.0 * dd * dt).sqrt();
            let before = row.to_vec();
            sde_cpu(row, d as u32, p as u64, model, dt, seed, k, 1);
            let xi: Vec<f64> = (0..d)
                .map(|i| (row[i] - before[i] - f[i] * dt) / s)
                .collect();
            let mut jac = vec![vec![0.0; d]; d];
            for j in 0..d {
                let h = 1e-5 * (1.0 + before[j].abs());
                let (mut a, mut b) = (before.clone(), before.clone());
                a[j] += h;
                b[j] -= h;
                let (fa, fb) = (drift(&a), drift(&b));
                for i in 0..d {
                    jac[i][j] = (i == j) as u8 as f64
                        + dt * (fa[i] - fb[i]) / (2.0 * h)
                        + xi[i] * dt * grad_d[j] / s;
                }
            }
            let two = spectral_norm_bound(&jac);
            let (fn_, xin) = (norm(f), norm(&xi));
            let e_s = s * ((e_d / dd + e_dt / dt + F32_ULP) / 2.0 + 4.5 * F32_ULP);
            let partial: Vec<f64> = (0..d).map(|i| before[i] + f[i] * dt).collect();
            let rounding = e_f * dt
                + fn_ * e_dt
                + F32_ULP * fn_ * dt
                + e_s * xin
                + s * NORMAL_ERROR
                + F32_ULP * s * xin
                + F32_ULP * (norm(&partial) + norm(row));
            carry_bounds(&jac, two, rounding, &mut each, &mut e2);
        }
        *e = each.iter().copied().fold(0.0, f64::max);
    }
}

/// The general SDE runs on the Langevin kernel's layout, whose whole rounds keep their noise
/// block's high word through a dispatch (shaders/common/philox.wgsl, `block_in_word`; the
/// host cuts blocks where it changes, `dispatch_plan`): blocks of 12 steps of an OU written
/// as an SDE, starting just before the step whose normals reach number 2^34 and running
/// across it, follow the twin particle by particle in dimensions whose rounds straddle the
/// boundary (3) and whose do not (2). Per coordinate, with |x| < 5 (start std 0.5, 256
/// particles) and s = sqrt(2 D dt) = 0.1: a step x + f dt + s xi rounds three operations on
/// values below 5 (15 U), s is within 3 U relative (2 D dt, then the square root), so s xi
/// within 0.1 * 6 * 3 U < 2 U plus s NORMAL_ERROR = 20 U: under 40 U a step, and the drift
/// -x contracts, so errors add up over the steps. A wrong noise block is off by s |xi|.
#[test]
fn sde_noise_carries_across_the_32_bit_block_boundary() {
    let (n, dt, steps) = (256u64, 1e-2, 12u64);
    let tolerance = steps as f64 * 40.0 * U;
    let gpu = common::gpu();
    for (dim, drift) in [(2u32, &["-x", "-y"][..]), (3, &["-x", "-y", "-z"][..])] {
        let model = sde_model(drift, "0.5", &[]);
        let (init, spec) = twin_start(dim);
        let p = plan(n, dim, init, sde_dynamics(model.clone(), dt, steps), spec);
        let layout = Layout {
            fused_steps: Some(steps as u32),
            ..Layout::default()
        };
        let mut sim = Simulation::new(&gpu, &p, None, None, 0, n, &layout).expect("simulation");
        let start = sim.positions().expect("positions");
        for back in [0u64, 1, 5] {
            let step0 = noise_word_boundary(dim) - back;
            let (moved, _) = run_block(&mut sim, &start, None, step0, steps);
            let mut twin: Vec<f64> = start.iter().map(|&v| f64::from(v)).collect();
            sde_cpu(&mut twin, dim, 0, &model, dt, p.seed, step0, steps);
            let worst = largest_difference(&moved, &twin);
            assert!(
                worst < tolerance,
                "dim {dim}, from step {step0}: largest difference from the twin {worst} (tolerance {tolerance})"
            );
        }
    }
}
