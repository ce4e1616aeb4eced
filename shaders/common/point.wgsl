// A particle as a Point: two vec4s, `a` = coordinates 0..3 and `b` = 4..7, zero beyond DIM.
// Private arrays indexed at run time would be simpler to write, but software rasterisers
// (lavapipe) spill them to scratch memory: a prototype with `array<f32, 8>` ran 25x slower.
// So coordinate k is picked by selects, and a loop over coordinates is written
//     for (var k = 0u; k < DIM; k = k + 1u) {
//         ...
//     }
// (header exactly so, closing brace at its indentation), which build.rs unrolls into
// POINT_LANES copies under `if (k < DIM)`: k is a literal in each copy and the selects fold to
// one register, as if the lanes had been written out by hand.

struct Point {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn zero_point() -> Point {
    return Point(vec4<f32>(0.0), vec4<f32>(0.0));
}

// Coordinate k of p (k < POINT_LANES).
fn coordinate(p: Point, k: u32) -> f32 {
    let v = select(p.a, p.b, k >= 4u);
    let lane = k & 3u;
    return select(select(v.x, v.y, lane == 1u), select(v.z, v.w, lane == 3u), lane >= 2u);
}

// p with coordinate k set to `value`.
fn with_coordinate(p: Point, k: u32, value: f32) -> Point {
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let v = vec4<f32>(value);
    return Point(select(p.a, v, lanes == vec4<u32>(k)), select(p.b, v, lanes + 4u == vec4<u32>(k)));
}

// NaN and Inf have all exponent bits set (`x != x` would be compiled away).
fn point_is_finite(p: Point) -> bool {
    let bits_a = bitcast<vec4<u32>>(p.a) & vec4<u32>(0x7F800000u);
    let bits_b = bitcast<vec4<u32>>(p.b) & vec4<u32>(0x7F800000u);
    return all(bits_a != vec4<u32>(0x7F800000u)) && all(bits_b != vec4<u32>(0x7F800000u));
}

// A Point of NaNs, for a `switch` default that no host value selects: the non-finite
// counter then reports it instead of a plausible wrong result.
fn poison_point() -> Point {
    return Point(vec4<f32>(bitcast<f32>(0x7FC00000u)), vec4<f32>(bitcast<f32>(0x7FC00000u)));
}

// A running log-sum-exp: sum_k exp(l_k) v_k and sum_k exp(l_k), both relative to exp(m), the
// largest exp(l_k) so far, so that a point far from every term never gives 0/0.
struct WeightedSum {
    m: f32,
    total: f32,
    acc: Point,
}

fn weighted_sum_start() -> WeightedSum {
    return WeightedSum(-3.4028235e38, 0.0, zero_point());
}

fn weighted_sum_add(s: WeightedSum, l: f32, v: Point) -> WeightedSum {
    if (l > s.m) {
        let shrink = exp(s.m - l);
        return WeightedSum(l, s.total * shrink + 1.0, Point(s.acc.a * shrink + v.a, s.acc.b * shrink + v.b));
    }
    let w = exp(l - s.m);
    return WeightedSum(s.m, s.total + w, Point(s.acc.a + w * v.a, s.acc.b + w * v.b));
}
