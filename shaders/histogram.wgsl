// Histogram of one or two axes with atomic u32 bins (drained to u64 on the host between
// batches small enough that no bin can wrap). CPU twin: src/observe/histogram.rs.
// Includes common/chunk.wgsl; `Chunk` and `Hist` (HistUniform) come from src/gpu/abi.rs.
// Axes 0 .. DIM - 1 are the positions (`state`), DIM .. 2 DIM - 1 the velocities of the
// underdamped kind (`velocity`, laid out like `state`; other kinds bind `state` there too and
// never name such an axis). A particle with a non-finite coordinate on a velocity axis it is
// binned on counts as non-finite as well.
// Bins follow numpy: [lo, hi) except the last, which includes hi.
//
// counts layout: bins (numpy histogram2d order: i * bins1 + j), then the HIST_TALLIES
// tallies: [total bins + HIST_OUTSIDE] outside (not in any bin, finite), [+ HIST_NONFINITE]
// non-finite, [+ HIST_BELOW + 2a] below range on axis a, [+ HIST_ABOVE + 2a] above range on
// axis a.

override DIM: u32 = 2u;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> hist: Hist;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> velocity: array<f32>;
// Per-particle tags of a run with walls or targets (common/boundary.wgsl), TAG_STRIDE words
// each; an absorbed particle (tag TAG_ABSORBED != 0) is left out. TAG_STRIDE = 0: no tags.
override TAG_STRIDE: u32 = 0u;
@group(0) @binding(5) var<storage, read> tags: array<u32>;

// Phase-space coordinate `axis` of particle i.
fn axis_value(i: u32, axis: u32) -> f32 {
    if (axis < DIM) {
        return state[i * DIM + axis];
    }
    return velocity[i * DIM + axis - DIM];
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= chunk.count) {
        return;
    }
    if (TAG_STRIDE > 0u && tags[i * TAG_STRIDE + TAG_ABSORBED] != 0u) {
        return;
    }
    let total = hist.bins.x * select(1u, hist.bins.y, hist.naxes == 2u);
    var finite = true;
    for (var d = 0u; d < DIM; d = d + 1u) {
        finite = finite && is_finite_bits(state[i * DIM + d]);
    }
    for (var a = 0u; a < hist.naxes; a = a + 1u) {
        finite = finite && is_finite_bits(axis_value(i, hist.axes[a]));
    }
    if (!finite) {
        atomicAdd(&counts[total + HIST_NONFINITE], 1u);
        return;
    }
    var inside = true;
    var flat = 0u;
    for (var a = 0u; a < hist.naxes; a = a + 1u) {
        let v = axis_value(i, hist.axes[a]);
        var b = 0u;
        if (v < hist.lo[a]) {
            atomicAdd(&counts[total + HIST_BELOW + 2u * a], 1u);
            inside = false;
        } else if (v > hist.hi[a]) {
            atomicAdd(&counts[total + HIST_ABOVE + 2u * a], 1u);
            inside = false;
        } else {
            b = min(u32((v - hist.lo[a]) * hist.scale[a]), hist.bins[a] - 1u);
        }
        flat = flat * hist.bins[a] + b;
    }
    if (inside) {
        atomicAdd(&counts[flat], 1u);
    } else {
        atomicAdd(&counts[total + HIST_OUTSIDE], 1u);
    }
}
