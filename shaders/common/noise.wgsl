// Dynamics noise. Normal number g of a particle's stream sits in Philox block g >> 2,
// lane g & 3, and a step takes DIM of them. ROUND_STEPS = 4 / gcd(DIM, 4) consecutive steps
// starting at a multiple of 4 use exactly ROUND_STEPS * DIM / 4 whole blocks (at most 7), so
// the stepping loop runs whole rounds with every lane known at compile time. Run-time lane
// bookkeeping (a cached block and a `normals[lane]` index) made lavapipe spill to scratch
// memory and ran three to ten times slower; this layout keeps everything in registers.
// The including shader declares `override ROUND_STEPS: u32`; needs common/philox.wgsl and
// common/point.wgsl.
// Blocks are 64-bit (low, high) word pairs (common/philox.wgsl): offsets from a dispatch's
// first block go through block_add, which carries into the high word.

// Up to seven blocks of four normals.
struct Blocks {
    n0: vec4<f32>,
    n1: vec4<f32>,
    n2: vec4<f32>,
    n3: vec4<f32>,
    n4: vec4<f32>,
    n5: vec4<f32>,
    n6: vec4<f32>,
}

fn block_normals(index: vec2<u32>, block: vec2<u32>, stream: u32, key: vec2<u32>) -> vec4<f32> {
    return normals4(philox4x32_10(philox_block_counter(index, block, stream), key));
}

// Normal number o of `b` (block o >> 2, lane o & 3). Folds to a register read when o is a
// compile-time constant; otherwise a chain of selects, never memory.
fn normal_at(b: Blocks, o: u32) -> f32 {
    let k = o >> 2u;
    var v = select(b.n0, b.n1, k == 1u);
    v = select(v, b.n2, k == 2u);
    v = select(v, b.n3, k == 3u);
    v = select(v, b.n4, k == 4u);
    v = select(v, b.n5, k == 5u);
    v = select(v, b.n6, k == 6u);
    let lane = o & 3u;
    return select(select(v.x, v.y, lane == 1u), select(v.z, v.w, lane == 3u), lane >= 2u);
}

// DIM normals o0, o0 + 1, ... of `b`, as a Point zero beyond DIM.
fn normals_from(b: Blocks, o0: u32) -> Point {
    var p = zero_point();
    for (var k = 0u; k < DIM; k = k + 1u) {
        p = with_coordinate(p, k, normal_at(b, o0 + k));
    }
    return p;
}

// The `count` consecutive blocks from `block` (count <= 7).
fn blocks_from(index: vec2<u32>, block: vec2<u32>, count: u32, stream: u32, key: vec2<u32>) -> Blocks {
    let z = vec4<f32>(0.0);
    var b = Blocks(block_normals(index, block, stream, key), z, z, z, z, z, z);
    if (count > 1u) { b.n1 = block_normals(index, block_add(block, 1u), stream, key); }
    if (count > 2u) { b.n2 = block_normals(index, block_add(block, 2u), stream, key); }
    if (count > 3u) { b.n3 = block_normals(index, block_add(block, 3u), stream, key); }
    if (count > 4u) { b.n4 = block_normals(index, block_add(block, 4u), stream, key); }
    if (count > 5u) { b.n5 = block_normals(index, block_add(block, 5u), stream, key); }
    if (count > 6u) { b.n6 = block_normals(index, block_add(block, 6u), stream, key); }
    return b;
}

// The blocks of one whole round starting at `block`.
fn round_blocks(index: vec2<u32>, block: vec2<u32>, stream: u32, key: vec2<u32>) -> Blocks {
    return blocks_from(index, block, ROUND_STEPS * DIM / 4u, stream, key);
}

// The DIM normals of a single step whose first normal is number g relative to `block0`
// (used for the partial rounds at either end of a dispatch).
fn step_normals(index: vec2<u32>, block0: vec2<u32>, g: u32, stream: u32, key: vec2<u32>) -> Point {
    let spanned = ((g & 3u) + DIM + 3u) / 4u;
    return normals_from(blocks_from(index, block_add(block0, g >> 2u), spanned, stream, key), g & 3u);
}
