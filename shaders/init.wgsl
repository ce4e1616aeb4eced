// Initial sampling on Philox stream 1 (block layout in src/rng.rs). CPU twin:
// src/dynamics/init.rs (`init_cpu`). Includes common/chunk.wgsl and common/philox.wgsl;
// `Chunk` and `InitArgs` come from src/gpu/abi.rs.
//
// init_params layout per INIT kind (written by `gpu_init_params`):
//   INIT_POINT:    at (DIM)
//   INIT_GAUSSIAN: mean (DIM), std (DIM)
//   INIT_UNIFORM:  low (DIM), high - low (DIM)
//   INIT_MIXTURE:  K, cumulative weights (K), then per component mean (DIM), std (DIM)
//   INIT_SAMPLES:  the data table, rows x DIM row-major

override DIM: u32 = 2u;
override INIT: u32 = 0u;
override WG: u32 = 64u;

const STREAM_INIT: u32 = 1u;
const UNIFORM_BLOCK: u32 = 0x80000000u;
const CHOICE_BLOCK: u32 = 0xC0000000u;

@group(0) @binding(0) var<storage, read_write> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> args: InitArgs;
@group(0) @binding(3) var<storage, read> init_params: array<f32>;

fn init_normal(index: vec2<u32>, c: u32) -> f32 {
    let n = normals4(philox4x32_10(philox_counter(index, c >> 2u, STREAM_INIT), args.key));
    return n[c & 3u];
}

fn init_uniform(index: vec2<u32>, c: u32) -> f32 {
    let w = philox4x32_10(philox_counter(index, UNIFORM_BLOCK + (c >> 2u), STREAM_INIT), args.key);
    return unit_closed_open(w[c & 3u]);
}

fn choice_word(index: vec2<u32>) -> u32 {
    return philox4x32_10(philox_counter(index, CHOICE_BLOCK, STREAM_INIT), args.key).x;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= chunk.count) {
        return;
    }
    let index = global_index(chunk.base, i);
    for (var c = 0u; c < DIM; c = c + 1u) {
        var v = 0.0;
        switch INIT {
            case INIT_POINT: {
                v = init_params[c];
            }
            case INIT_GAUSSIAN: {
                v = init_params[c] + init_params[DIM + c] * init_normal(index, c);
            }
            case INIT_UNIFORM: {
                v = init_params[c] + init_params[DIM + c] * init_uniform(index, c);
            }
            case INIT_MIXTURE: {
                let k_count = u32(init_params[0]);
                let u = unit_closed_open(choice_word(index));
                var k = 0u;
                while (k + 1u < k_count && u >= init_params[1u + k]) {
                    k = k + 1u;
                }
                let base = 1u + k_count + k * 2u * DIM;
                v = init_params[base + c] + init_params[base + DIM + c] * init_normal(index, c);
            }
            case INIT_SAMPLES: {
                var row = index.x;
                if (args.in_order == 0u) {
                    // Lemire's multiply-shift: a uniform row in [0, rows).
                    row = mul_hi(choice_word(index), args.rows);
                }
                v = init_params[row * DIM + c];
            }
            // No host value reaches it.
            default: {
                v = bitcast<f32>(0x7FC00000u);
            }
        }
        state[i * DIM + c] = v;
    }
}
