// A particle as a Point: two vec4s, `a` = coordinates 0..3 and `b` = 4..7, zero beyond DIM.
// Private arrays indexed at run time would be simpler to write, but software rasterisers
// (lavapipe) spill them to scratch memory: a prototype with `array<f32, 8>` ran 25x slower.
// Needs `override DIM` and a read_write storage array `state`.

struct Point {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn load_point(i: u32) -> Point {
    let o = i * DIM;
    var p = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    p.a.x = state[o];
    if (DIM > 1u) { p.a.y = state[o + 1u]; }
    if (DIM > 2u) { p.a.z = state[o + 2u]; }
    if (DIM > 3u) { p.a.w = state[o + 3u]; }
    if (DIM > 4u) { p.b.x = state[o + 4u]; }
    if (DIM > 5u) { p.b.y = state[o + 5u]; }
    if (DIM > 6u) { p.b.z = state[o + 6u]; }
    if (DIM > 7u) { p.b.w = state[o + 7u]; }
    return p;
}

fn store_point(i: u32, p: Point) {
    let o = i * DIM;
    state[o] = p.a.x;
    if (DIM > 1u) { state[o + 1u] = p.a.y; }
    if (DIM > 2u) { state[o + 2u] = p.a.z; }
    if (DIM > 3u) { state[o + 3u] = p.a.w; }
    if (DIM > 4u) { state[o + 4u] = p.b.x; }
    if (DIM > 5u) { state[o + 5u] = p.b.y; }
    if (DIM > 6u) { state[o + 6u] = p.b.z; }
    if (DIM > 7u) { state[o + 7u] = p.b.w; }
}

// NaN and Inf have all exponent bits set (`x != x` would be compiled away).
fn point_is_finite(p: Point) -> bool {
    let bits_a = bitcast<vec4<u32>>(p.a) & vec4<u32>(0x7F800000u);
    let bits_b = bitcast<vec4<u32>>(p.b) & vec4<u32>(0x7F800000u);
    return all(bits_a != vec4<u32>(0x7F800000u)) && all(bits_b != vec4<u32>(0x7F800000u));
}
