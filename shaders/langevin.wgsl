// Overdamped Langevin, Euler–Maruyama, `steps` steps fused per dispatch:
//   x <- x - grad U(x, t) dt + sqrt(2 T(t) dt) xi,   step s of the dispatch at t = t0 + s dt,
// or, under a step-size schedule (DT_TABLE), dt_k, t_k and the noise scale from a table,
// or with MALA = 1 that move as a Metropolis-adjusted proposal (`mala`).
// CPU twin: src/dynamics/langevin.rs (`langevin_cpu`). Includes common/chunk.wgsl,
// common/philox.wgsl, common/point.wgsl, common/state.wgsl, common/finish.wgsl,
// common/potential.wgsl, common/noise.wgsl and common/boundary.wgsl; `Chunk` and `Step` (LangevinStep) come from src/gpu/abi.rs.

override POTENTIAL: u32 = 1u;
// 4 / gcd(DIM, 4): steps per round of whole Philox blocks (common/noise.wgsl).
override ROUND_STEPS: u32 = 2u;
// 0 at zero temperature: no noise is generated at all.
override NOISE: u32 = 1u;
// 0: whole rounds only (the host starts them on a round boundary and asks for a multiple of
// ROUND_STEPS); 1: single steps from anywhere. Two pipelines rather than one with both
// loops: the combined kernel ran 40% slower on lavapipe.
override SINGLE_STEPS: u32 = 0u;
// 1: the temperature is the user's T(t) (`user_temperature`, common/potential.wgsl's user
// region); 0: constant, sqrt(2 T dt) is the uniform's noise_scale.
override TEMPERATURE_EXPR: u32 = 0u;
// 1: a step-size schedule; step k's dt, time and noise scale are read from the params array
// at step.table0 + 3 k (written per block by the host); 0: constant dt from the uniform.
override DT_TABLE: u32 = 0u;

// 1: Metropolis-adjusted (MALA): the Euler–Maruyama move is a proposal y, accepted when
// log u < log alpha with u from Philox stream STREAM_MALA (`mala`); constant T > 0 and a
// potential that does not read t (the scenario refuses the rest).
override MALA: u32 = 0u;
// MALA: 1 carries U and grad U of the chain's position over from the accepted proposal; 0
// evaluates them there at every step (the host's choice for a potential cheaper to evaluate
// than to carry through the loop and the accept selects, the double well:
// src/dynamics/langevin.rs, `recomputes_cheaply`). The same function of the same bits: the
// same results.
override MALA_CARRY: u32 = 1u;

@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> potential_params: array<f32>;
// [0]: particles whose coordinates are NaN or Inf after this dispatch (divergence check);
// MALA: [1], [2] the low and high words of the proposals accepted since the host last
// cleared them (64-bit by carry, `count_accepted`).
@group(0) @binding(4) var<storage, read_write> nonfinite: array<atomic<u32>>;

// (dt, t, noise scale sqrt(2 T dt)) of step `k` of the dispatch.
fn step_coefficients(k: u32) -> vec3<f32> {
    var dt = step.dt;
    var t = step.t0 + f32(k) * dt;
    var s = step.noise_scale;
    if (DT_TABLE == 1u) {
        // A step-size schedule: (dt_k, t_k, sqrt(2 T(t_k) dt_k)) from the host, in f64
        // before rounding (src/model/step_size.rs).
        let e = step.table0 + 3u * k;
        dt = potential_params[e];
        t = potential_params[e + 1u];
        s = potential_params[e + 2u];
    } else if (TEMPERATURE_EXPR == 1u) {
        s = sqrt(2.0 * max(user_temperature(t), 0.0) * dt);
    }
    return vec3<f32>(dt, t, s);
}

// Step `k` of the dispatch.
fn euler(quadratic: Quadratic, x: Point, xi: Point, k: u32) -> Point {
    let c = step_coefficients(k);
    let dt = c.x;
    let t = c.y;
    let s = c.z;
    let g = gradient(quadratic, x, t);
    var next = x;
    next.a = x.a - g.a * dt + s * xi.a;
    // Coordinates 4..7 exist only for DIM > 4; skipping them saves a third of the work.
    if (DIM > 4u) {
        next.b = x.b - g.b * dt + s * xi.b;
    }
    return next;
}

// A MALA chain within one dispatch: the position with U and grad U there (kept while
// proposals are rejected, taken over from an accepted one; with MALA_CARRY = 0 only the
// start's, each step evaluates its own), the proposals accepted, and
// (BOUNDARY) its walk: targets, basins, absorption.
struct Chain {
    x: Point,
    g: Point,
    u: f32,
    accepted: u32,
    w: Walk,
}

// MALA in a box: whether y lies in every reflecting interval [low, high]. A proposal outside
// is rejected, which is Metropolis–Hastings for exp(-U/T) restricted to the box (zero
// outside), the reflecting dynamics' stationary law.
fn inside_walls(y: Point) -> bool {
    var inside = !any(mask4(REFLECT_AXES, 0u) & ((y.a < bounds[0]) | (y.a > bounds[2])));
    if (DIM > 4u) {
        inside = inside && !any(mask4(REFLECT_AXES, 4u) & ((y.b < bounds[1]) | (y.b > bounds[3])));
    }
    return inside;
}

// A MALA start outside the walls folded in by the walls' reflection map.
fn fold_into_walls(x: Point) -> Point {
    var out = x;
    out.a = fold_reflect(x.a, mask4(REFLECT_AXES, 0u), bounds[0], bounds[2], bounds[6]);
    if (DIM > 4u) {
        out.b = fold_reflect(x.b, mask4(REFLECT_AXES, 4u), bounds[1], bounds[3], bounds[7]);
    }
    return out;
}

// The Philox block of MALA's uniforms for the four steps from absolute step 4 m that holds
// step k of the dispatch: word j is step 4 m + j's (src/rng.rs, `mala_uniform`).
// `at` is the absolute step (low, high).
fn mala_uniforms(index: vec2<u32>, at: vec2<u32>) -> vec4<u32> {
    let block = vec2<u32>((at.x >> 2u) | (at.y << 30u), at.y >> 2u);
    return philox4x32_10(philox_block_counter(index, block, STREAM_MALA), step.key);
}

// The uniform's word of step k of the dispatch alone (single steps, which may cross a
// multiple of 2^32 steps).
fn mala_word(index: vec2<u32>, k: u32) -> u32 {
    let w = mala_uniforms(index, block_add(vec2<u32>(step.step0, step.step0_hi), k));
    let lane = (step.step0 + k) & 3u;
    return select(select(w.x, w.y, lane == 1u), select(w.z, w.w, lane == 3u), lane >= 2u);
}

// Step `k` of the dispatch, Metropolis-adjusted, with `w` the Philox word of its uniform
// (CPU twin: `mala_step` in
// src/dynamics/langevin.rs). With s = sqrt(2 T dt) and h = grad U(x) + grad U(y), the
// proposal y = x - grad U(x) dt + s xi has
//   log alpha = -(U(y) - U(x))/T - [|x - y + grad U(y) dt|^2 - |y - x + grad U(x) dt|^2]/(4 T dt)
//             = (-(U(y) - U(x)) + s xi.h / 2 - dt |h|^2 / 4) / T,
// the second form exact algebra (y - x + grad U(x) dt = s xi) without the cancellation of
// the two squares. Accept when log u < log alpha: a NaN or -Inf ratio (a proposal where U or
// its gradient overflows) is rejected.
fn mala(quadratic: Quadratic, c: Chain, xi: Point, w: u32, k: u32) -> Chain {
    let dt = step.dt;
    let t = step.t0 + f32(k) * dt;
    let s = step.noise_scale;
    var out = c;
    var gx = c.g;
    var ux = c.u;
    if (MALA_CARRY == 0u) {
        gx = fit(gradient(quadratic, c.x, t));
        ux = potential_value(quadratic, c.x, t);
    }
    var y = c.x;
    y.a = c.x.a - gx.a * dt + s * xi.a;
    if (DIM > 4u) {
        y.b = c.x.b - gx.b * dt + s * xi.b;
    }
    if (REFLECT_AXES != 0u && !inside_walls(y)) {
        return out;
    }
    // The accepted y and grad U(y) are carried to the next step: lanes at and beyond DIM
    // pinned to zero (common/state.wgsl, `fit`), or a software adapter carries all eight.
    y = fit(y);
    let gy = fit(gradient(quadratic, y, t));
    let uy = potential_value(quadratic, y, t);
    let ha = gx.a + gy.a;
    var cross = dot(xi.a, ha);
    var h2 = dot(ha, ha);
    if (DIM > 4u) {
        let hb = gx.b + gy.b;
        cross = cross + dot(xi.b, hb);
        h2 = h2 + dot(hb, hb);
    }
    let log_alpha = (-(uy - ux) + 0.5 * s * cross - 0.25 * dt * h2) * step.inv_temperature;
    if (log(unit_open_closed(w)) < log_alpha) {
        out.x = y;
        if (MALA_CARRY == 1u) {
            out.g = gy;
            out.u = uy;
        }
        out.accepted = out.accepted + 1u;
    }
    return out;
}

// One MALA step, then (BOUNDARY) the walk's targets and basins at the chain's position (no
// wall moves it: proposals outside are rejected); an absorbed chain stays where it is.
fn mala_walk(quadratic: Quadratic, c: Chain, xi: Point, w: u32, k: u32) -> Chain {
    if (BOUNDARY == 0u) {
        return mala(quadratic, c, xi, w, k);
    }
    if (!walk_alive(c.w)) {
        return c;
    }
    var out = mala(quadratic, c, xi, w, k);
    out.w = walk_bound(out.w, out.x, k);
    return out;
}

// Adds a dispatch's accepted proposals to the 64-bit count in nonfinite[1] (low word) and
// nonfinite[2] (high word): an add that wraps the low word carries one into the high word.
fn count_accepted(n: u32) {
    if (n > 0u) {
        let old = atomicAdd(&nonfinite[1], n);
        if (old + n < old) {
            atomicAdd(&nonfinite[2], 1u);
        }
    }
}

// The MALA dispatch: the same normals as the Euler–Maruyama loop below. A start point whose
// U or grad U is not finite (a poisoned potential code, broken user code) is stored as NaN,
// so that it reaches the non-finite count instead of being held by rejections.
fn run_mala(quadratic: Quadratic, i: u32, x_start: Point, index: vec2<u32>) {
    let walk = walk_start(i, x_start);
    if (BOUNDARY == 1u && walk.dead != 0u) {
        return;
    }
    var x0 = x_start;
    if (REFLECT_AXES != 0u) {
        x0 = fold_into_walls(x_start);
    }
    // Pinned beyond DIM like every later position and gradient (`fit` in `mala`), so the
    // loop's phis carry constants there.
    x0 = fit(x0);
    let u0 = potential_value(quadratic, x0, step.t0);
    var c = Chain(x0, fit(gradient(quadratic, x0, step.t0)), u0, 0u, walk);
    if (!point_is_finite(c.g) || !point_is_finite(Point(vec4<f32>(u0), vec4<f32>(0.0)))) {
        finish(i, poison_point());
        return;
    }
    let block0 = vec2<u32>(step.block0, step.block0_hi);
    if (SINGLE_STEPS == 1u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            let xi = step_normals(index, block0, step.lane0 + s * DIM, 0u, step.key);
            c = mala_walk(quadratic, c, xi, mala_word(index, s), s);
        }
    } else {
        // Whole quads of steps from an absolute step that is a multiple of 4 (the host
        // splits MALA's blocks so): one block of uniforms, word j for step s + j, and the
        // normals in 4 / ROUND_STEPS rounds. Drawing the block behind a branch on the step
        // (every fourth) made the whole MALA kernel 1.5 times slower on lavapipe.
        for (var s = 0u; s < step.steps; s = s + 4u) {
            // A whole-quad dispatch stays below the next multiple of 2^32 steps (the host
            // splits there, `dispatch_plan`): no carry into the step's high word.
            let w = mala_uniforms(index, vec2<u32>(step.step0 + s, step.step0_hi));
            if (ROUND_STEPS == 4u) {
                let b = round_blocks(index, block_in_word(block0, (s * DIM) >> 2u), 0u, step.key);
                c = mala_walk(quadratic, c, normals_from(b, 0u), w.x, s);
                c = mala_walk(quadratic, c, normals_from(b, DIM), w.y, s + 1u);
                c = mala_walk(quadratic, c, normals_from(b, 2u * DIM), w.z, s + 2u);
                c = mala_walk(quadratic, c, normals_from(b, 3u * DIM), w.w, s + 3u);
            } else if (ROUND_STEPS == 2u) {
                let b0 = round_blocks(index, block_in_word(block0, (s * DIM) >> 2u), 0u, step.key);
                c = mala_walk(quadratic, c, normals_from(b0, 0u), w.x, s);
                c = mala_walk(quadratic, c, normals_from(b0, DIM), w.y, s + 1u);
                let b1 = round_blocks(index, block_in_word(block0, ((s + 2u) * DIM) >> 2u), 0u, step.key);
                c = mala_walk(quadratic, c, normals_from(b1, 0u), w.z, s + 2u);
                c = mala_walk(quadratic, c, normals_from(b1, DIM), w.w, s + 3u);
            } else {
                let b0 = round_blocks(index, block_in_word(block0, (s * DIM) >> 2u), 0u, step.key);
                c = mala_walk(quadratic, c, normals_from(b0, 0u), w.x, s);
                let b1 = round_blocks(index, block_in_word(block0, ((s + 1u) * DIM) >> 2u), 0u, step.key);
                c = mala_walk(quadratic, c, normals_from(b1, 0u), w.y, s + 1u);
                let b2 = round_blocks(index, block_in_word(block0, ((s + 2u) * DIM) >> 2u), 0u, step.key);
                c = mala_walk(quadratic, c, normals_from(b2, 0u), w.z, s + 2u);
                let b3 = round_blocks(index, block_in_word(block0, ((s + 3u) * DIM) >> 2u), 0u, step.key);
                c = mala_walk(quadratic, c, normals_from(b3, 0u), w.w, s + 3u);
            }
        }
    }
    count_accepted(c.accepted);
    walk_end(c.w);
    finish(i, c.x);
}

// Step s of the dispatch on walk w: the Euler–Maruyama move, then (BOUNDARY) walls and
// targets (common/boundary.wgsl); an absorbed walk is stored where it was absorbed.
fn advance(quadratic: Quadratic, w: Walk, xi: Point, s: u32) -> Walk {
    if (BOUNDARY == 0u) {
        var out = w;
        out.x = euler(quadratic, w.x, xi, s);
        return out;
    }
    // An absorbed walk stays where it was absorbed (common/boundary.wgsl, `Walk.dead`,
    // `walk_alive`).
    var var2 = 0.0;
    if (BRIDGE != 0u) {
        let scale = step_coefficients(s).z;
        var2 = scale * scale;
    }
    return walk_bound_noise(w, euler(quadratic, w.x, xi, s), s, var2);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = slice_particle(gid, nwg, step.first, step.span);
    if (i >= chunk.count) { return; }
    var x = load_point(i);
    if (REFLECT_AXES != 0u) {
        // A start outside the walls folded in before its first step, as MALA's: every
        // step then starts inside, which `reflect_once` needs (the identity, bits kept, on
        // a point inside, so once per dispatch after the first).
        x = fold_into_walls(x);
    }
    let index = global_index(chunk.base, i);
    let zero = zero_point();
    let quadratic = potential_quadratic();
    var w = walk_start(i, x);
    if (BOUNDARY == 1u && w.dead != 0u) {
        // Absorbed: frozen where it entered the absorbing target.
        return;
    }
    if (NOISE == 0u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            w = advance(quadratic, w, zero, s);
        }
        walk_end(w);
        finish(i, w.x);
        return;
    }
    // Normal numbers are counted from block0's first lane: step s starts at lane0 + s DIM.
    let block0 = vec2<u32>(step.block0, step.block0_hi);
    if (SINGLE_STEPS == 1u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            w = advance(quadratic, w, step_normals(index, block0, step.lane0 + s * DIM, 0u, step.key), s);
        }
    } else {
        // Whole rounds, every lane a compile-time constant.
        for (var s = 0u; s < step.steps; s = s + ROUND_STEPS) {
            let b = round_blocks(index, block_in_word(block0, (s * DIM) >> 2u), 0u, step.key);
            w = advance(quadratic, w, normals_from(b, 0u), s);
            if (ROUND_STEPS > 1u) {
                w = advance(quadratic, w, normals_from(b, DIM), s + 1u);
            }
            if (ROUND_STEPS > 2u) {
                w = advance(quadratic, w, normals_from(b, 2u * DIM), s + 2u);
                w = advance(quadratic, w, normals_from(b, 3u * DIM), s + 3u);
            }
        }
    }
    walk_end(w);
    finish(i, w.x);
}

// The MALA kernel (MALA = 1): its own entry point, so that the plain kernel's pipeline does
// not carry the Metropolis step's code (src/gpu/kernel.rs, `Kernel::with_entry`).
@compute @workgroup_size(WG)
fn main_mala(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = slice_particle(gid, nwg, step.first, step.span);
    if (i >= chunk.count) { return; }
    run_mala(potential_quadratic(), i, load_point(i), global_index(chunk.base, i));
}
