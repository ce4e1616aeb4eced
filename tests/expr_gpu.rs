//! Code generated from expressions, run on the GPU: values and gradients of potentials,
//! drifts and diffusions, functions of time and pair potentials against the f64 tape, each
//! within the tape's own f32 error bound (`Tape::f32_error_bounds`, from the WGSL accuracy
//! table), at thousands of points per expression.

mod common;

use fokker::gpu::{Gpu, Kernel};
use fokker::model::expr::parse::{Names, parse};
use fokker::model::expr::tree::{self, Var};
use fokker::model::expr::{
    ExprPotential, Params, Point, PotentialSource, SdeModel, SdeSource, Tape, point_lane,
};
use fokker::rng;

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
