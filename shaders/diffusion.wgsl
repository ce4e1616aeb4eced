// Forward noising, reverse-time SDE and probability-flow ODE: every step is
//   x <- A x + C s(x, t) + B xi = x + [(A - 1) x + C s(x, t) + B xi]
// with per-step coefficients (A - 1, B, C) computed on the host in f64 (src/dynamics/diffusion.rs)
// and the score s either absent (forward), the closed-form score of a Gaussian mixture pushed
// through the process, or read from a buffer filled by the empirical-score kernel sum. Heun
// (probability flow) adds a corrector: with p = A x + C s(x, t),
//   x <- x + (1/2)[(A - 1) x + C s(x, t)] + (1/2)[(A2 - 1) p + C2 s(p, t2)].
// CPU twin: src/dynamics/diffusion.rs (`diffusion_cpu`). Includes common/chunk.wgsl,
// common/philox.wgsl, common/point.wgsl and common/noise.wgsl.

override DIM: u32 = 2u;
override ROUND_STEPS: u32 = 2u;
override NOISE: u32 = 1u;
override SINGLE_STEPS: u32 = 0u;
// 0: no score (forward); 1: Gaussian mixture (closed form, fused steps); 2: from buffers
// (one step per dispatch, after the kernel sum).
override SCORE: u32 = 0u;
override HEUN: u32 = 0u;
// With SCORE 2 and HEUN: 0 writes the predictor p, 1 applies the corrector.
override PHASE: u32 = 0u;
// Mixture components (SCORE 1).
override COMPONENTS: u32 = 1u;
override WG: u32 = 64u;

struct Step {
    key: vec2<u32>,
    // Philox block of the first normal: low word here, high word in block0_hi.
    block0: u32,
    lane0: u32,
    steps: u32,
    first: u32,
    span: u32,
    // Coefficient entry of this dispatch's first step.
    table0: u32,
    // Row of particle i in the score buffers is i - aux_base.
    aux_base: u32,
    block0_hi: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> step: Step;
// Per step three vec4s: (A - 1, B, C, -), (alpha(t), s^2(t), -, -),
// (A2 - 1, C2, alpha(t2), s^2(t2)), entries counted from the block's first step. A - 1 comes
// from the host because near t_min it is far below f32's resolution at 1: A in f32 would
// quantise the drift (A - 1) x to steps of 2^-24 x (docs/architecture.md, "Host
// coefficients in f64").
@group(0) @binding(3) var<storage, read> coeffs: array<vec4<f32>>;
// SCORE 1: per step, per time (t, then Heun's t2), per component 20 floats (five vec4s)
// computed on the host in f64: the means alpha mu_k (8), the inverse variances
// 1 / (alpha^2 sigma_k^2 + s^2) (8, zero-padded), and log w_k + (1/2) sum log(inverse
// variance), then padding.
@group(0) @binding(4) var<storage, read> mixture: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> nonfinite: array<atomic<u32>>;
// SCORE 2: E[x0 | x] at x (mean1) and at the predictor (mean2), and the predictor itself.
@group(0) @binding(6) var<storage, read> mean1: array<f32>;
@group(0) @binding(7) var<storage, read_write> pred: array<f32>;
@group(0) @binding(8) var<storage, read> mean2: array<f32>;

// grad log of sum_k w_k N(x; alpha mu_k, alpha^2 sigma_k^2 + s2) at table entry e, time
// `which` (0: t, 1: t2). Responsibilities by a running log-sum-exp (never 0/0 far from
// every component).
fn mixture_score(x: Point, e: u32, which: u32) -> Point {
    var m = -3.4028235e38;
    var total = 0.0;
    var acc = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    let base = (e * 2u + which) * COMPONENTS * 5u;
    for (var k = 0u; k < COMPONENTS; k = k + 1u) {
        let o = base + 5u * k;
        let da = mixture[o] - x.a;
        let iva = mixture[o + 2u];
        var l = mixture[o + 4u].x - 0.5 * dot(da * da, iva);
        let va = da * iva;
        var vb = vec4<f32>(0.0);
        if (DIM > 4u) {
            let db = mixture[o + 1u] - x.b;
            let ivb = mixture[o + 3u];
            l = l - 0.5 * dot(db * db, ivb);
            vb = db * ivb;
        }
        if (l > m) {
            let shrink = exp(m - l);
            total = total * shrink + 1.0;
            acc = Point(acc.a * shrink + va, acc.b * shrink + vb);
            m = l;
        } else {
            let w = exp(l - m);
            total = total + w;
            acc = Point(acc.a + w * va, acc.b + w * vb);
        }
    }
    return Point(acc.a / total, acc.b / total);
}

fn load_row(which: u32, i: u32) -> Point {
    let o = (i - step.aux_base) * DIM;
    var p = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    // Compile-time lanes (a run-time indexed private array would spill on lavapipe).
    if (which == 0u) {
        p.a.x = mean1[o];
        if (DIM > 1u) { p.a.y = mean1[o + 1u]; }
        if (DIM > 2u) { p.a.z = mean1[o + 2u]; }
        if (DIM > 3u) { p.a.w = mean1[o + 3u]; }
        if (DIM > 4u) { p.b.x = mean1[o + 4u]; }
        if (DIM > 5u) { p.b.y = mean1[o + 5u]; }
        if (DIM > 6u) { p.b.z = mean1[o + 6u]; }
        if (DIM > 7u) { p.b.w = mean1[o + 7u]; }
    } else if (which == 1u) {
        p.a.x = mean2[o];
        if (DIM > 1u) { p.a.y = mean2[o + 1u]; }
        if (DIM > 2u) { p.a.z = mean2[o + 2u]; }
        if (DIM > 3u) { p.a.w = mean2[o + 3u]; }
        if (DIM > 4u) { p.b.x = mean2[o + 4u]; }
        if (DIM > 5u) { p.b.y = mean2[o + 5u]; }
        if (DIM > 6u) { p.b.z = mean2[o + 6u]; }
        if (DIM > 7u) { p.b.w = mean2[o + 7u]; }
    } else {
        p.a.x = pred[o];
        if (DIM > 1u) { p.a.y = pred[o + 1u]; }
        if (DIM > 2u) { p.a.z = pred[o + 2u]; }
        if (DIM > 3u) { p.a.w = pred[o + 3u]; }
        if (DIM > 4u) { p.b.x = pred[o + 4u]; }
        if (DIM > 5u) { p.b.y = pred[o + 5u]; }
        if (DIM > 6u) { p.b.z = pred[o + 6u]; }
        if (DIM > 7u) { p.b.w = pred[o + 7u]; }
    }
    return p;
}

fn store_pred(i: u32, p: Point) {
    let o = (i - step.aux_base) * DIM;
    pred[o] = p.a.x;
    if (DIM > 1u) { pred[o + 1u] = p.a.y; }
    if (DIM > 2u) { pred[o + 2u] = p.a.z; }
    if (DIM > 3u) { pred[o + 3u] = p.a.w; }
    if (DIM > 4u) { pred[o + 4u] = p.b.x; }
    if (DIM > 5u) { pred[o + 5u] = p.b.y; }
    if (DIM > 6u) { pred[o + 6u] = p.b.z; }
    if (DIM > 7u) { pred[o + 7u] = p.b.w; }
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
    return Point(x.a + 0.5 * (d1.a + d2.a), x.b + 0.5 * (d1.b + d2.b));
}

// x + [(A - 1) x + C s + B xi] with am1 = A - 1: the increment is summed before it meets x,
// so a drift below half an ulp of x still moves x on average once the noise is added.
fn euler_step(x: Point, am1: f32, s: Point, c: f32, b: f32, xi: Point) -> Point {
    let d = affine(x, am1, s, c);
    return Point(x.a + (d.a + b * xi.a), x.b + (d.b + b * xi.b));
}

// One fused step with table entry e (SCORE 0 or 1).
fn advance(x: Point, e: u32, xi: Point) -> Point {
    let c0 = coeffs[3u * e];
    if (SCORE == 0u) {
        return euler_step(x, c0.x, x, 0.0, c0.y, xi);
    }
    let s1 = mixture_score(x, e, 0u);
    if (HEUN == 1u) {
        let c2 = coeffs[3u * e + 2u];
        let p = euler_step(x, c0.x, s1, c0.z, 0.0, xi);
        return heun(x, s1, p, mixture_score(p, e, 1u), c0, c2);
    }
    return euler_step(x, c0.x, s1, c0.z, c0.y, xi);
}

fn finish(i: u32, x: Point) {
    if (!point_is_finite(x)) {
        atomicAdd(&nonfinite[0], 1u);
    }
    store_point(i, x);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = step.first + gid.x + gid.y * nwg.x * WG;
    if (i >= min(chunk.count, step.first + step.span)) {
        return;
    }
    var x = load_point(i);
    let index = global_index(chunk.base, i);
    let block0 = vec2<u32>(step.block0, step.block0_hi);
    let zero = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    if (SCORE == 2u) {
        // One step, table entry table0.
        let e = step.table0;
        let c0 = coeffs[3u * e];
        let c1 = coeffs[3u * e + 1u];
        let s1 = buffer_score(x, load_row(0u, i), c1.x, c1.y);
        if (HEUN == 1u) {
            if (PHASE == 0u) {
                store_pred(i, euler_step(x, c0.x, s1, c0.z, 0.0, zero));
                return;
            }
            let c2 = coeffs[3u * e + 2u];
            let p = load_row(2u, i);
            x = heun(x, s1, p, buffer_score(p, load_row(1u, i), c2.z, c2.w), c0, c2);
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
            let b = round_blocks(index, block_add(block0, (s * DIM) >> 2u), 0u, step.key);
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
