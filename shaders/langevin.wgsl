// Overdamped Langevin, Euler–Maruyama, `steps` steps fused per dispatch:
//   x <- x - grad U(x) dt + sqrt(2 T dt) xi.
// CPU twin: src/dynamics/langevin.rs (`langevin_cpu`). Includes common/philox.wgsl and
// common/potential.wgsl.

override DIM: u32 = 2u;
override POTENTIAL: u32 = 1u;
override WG: u32 = 64u;

struct Chunk {
    // Global index of the chunk's first particle (lo, hi) and its particle count.
    base: vec2<u32>,
    count: u32,
    _pad: u32,
}

struct Step {
    key: vec2<u32>,
    // Philox block and lane of the first normal of the first step: g = step0 * DIM.
    block0: u32,
    lane0: u32,
    steps: u32,
    dt: f32,
    noise_scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> potential_params: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= chunk.count) {
        return;
    }
    var x: array<f32, 8>;
    for (var d = 0u; d < DIM; d = d + 1u) {
        x[d] = state[i * DIM + d];
    }
    let index = global_index(chunk.base, i);
    let noisy = step.noise_scale > 0.0;
    var block = step.block0;
    var lane = step.lane0;
    var n = vec4<f32>(0.0);
    if (noisy && lane != 0u) {
        n = normals4(philox4x32_10(philox_counter(index, block, 0u), step.key));
    }
    for (var s = 0u; s < step.steps; s = s + 1u) {
        let g = grad_u(x);
        for (var d = 0u; d < DIM; d = d + 1u) {
            var xi = 0.0;
            if (noisy) {
                if (lane == 0u) {
                    n = normals4(philox4x32_10(philox_counter(index, block, 0u), step.key));
                }
                xi = n[lane];
                lane = lane + 1u;
                if (lane == 4u) {
                    lane = 0u;
                    block = block + 1u;
                }
            }
            x[d] = x[d] - g[d] * step.dt + step.noise_scale * xi;
        }
    }
    for (var d = 0u; d < DIM; d = d + 1u) {
        state[i * DIM + d] = x[d];
    }
}
