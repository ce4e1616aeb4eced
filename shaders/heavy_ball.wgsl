// Heavy-ball gradient flow x'' + friction x' + grad U(x) = 0 by semi-implicit Euler,
// `steps` steps fused per dispatch:
//   v <- v - (friction v + grad U(x)) dt,   x <- x + v dt.
// CPU twin: src/dynamics/gradient_flow.rs (`heavy_ball_cpu`). Includes common/chunk.wgsl,
// common/point.wgsl and common/potential.wgsl.

override DIM: u32 = 2u;
override POTENTIAL: u32 = 1u;
override WG: u32 = 64u;

struct Step {
    steps: u32,
    dt: f32,
    friction: f32,
    first: u32,
    span: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> potential_params: array<f32>;
@group(0) @binding(4) var<storage, read_write> nonfinite: array<atomic<u32>>;
// Velocities, laid out like `state`.
@group(0) @binding(5) var<storage, read_write> velocity: array<f32>;

fn load_velocity(i: u32) -> Point {
    let o = i * DIM;
    var p = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    p.a.x = velocity[o];
    if (DIM > 1u) { p.a.y = velocity[o + 1u]; }
    if (DIM > 2u) { p.a.z = velocity[o + 2u]; }
    if (DIM > 3u) { p.a.w = velocity[o + 3u]; }
    if (DIM > 4u) { p.b.x = velocity[o + 4u]; }
    if (DIM > 5u) { p.b.y = velocity[o + 5u]; }
    if (DIM > 6u) { p.b.z = velocity[o + 6u]; }
    if (DIM > 7u) { p.b.w = velocity[o + 7u]; }
    return p;
}

fn store_velocity(i: u32, p: Point) {
    let o = i * DIM;
    velocity[o] = p.a.x;
    if (DIM > 1u) { velocity[o + 1u] = p.a.y; }
    if (DIM > 2u) { velocity[o + 2u] = p.a.z; }
    if (DIM > 3u) { velocity[o + 3u] = p.a.w; }
    if (DIM > 4u) { velocity[o + 4u] = p.b.x; }
    if (DIM > 5u) { velocity[o + 5u] = p.b.y; }
    if (DIM > 6u) { velocity[o + 6u] = p.b.z; }
    if (DIM > 7u) { velocity[o + 7u] = p.b.w; }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = step.first + gid.x + gid.y * nwg.x * WG;
    if (i >= min(chunk.count, step.first + step.span)) {
        return;
    }
    var x = load_point(i);
    var v = load_velocity(i);
    var quadratic: Quadratic;
    if (POTENTIAL == 0u) {
        quadratic = load_quadratic();
    }
    let dt = step.dt;
    let f = step.friction;
    for (var s = 0u; s < step.steps; s = s + 1u) {
        let g = gradient(quadratic, x);
        v = Point(v.a - (f * v.a + g.a) * dt, v.b - (f * v.b + g.b) * dt);
        x = Point(x.a + v.a * dt, x.b + v.b * dt);
    }
    if (!point_is_finite(x) || !point_is_finite(v)) {
        atomicAdd(&nonfinite[0], 1u);
    }
    store_point(i, x);
    store_velocity(i, v);
}
