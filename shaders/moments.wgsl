// Mean and covariance by reduction: each workgroup sums ITEMS * WG particles, shifted by a
// host-chosen center c to avoid cancellation, and writes one row of partial sums
//   [sum (x - c) (DIM), sum (x - c)_i (x - c)_j for i <= j (DIM (DIM + 1) / 2), non-finite count]
// which the host adds in f64. Non-finite particles (bit test) are left out of the sums.
// CPU twin: src/observe/moments.rs. Includes common/chunk.wgsl.

override DIM: u32 = 2u;
override WG: u32 = 64u;
const ITEMS: u32 = 16u;

struct Center {
    c: array<vec4<f32>, 2>,
}

@group(0) @binding(0) var<storage, read> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> center: Center;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

var<workgroup> scratch: array<f32, 256>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let group = wid.x + wid.y * nwg.x;
    let stride = DIM + DIM * (DIM + 1u) / 2u + 1u;
    var acc: array<f32, 45>;
    for (var item = 0u; item < ITEMS; item = item + 1u) {
        let i = group * ITEMS * WG + item * WG + lid;
        if (i < chunk.count) {
            var x: array<f32, 8>;
            var finite = true;
            for (var d = 0u; d < DIM; d = d + 1u) {
                let v = state[i * DIM + d];
                finite = finite && is_finite_bits(v);
                x[d] = v - center.c[d >> 2u][d & 3u];
            }
            if (finite) {
                var k = DIM;
                for (var a = 0u; a < DIM; a = a + 1u) {
                    acc[a] = acc[a] + x[a];
                    for (var b = a; b < DIM; b = b + 1u) {
                        acc[k] = acc[k] + x[a] * x[b];
                        k = k + 1u;
                    }
                }
            } else {
                acc[stride - 1u] = acc[stride - 1u] + 1.0;
            }
        }
    }
    for (var v = 0u; v < stride; v = v + 1u) {
        scratch[lid] = acc[v];
        workgroupBarrier();
        for (var width = WG / 2u; width > 0u; width = width / 2u) {
            if (lid < width) {
                scratch[lid] = scratch[lid] + scratch[lid + width];
            }
            workgroupBarrier();
        }
        if (lid == 0u) {
            partials[group * stride + v] = scratch[0];
        }
        workgroupBarrier();
    }
}
