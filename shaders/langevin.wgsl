// Overdamped Langevin, Euler–Maruyama, `steps` steps fused per dispatch:
//   x <- x - grad U(x, t) dt + sqrt(2 T(t) dt) xi,   step s of the dispatch at t = t0 + s dt,
// or, under a step-size schedule (DT_TABLE), dt_k, t_k and the noise scale from a table.
// CPU twin: src/dynamics/langevin.rs (`langevin_cpu`). Includes common/chunk.wgsl,
// common/philox.wgsl, common/point.wgsl, common/state.wgsl, common/finish.wgsl,
// common/potential.wgsl and common/noise.wgsl; `Chunk` and `Step` (LangevinStep) come from src/gpu/abi.rs.

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

@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> potential_params: array<f32>;
// [0]: particles whose coordinates are NaN or Inf after this dispatch (divergence check).
@group(0) @binding(4) var<storage, read_write> nonfinite: array<atomic<u32>>;

// Step `k` of the dispatch.
fn euler(quadratic: Quadratic, x: Point, xi: Point, k: u32) -> Point {
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
    let g = gradient(quadratic, x, t);
    var next = x;
    next.a = x.a - g.a * dt + s * xi.a;
    // Coordinates 4..7 exist only for DIM > 4; skipping them saves a third of the work.
    if (DIM > 4u) {
        next.b = x.b - g.b * dt + s * xi.b;
    }
    return next;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = slice_particle(gid, nwg, step.first, step.span);
    if (i >= chunk.count) { return; }
    var x = load_point(i);
    let index = global_index(chunk.base, i);
    let zero = zero_point();
    let quadratic = potential_quadratic();
    if (NOISE == 0u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            x = euler(quadratic, x, zero, s);
        }
        finish(i, x);
        return;
    }
    // Normal numbers are counted from block0's first lane: step s starts at lane0 + s DIM.
    let block0 = vec2<u32>(step.block0, step.block0_hi);
    if (SINGLE_STEPS == 1u) {
        for (var s = 0u; s < step.steps; s = s + 1u) {
            x = euler(quadratic, x, step_normals(index, block0, step.lane0 + s * DIM, 0u, step.key), s);
        }
    } else {
        // Whole rounds, every lane a compile-time constant.
        for (var s = 0u; s < step.steps; s = s + ROUND_STEPS) {
            let b = round_blocks(index, block_add(block0, (s * DIM) >> 2u), 0u, step.key);
            x = euler(quadratic, x, normals_from(b, 0u), s);
            if (ROUND_STEPS > 1u) {
                x = euler(quadratic, x, normals_from(b, DIM), s + 1u);
            }
            if (ROUND_STEPS > 2u) {
                x = euler(quadratic, x, normals_from(b, 2u * DIM), s + 2u);
                x = euler(quadratic, x, normals_from(b, 3u * DIM), s + 3u);
            }
        }
    }
    finish(i, x);
}
