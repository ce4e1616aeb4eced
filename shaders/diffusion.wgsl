// Forward noising, reverse-time SDE and probability-flow ODE: every step is
//   x <- A x + C s(x, t) + B xi = x + [(A - 1) x + C s(x, t) + B xi]
// with per-step coefficients (A - 1, B, C) computed on the host in f64 (src/dynamics/diffusion.rs)
// and the score s either absent (forward), the closed-form score of a Gaussian mixture pushed
// through the process, or read from a buffer filled by the empirical-score kernel sum. Heun
// (probability flow) adds a corrector: with p = A x + C s(x, t),
//   x <- x + (1/2)[(A - 1) x + C s(x, t)] + (1/2)[(A2 - 1) p + C2 s(p, t2)].
// CPU twin: src/dynamics/diffusion.rs (`diffusion_cpu`). Includes common/chunk.wgsl,
// common/philox.wgsl, common/point.wgsl, common/state.wgsl, common/finish.wgsl and
// common/noise.wgsl; `Chunk` and `Step` (DiffusionStep) come from src/gpu/abi.rs.

override ROUND_STEPS: u32 = 2u;
override NOISE: u32 = 1u;
override SINGLE_STEPS: u32 = 0u;
// SCORE_NONE (forward); SCORE_MIXTURE: Gaussian mixture (closed form, fused steps);
// SCORE_BUFFERS (one step per dispatch, after the kernel sum).
override SCORE: u32 = 0u;
override HEUN: u32 = 0u;
// With SCORE 2 and HEUN: 0 writes the predictor p, 1 applies the corrector.
override PHASE: u32 = 0u;
// Mixture components (SCORE_MIXTURE).
override COMPONENTS: u32 = 1u;
// 1: the mixture table is read from `mixture_window` (a uniform), 0: from `mixture` (storage;
// for mixtures whose one step does not fit 64 KiB).
override MIXTURE_UNIFORM: u32 = 1u;

@group(0) @binding(2) var<uniform> step: Step;
// Per step DIFFUSION_COEFF_VEC4S = 3 vec4s: (A - 1, B, C, -), (alpha(t), s^2(t), -, -),
// (A2 - 1, C2, alpha(t2), s^2(t2)), entries counted from the block's first step. A - 1 comes
// from the host because near t_min it is far below f32's resolution at 1: A in f32 would
// quantise the drift (A - 1) x to steps of 2^-24 x (docs/architecture.md, "Host
// coefficients in f64").
// Uniform, as the mixture window: inside the stepping loop lavapipe turns a storage load into
// a scalar loop over its SIMD lanes even at a uniform offset (shaders/kernel_sum.wgsl,
// "Tiling"), while a uniform load at a uniform offset is one load and a broadcast.
@group(0) @binding(3) var<uniform> coeffs: array<vec4<f32>, DIFFUSION_COEFF_WINDOW>;
// SCORE_MIXTURE: per step, per time (t, then Heun's t2), per component
// DIFFUSION_COMPONENT_VEC4S = 5 vec4s computed on the host in f64: the means alpha mu_k (8), the inverse variances
// 1 / (alpha^2 sigma_k^2 + s^2) (8, zero-padded), and log2 e times
// [log w_k + (1/2) sum log(inverse variance)], then padding.
@group(0) @binding(4) var<storage, read> mixture: array<vec4<f32>>;
@group(0) @binding(9) var<uniform> mixture_window: array<vec4<f32>, DIFFUSION_MIXTURE_WINDOW>;
@group(0) @binding(5) var<storage, read_write> nonfinite: array<atomic<u32>>;
// SCORE_BUFFERS: E[x0 | x] at x (mean1) and at the predictor (mean2), and the predictor itself.
@group(0) @binding(6) var<storage, read> mean1: array<f32>;
@group(0) @binding(7) var<storage, read_write> pred: array<f32>;
@group(0) @binding(8) var<storage, read> mean2: array<f32>;

// vec4 o of the block's mixture table.
fn mixture_at(o: u32) -> vec4<f32> {
    if (MIXTURE_UNIFORM == 1u) {
        return mixture_window[o];
    }
    return mixture[o];
}

// log2 e / 2: the exponents are kept in base 2 (exp2 is what a software adapter's exp
// computes after multiplying by log2 e), with the 1/2 of the quadratic form folded in.
const HALF_LOG2E: f32 = 0.72134752044448170368;

// One component's terms at x: its exponent log2(w_k N_k(x)) up to a constant common to all
// components, and its score -(x - alpha mu_k) / v_k (as alpha mu_k - x times 1 / v_k).
struct MixtureTerm {
    l: f32,
    v: Point,
}

fn mixture_term(x: Point, o: u32) -> MixtureTerm {
    let da = fit_a(mixture_at(o) - x.a);
    let iva = fit_a(mixture_at(o + 2u));
    var q = dot(da * da, iva);
    var vb = vec4<f32>(0.0);
    if (DIM > 4u) {
        let db = mixture_at(o + 1u) - x.b;
        let ivb = mixture_at(o + 3u);
        q = q + dot(db * db, ivb);
        vb = db * ivb;
    }
    return MixtureTerm(mixture_at(o + 4u).x - HALF_LOG2E * q, Point(da * iva, vb));
}

// grad log of sum_k w_k N(x; alpha mu_k, alpha^2 sigma_k^2 + s2) at table entry e, time
// `which` (0: t, 1: t2): the responsibilities by a one-pass running log-sum-exp (base 2),
// sum_k 2^(l_k - m) v_k / sum_k 2^(l_k - m) with m the largest l_k so far. The first
// component opens the sums with weight 1 (no exp); each further one costs one exp2,
// 2^-|l - m|, which is its weight when l <= m and otherwise the factor that rescales the
// sums to the new maximum: selects, no branch (a software adapter would run both arms).
fn mixture_score(x: Point, e: u32, which: u32) -> Point {
    let base = (e * 2u + which) * COMPONENTS * DIFFUSION_COMPONENT_VEC4S;
    let first = mixture_term(x, base);
    var m = first.l;
    var total = 1.0;
    var acc = first.v;
    for (var k = 1u; k < COMPONENTS; k = k + 1u) {
        let t = mixture_term(x, base + DIFFUSION_COMPONENT_VEC4S * k);
        let higher = t.l > m;
        let p = exp2(-abs(t.l - m));
        let shrink = select(1.0, p, higher);
        let w = select(p, 1.0, higher);
        m = max(m, t.l);
        total = total * shrink + w;
        acc = Point(acc.a * shrink + w * t.v.a, acc.b * shrink + w * t.v.b);
    }
    return fit(Point(acc.a / total, acc.b / total));
}

// Offset of particle i's row in the score buffers (read_mean1 and the other row accessors
// are generated by build.rs).
fn aux_row(i: u32) -> u32 {
    return (i - step.aux_base) * DIM;
}

// The exact score of the noised empirical law: (alpha E[x0 | x] - x) / s^2.
fn buffer_score(x: Point, mean: Point, alpha: f32, s2: f32) -> Point {
    let inv = 1.0 / s2;
    return Point((alpha * mean.a - x.a) * inv, (alpha * mean.b - x.b) * inv);
}

fn affine(x: Point, a: f32, s: Point, c: f32) -> Point {
    var out = Point(a * x.a + c * s.a, vec4<f32>(0.0));
    if (DIM > 4u) {
        out.b = a * x.b + c * s.b;
    }
    return out;
}

fn heun(x: Point, s1: Point, p: Point, s2: Point, c0: vec4<f32>, c2: vec4<f32>) -> Point {
    let d1 = affine(x, c0.x, s1, c0.z);
    let d2 = affine(p, c2.x, s2, c2.y);
    return fit(Point(x.a + 0.5 * (d1.a + d2.a), x.b + 0.5 * (d1.b + d2.b)));
}

// x + [(A - 1) x + C s + B xi] with am1 = A - 1: the increment is summed before it meets x,
// so a drift below half an ulp of x still moves x on average once the noise is added.
fn euler_step(x: Point, am1: f32, s: Point, c: f32, b: f32, xi: Point) -> Point {
    let d = affine(x, am1, s, c);
    return fit(Point(x.a + (d.a + b * xi.a), x.b + (d.b + b * xi.b)));
}

// One fused step with table entry e (SCORE_NONE or SCORE_MIXTURE).
fn advance(x: Point, e: u32, xi: Point) -> Point {
    let c0 = coeffs[DIFFUSION_COEFF_VEC4S * e];
    if (SCORE == SCORE_NONE) {
        return euler_step(x, c0.x, x, 0.0, c0.y, xi);
    }
    if (SCORE != SCORE_MIXTURE) {
        return poison_point();
    }
    let s1 = mixture_score(x, e, 0u);
    if (HEUN == 1u) {
        let c2 = coeffs[DIFFUSION_COEFF_VEC4S * e + 2u];
        let p = euler_step(x, c0.x, s1, c0.z, 0.0, xi);
        return heun(x, s1, p, mixture_score(p, e, 1u), c0, c2);
    }
    return euler_step(x, c0.x, s1, c0.z, c0.y, xi);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = slice_particle(gid, nwg, step.first, step.span);
    if (i >= chunk.count) { return; }
    var x = load_point(i);
    let index = global_index(chunk.base, i);
    let block0 = vec2<u32>(step.block0, step.block0_hi);
    let zero = zero_point();
    if (SCORE == SCORE_BUFFERS) {
        // One step, table entry table0.
        let e = step.table0;
        let c0 = coeffs[DIFFUSION_COEFF_VEC4S * e];
        let c1 = coeffs[DIFFUSION_COEFF_VEC4S * e + 1u];
        let s1 = buffer_score(x, read_mean1(aux_row(i)), c1.x, c1.y);
        if (HEUN == 1u) {
            if (PHASE == 0u) {
                write_pred(aux_row(i), euler_step(x, c0.x, s1, c0.z, 0.0, zero));
                return;
            }
            let c2 = coeffs[DIFFUSION_COEFF_VEC4S * e + 2u];
            let p = read_pred(aux_row(i));
            x = heun(x, s1, p, buffer_score(p, read_mean2(aux_row(i)), c2.z, c2.w), c0, c2);
        } else {
            var xi = zero;
            if (NOISE == 1u) {
                xi = step_normals(index, block0, step.lane0, 0u, step.key);
            }
            x = euler_step(x, c0.x, s1, c0.z, c0.y, xi);
        }
        finish(i, x);
        return;
    }
    if (NOISE == 0u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            x = advance(x, step.table0 + s, zero);
        }
        finish(i, x);
        return;
    }
    if (SINGLE_STEPS == 1u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            x = advance(x, step.table0 + s, step_normals(index, block0, step.lane0 + s * DIM, 0u, step.key));
        }
    } else {
        for (var s = 0u; s < step.steps; s = s + ROUND_STEPS) {
            let b = round_blocks(index, block_in_word(block0, (s * DIM) >> 2u), 0u, step.key);
            let e = step.table0 + s;
            x = advance(x, e, normals_from(b, 0u));
            if (ROUND_STEPS > 1u) {
                x = advance(x, e + 1u, normals_from(b, DIM));
            }
            if (ROUND_STEPS > 2u) {
                x = advance(x, e + 2u, normals_from(b, 2u * DIM));
                x = advance(x, e + 3u, normals_from(b, 3u * DIM));
            }
        }
    }
    finish(i, x);
}
