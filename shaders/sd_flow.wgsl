// Score-difference flow, kernel form (seed 004), the per-particle stages around the two
// kernel sums (shaders/kernel_sum.wgsl) of one step:
//   STAGE 0 (proxy):  z = y + sigma eps            (Philox stream 2, normal g = step DIM + c)
//   kernel sums:      D_p(z) over the target samples, D_q(z) over the clean particles y
//   STAGE 1 (update): y <- y + eta (D_p(z) - D_q(z)), or with APPROX (D_q(z) ~ y, the
//                     diffusion-like variant) y <- y + eta (D_p(z) - y)
// CPU twin: src/dynamics/sd_flow.rs (`sd_flow_cpu`). Includes common/chunk.wgsl,
// common/philox.wgsl, common/point.wgsl and common/noise.wgsl.

override DIM: u32 = 2u;
// Needed by common/noise.wgsl; a step here takes single steps' normals only.
override ROUND_STEPS: u32 = 1u;
override STAGE: u32 = 0u;
override APPROX: u32 = 0u;
override WG: u32 = 64u;

struct Step {
    key: vec2<u32>,
    // Philox block and lane of the step's first normal: g = step * DIM.
    block0: u32,
    lane0: u32,
    sigma: f32,
    eta: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read_write> proxy: array<f32>;
@group(0) @binding(4) var<storage, read> denoised_p: array<f32>;
@group(0) @binding(5) var<storage, read> denoised_q: array<f32>;
@group(0) @binding(6) var<storage, read_write> nonfinite: array<atomic<u32>>;

fn row_of(i: u32, which: u32) -> Point {
    let o = i * DIM;
    var p = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    for (var c = 0u; c < DIM; c = c + 1u) {
        let v = select(denoised_p[o + c], denoised_q[o + c], which == 1u);
        if (c == 0u) { p.a.x = v; }
        if (c == 1u) { p.a.y = v; }
        if (c == 2u) { p.a.z = v; }
        if (c == 3u) { p.a.w = v; }
        if (c == 4u) { p.b.x = v; }
        if (c == 5u) { p.b.y = v; }
        if (c == 6u) { p.b.z = v; }
        if (c == 7u) { p.b.w = v; }
    }
    return p;
}

fn store_proxy(i: u32, p: Point) {
    let o = i * DIM;
    proxy[o] = p.a.x;
    if (DIM > 1u) { proxy[o + 1u] = p.a.y; }
    if (DIM > 2u) { proxy[o + 2u] = p.a.z; }
    if (DIM > 3u) { proxy[o + 3u] = p.a.w; }
    if (DIM > 4u) { proxy[o + 4u] = p.b.x; }
    if (DIM > 5u) { proxy[o + 5u] = p.b.y; }
    if (DIM > 6u) { proxy[o + 6u] = p.b.z; }
    if (DIM > 7u) { proxy[o + 7u] = p.b.w; }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= chunk.count) {
        return;
    }
    let y = load_point(i);
    if (STAGE == 0u) {
        let index = global_index(chunk.base, i);
        let eps = step_normals(index, step.block0, step.lane0, 2u, step.key);
        store_proxy(i, Point(y.a + step.sigma * eps.a, y.b + step.sigma * eps.b));
        return;
    }
    let dp = row_of(i, 0u);
    var dq = y;
    if (APPROX == 0u) {
        dq = row_of(i, 1u);
    }
    let next = Point(y.a + step.eta * (dp.a - dq.a), y.b + step.eta * (dp.b - dq.b));
    if (!point_is_finite(next)) {
        atomicAdd(&nonfinite[0], 1u);
    }
    store_point(i, next);
}
