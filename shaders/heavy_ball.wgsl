// Heavy-ball gradient flow x'' + friction x' + grad U(x) = 0 by semi-implicit Euler,
// `steps` steps fused per dispatch:
//   v <- v - (friction v + grad U(x)) dt,   x <- x + v dt.
// CPU twin: src/dynamics/gradient_flow.rs (`heavy_ball_cpu`). Includes common/chunk.wgsl,
// common/point.wgsl, common/state.wgsl and common/potential.wgsl; `Chunk` and `Step`
// (HeavyBallStep) come from src/gpu/abi.rs.

override POTENTIAL: u32 = 1u;

@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> potential_params: array<f32>;
@group(0) @binding(4) var<storage, read_write> nonfinite: array<atomic<u32>>;
// Velocities, laid out like `state`.
@group(0) @binding(5) var<storage, read_write> velocity: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = slice_particle(gid, nwg, step.first, step.span);
    if (i >= chunk.count) { return; }
    var x = load_point(i);
    var v = read_velocity(i * DIM);
    let quadratic = potential_quadratic();
    let dt = step.dt;
    let f = step.friction;
    for (var s = 0u; s < step.steps; s = s + 1u) {
        let g = gradient(quadratic, x, step.t0 + f32(s) * dt);
        // Loop-carried: lanes at and beyond DIM pinned to zero (common/state.wgsl, `fit`).
        v = fit(Point(v.a - (f * v.a + g.a) * dt, v.b - (f * v.b + g.b) * dt));
        x = fit(Point(x.a + v.a * dt, x.b + v.b * dt));
    }
    if (!point_is_finite(x) || !point_is_finite(v)) {
        atomicAdd(&nonfinite[0], 1u);
    }
    store_point(i, x);
    write_velocity(i * DIM, v);
}
