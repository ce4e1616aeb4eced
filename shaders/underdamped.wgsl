// Underdamped Langevin dX = V dt, M dV = -grad U(X, t) dt - gamma M V dt + sqrt(2 gamma M T) dW
// by BAOAB (Leimkuhler & Matthews), `steps` steps fused per dispatch; step s of the
// dispatch goes from t = t0 + s dt to t0 + (s + 1) dt:
//   B: v <- v - (dt / 2m) grad U(x, t)
//   A: x <- x + (dt / 2) v
//   O: v <- c v + sqrt((1 - c^2) T / m) xi,   c = exp(-gamma dt), xi from stream 0
//   A: x <- x + (dt / 2) v
//   B: v <- v - (dt / 2m) grad U(x, t + dt)
// The closing kick's gradient is the next step's opening one (same point, same time), so it
// is computed once; the loop takes whole rounds of Philox blocks (common/noise.wgsl) between
// single steps at either end of a dispatch, as the Langevin kernel. The stored velocity is
// the end-of-step one (after the closing B).
// INIT_VELOCITY = 1 instead draws the initial velocities (mean + scale xi, xi from stream
// STREAM_VELOCITY) and leaves the positions alone.
// CPU twin: src/dynamics/underdamped.rs (`underdamped_cpu`). Includes common/chunk.wgsl,
// common/philox.wgsl, common/point.wgsl, common/state.wgsl, common/potential.wgsl and
// common/noise.wgsl; `Chunk` and `Step` (UnderdampedStep) come from src/gpu/abi.rs.

override POTENTIAL: u32 = 1u;
// 4 / gcd(DIM, 4): steps per round of whole Philox blocks (common/noise.wgsl).
override ROUND_STEPS: u32 = 1u;
// 0: whole rounds only (the host starts them on a round boundary and asks for a multiple of
// ROUND_STEPS), every lane a compile-time constant; 1: single steps from anywhere (the
// partial rounds at either end of a block of steps, and the initial velocities).
override SINGLE_STEPS: u32 = 1u;
override INIT_VELOCITY: u32 = 0u;
// Bit k: axis k has reflecting walls at [coef[4 DIM + k], coef[5 DIM + k]]. After each A
// (drift) step a position that left its interval is folded back by specular reflection (as
// often as it takes; f64 twin: src/observe/first_passage.rs, reflect_into), and its velocity is negated when
// the number of reflections is odd: the free flight with elastic walls, exactly.
override REFLECT_AXES: u32 = 0u;

@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> potential_params: array<f32>;
@group(0) @binding(4) var<storage, read_write> nonfinite: array<atomic<u32>>;
// Velocities, laid out like `state`.
@group(0) @binding(5) var<storage, read_write> velocity: array<f32>;
// Per axis, DIM floats each, from the host in f64: [0] dt / 2m, [DIM] the O step's noise
// scale sqrt((1 - c^2) T / m), [2 DIM] the initial velocities' scale (sqrt(T / m) for
// Maxwell–Boltzmann, 0 when given), [3 DIM] their mean, [4 DIM] and [5 DIM] the walls'
// low and high (0 on axes without).
@group(0) @binding(6) var<storage, read> coef: array<f32>;

fn kick(v: Point, hm: Point, g: Point) -> Point {
    return Point(v.a - hm.a * g.a, v.b - hm.b * g.b);
}

fn drift(x: Point, h: f32, v: Point) -> Point {
    return Point(x.a + h * v.a, x.b + h * v.b);
}

// A particle's phase point and the gradient at its position.
struct Phase {
    x: Point,
    v: Point,
    g: Point,
}

// The lanes of bit mask `m` from bit `shift`, as a vec4 of booleans.
fn mask4(m: u32, shift: u32) -> vec4<bool> {
    return ((vec4<u32>(m >> shift) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) == vec4<u32>(1u);
}

// Lane-wise fold of x into [low, high] where `on` (m = (x - low) mod 2 width: an even number
// of reflections leaves low + m, an odd one low + 2 width - m and a negated velocity).
struct Folded {
    x: vec4<f32>,
    v: vec4<f32>,
}

fn fold4(x: vec4<f32>, v: vec4<f32>, low: vec4<f32>, high: vec4<f32>, on: vec4<bool>) -> Folded {
    let width = high - low;
    let period = 2.0 * width;
    let y = x - low;
    let m = y - period * floor(y / period);
    let even = m <= width;
    let out = on & ((x < low) | (x > high));
    let folded = clamp(low + select(period - m, m, even), low, high);
    return Folded(select(x, folded, out), select(v, select(-v, v, even), out));
}

// The walls after an A step (nothing without REFLECT_AXES).
fn walls(p: Phase, low: Point, high: Point) -> Phase {
    if (REFLECT_AXES == 0u) {
        return p;
    }
    var q = p;
    let fa = fold4(p.x.a, p.v.a, low.a, high.a, mask4(REFLECT_AXES, 0u));
    q.x.a = fa.x;
    q.v.a = fa.v;
    if (DIM > 4u) {
        let fb = fold4(p.x.b, p.v.b, low.b, high.b, mask4(REFLECT_AXES, 4u));
        q.x.b = fb.x;
        q.v.b = fb.v;
    }
    return q;
}

// The walls' low and high per axis.
struct Walls {
    low: Point,
    high: Point,
}

// One BAOAB step with the O step's normals xi; t1 is the time at the step's end. With walls
// each A step is followed by the fold (the A step is then the exact free flight between
// elastic walls).
fn baoab(p: Phase, xi: Point, hm: Point, s_ou: Point, c: f32, h: f32, quadratic: Quadratic, t1: f32, w: Walls) -> Phase {
    let v0 = kick(p.v, hm, p.g);
    var q = walls(Phase(drift(p.x, h, v0), v0, p.g), w.low, w.high);
    let v1 = Point(c * q.v.a + s_ou.a * xi.a, c * q.v.b + s_ou.b * xi.b);
    q = walls(Phase(drift(q.x, h, v1), v1, p.g), w.low, w.high);
    let g = gradient(quadratic, q.x, t1);
    // Loop-carried: lanes at and beyond DIM pinned to zero (common/state.wgsl, `fit`), or
    // a software adapter carries and computes all eight lanes of x, v and the gradient.
    return Phase(fit(q.x), fit(kick(q.v, hm, g)), fit(g));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = slice_particle(gid, nwg, step.first, step.span);
    if (i >= chunk.count) { return; }
    let index = global_index(chunk.base, i);
    if (INIT_VELOCITY == 1u) {
        let xi = step_normals(index, vec2<u32>(0u, 0u), 0u, STREAM_VELOCITY, step.key);
        let scale = read_coef(2u * DIM);
        let mean = read_coef(3u * DIM);
        write_velocity(i * DIM, Point(mean.a + scale.a * xi.a, mean.b + scale.b * xi.b));
        return;
    }
    let quadratic = potential_quadratic();
    let hm = read_coef(0u);
    let s_ou = read_coef(DIM);
    let w = Walls(read_coef(4u * DIM), read_coef(5u * DIM));
    let c = step.ou_c;
    let dt = step.dt;
    let h = 0.5 * dt;
    let block0 = vec2<u32>(step.block0, step.block0_hi);
    let x0 = load_point(i);
    var p = Phase(x0, read_velocity(i * DIM), gradient(quadratic, x0, step.t0));
    if (SINGLE_STEPS == 1u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            let xi = step_normals(index, block0, step.lane0 + s * DIM, 0u, step.key);
            p = baoab(p, xi, hm, s_ou, c, h, quadratic, step.t0 + f32(s + 1u) * dt, w);
        }
    } else {
        // Whole rounds: ROUND_STEPS * DIM / 4 Philox blocks give every normal of the round.
        for (var s = 0u; s < step.steps; s = s + ROUND_STEPS) {
            let b = round_blocks(index, block_in_word(block0, (s * DIM) >> 2u), 0u, step.key);
            p = baoab(p, normals_from(b, 0u), hm, s_ou, c, h, quadratic, step.t0 + f32(s + 1u) * dt, w);
            if (ROUND_STEPS > 1u) {
                p = baoab(p, normals_from(b, DIM), hm, s_ou, c, h, quadratic, step.t0 + f32(s + 2u) * dt, w);
            }
            if (ROUND_STEPS > 2u) {
                p = baoab(p, normals_from(b, 2u * DIM), hm, s_ou, c, h, quadratic, step.t0 + f32(s + 3u) * dt, w);
                p = baoab(p, normals_from(b, 3u * DIM), hm, s_ou, c, h, quadratic, step.t0 + f32(s + 4u) * dt, w);
            }
        }
    }
    let x = p.x;
    let v = p.v;
    if (!point_is_finite(x) || !point_is_finite(v)) {
        atomicAdd(&nonfinite[0], 1u);
    }
    store_point(i, x);
    write_velocity(i * DIM, v);
}
