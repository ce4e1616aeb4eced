// The general Itô SDE written by the user, Euler–Maruyama, `steps` steps fused per dispatch:
//   x <- x + f(x, t) dt + sqrt(2 D(x, t) dt) xi,   step s of the dispatch at t = t0 + s dt.
// f (`user_drift`) and D (`user_diffusion`) are generated from the scenario's expressions
// into the user region below (src/model/expr, src/dynamics/sde.rs); their params are in
// `model_params`. A negative D gives a NaN step, counted as non-finite (the scenario check
// refuses a D negative anywhere on the histogram box). CPU twin: src/dynamics/sde.rs
// (`sde_cpu`). With walls, periodic axes, targets or basins (BOUNDARY) every step's result
// goes through common/boundary.wgsl as in langevin.wgsl. Includes common/chunk.wgsl,
// common/philox.wgsl, common/point.wgsl, common/state.wgsl, common/finish.wgsl,
// common/noise.wgsl and common/boundary.wgsl; `Chunk` and `Step` (LangevinStep) come from
// src/gpu/abi.rs.

// 4 / gcd(DIM, 4): steps per round of whole Philox blocks (common/noise.wgsl).
override ROUND_STEPS: u32 = 2u;
// 0: whole rounds only; 1: single steps from anywhere (as in langevin.wgsl).
override SINGLE_STEPS: u32 = 0u;

@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> model_params: array<f32>;
// [0]: particles whose coordinates are NaN or Inf after this dispatch (divergence check).
@group(0) @binding(4) var<storage, read_write> nonfinite: array<atomic<u32>>;

// Step `k` of the dispatch.
fn euler_maruyama(x: Point, xi: Point, k: u32) -> Point {
    let dt = step.dt;
    let t = step.t0 + f32(k) * dt;
    let f = user_drift(x, t);
    let s = sqrt(2.0 * user_diffusion(x, t) * dt);
    var next = x;
    next.a = x.a + f.a * dt + s * xi.a;
    if (DIM > 4u) {
        next.b = x.b + f.b * dt + s * xi.b;
    }
    return next;
}

// Step s of the dispatch on walk w: the Euler–Maruyama move, then (BOUNDARY) walls and
// targets; an absorbed walk is stored where it was absorbed.
fn advance(w: Walk, xi: Point, s: u32) -> Walk {
    if (BOUNDARY == 0u) {
        var out = w;
        out.x = euler_maruyama(w.x, xi, s);
        return out;
    }
    // An absorbed walk stays where it was absorbed (common/boundary.wgsl, `Walk.dead`).
    return walk_bound(w, euler_maruyama(w.x, xi, s), s);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // The bind group layout is derived from what the shader reads: a model without params
    // generates code that never reads `model_params`, which must still be bound.
    _ = model_params[0];
    let i = slice_particle(gid, nwg, step.first, step.span);
    if (i >= chunk.count) { return; }
    var w = walk_start(i, load_point(i));
    if (BOUNDARY == 1u && w.dead != 0u) {
        // Absorbed: frozen where it entered the absorbing target.
        return;
    }
    let index = global_index(chunk.base, i);
    // Normal numbers are counted from block0's first lane: step s starts at lane0 + s DIM.
    let block0 = vec2<u32>(step.block0, step.block0_hi);
    if (SINGLE_STEPS == 1u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            w = advance(w, step_normals(index, block0, step.lane0 + s * DIM, 0u, step.key), s);
        }
    } else {
        for (var s = 0u; s < step.steps; s = s + ROUND_STEPS) {
            let b = round_blocks(index, block_in_word(block0, (s * DIM) >> 2u), 0u, step.key);
            w = advance(w, normals_from(b, 0u), s);
            if (ROUND_STEPS > 1u) {
                w = advance(w, normals_from(b, DIM), s + 1u);
            }
            if (ROUND_STEPS > 2u) {
                w = advance(w, normals_from(b, 2u * DIM), s + 2u);
                w = advance(w, normals_from(b, 3u * DIM), s + 3u);
            }
        }
    }
    walk_end(w);
    finish(i, w.x);
}

// The user region (src/shaders.rs, `with_user_functions`): stubs poison their result.
// USER CODE BEGIN
fn user_drift(x: Point, t: f32) -> Point { return poison_point(); }
fn user_diffusion(x: Point, t: f32) -> f32 { return bitcast<f32>(0x7FC00000u); }
// USER CODE END
