// Survival and absorbed counts of a snapshot from the per-particle tags (common/boundary.wgsl,
// layout src/gpu/abi.rs TAG_*): counts[0] the absorbed particles (tag TAG_ABSORBED != 0),
// counts[1 + j] those that have not reached target j (its first-passage step is
// PASSAGE_NEVER). Each invocation counts ITEMS particles and adds its counts with one atomic
// each, so a chunk reads back as 1 + TARGETS words instead of its tags. Host and CPU twin:
// src/observe/passage_counts.rs (`PassageCounts::of` in src/observe/first_passage.rs).
// Includes common/chunk.wgsl; `Chunk` comes from src/gpu/abi.rs.

override DIM: u32 = 2u;
override WG: u32 = 64u;
// Particles per invocation (src/observe/passage_counts.rs, `ITEMS`).
override ITEMS: u32 = 64u;
override TAG_STRIDE: u32 = 1u;
// Number of first-passage targets (<= 8).
override TARGETS: u32 = 0u;

@group(0) @binding(0) var<storage, read> tags: array<u32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let invocation = gid.x + gid.y * nwg.x * WG;
    let first = invocation * ITEMS;
    if (first >= chunk.count) {
        return;
    }
    let last = min(first + ITEMS, chunk.count);
    var absorbed = 0u;
    // Per target j: lane j & 3 of `lo` (targets 0..3) or `hi` (4..7).
    var lo = vec4<u32>(0u);
    var hi = vec4<u32>(0u);
    let never = vec4<u32>(PASSAGE_NEVER);
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    for (var i = first; i < last; i = i + 1u) {
        let row = i * TAG_STRIDE;
        absorbed = absorbed + select(0u, 1u, tags[row + TAG_ABSORBED] != 0u);
        let f = row + TAG_WINDING + DIM;
        var a = never;
        var b = never;
        if (TARGETS > 0u) { a.x = tags[f]; }
        if (TARGETS > 1u) { a.y = tags[f + 1u]; }
        if (TARGETS > 2u) { a.z = tags[f + 2u]; }
        if (TARGETS > 3u) { a.w = tags[f + 3u]; }
        if (TARGETS > 4u) { b.x = tags[f + 4u]; }
        if (TARGETS > 5u) { b.y = tags[f + 5u]; }
        if (TARGETS > 6u) { b.z = tags[f + 6u]; }
        if (TARGETS > 7u) { b.w = tags[f + 7u]; }
        lo = lo + select(vec4<u32>(0u), vec4<u32>(1u), (a == never) & (lanes < vec4<u32>(TARGETS)));
        hi = hi + select(vec4<u32>(0u), vec4<u32>(1u), (b == never) & (lanes + 4u < vec4<u32>(TARGETS)));
    }
    if (absorbed > 0u) {
        atomicAdd(&counts[0], absorbed);
    }
    for (var j = 0u; j < TARGETS; j = j + 1u) {
        let n = select(lo[j & 3u], hi[j & 3u], j >= 4u);
        if (n > 0u) {
            atomicAdd(&counts[1u + j], n);
        }
    }
}
