// Walls, periodic axes and first-passage targets, applied after every step of a stepping
// kernel (docs/architecture.md, "Boundaries and first passage"; host side and CPU twin:
// src/observe/first_passage.rs). The spec is read from the including shader's params array
// `potential_params` from BOUNDS0 (layout: src/gpu/abi.rs, BOUNDARY_*, TARGET_*); the
// per-particle `tags` hold the absorbed step, the winding counts and the first-passage steps.
// Needs common/point.wgsl and common/state.wgsl.

// 1: walls and targets are applied; 0: the kernel runs as if this file were not there.
override BOUNDARY: u32 = 0u;
// Number of first-passage targets (<= 8).
override TARGETS: u32 = 0u;
// Number of basins whose transitions are counted (0 or 2 ..= 8); their regions follow the
// targets' in the spec, the last basin is the particle's last tag word, and the counts go
// to the including shader's `nonfinite` counters from BASIN_COUNTERS (`count64`).
// Index of the spec's first float in the params array.
override BOUNDS0: u32 = 0u;
// u32 words per particle in `tags`: 1 + DIM + TARGETS (+ 1 with basins).
override TAG_STRIDE: u32 = 1u;
override BASINS: u32 = 0u;

@group(0) @binding(5) var<storage, read_write> tags: array<u32>;

// A particle's walk through one dispatch: its position, the periodic crossings of this
// dispatch per axis (whole numbers, added to the i32 windings at the end), the targets
// reached so far (bit j) and the step after which it was absorbed (0: alive).
struct Walk {
    x: Point,
    wind: Point,
    seen: u32,
    dead: u32,
    tag0: u32,
    // The last basin visited (BASIN_NONE: none yet) and the step of the dispatch from which
    // this dispatch's time with it as the last basin counts.
    last: u32,
    since: u32,
}

// Adds n to the 64-bit count in nonfinite[at] (low word) and nonfinite[at + 1] (high word):
// an add that wraps the low word carries one into the high word.
fn count64(at: u32, n: u32) {
    if (n > 0u) {
        let old = atomicAdd(&nonfinite[at], n);
        if (old + n < old) {
            atomicAdd(&nonfinite[at + 1u], 1u);
        }
    }
}

fn spec(o: u32) -> f32 {
    return potential_params[BOUNDS0 + o];
}

// v folded into [low, high] by specular reflection at both walls, as often as it takes: the
// path's image under the reflections, exact for driftless Brownian motion.
fn reflect_into(v: f32, low: f32, high: f32, width: f32) -> f32 {
    if (v >= low && v <= high) {
        return v;
    }
    let period = 2.0 * width;
    let y = v - low;
    let m = y - period * floor(y / period);
    return clamp(low + select(period - m, m, m <= width), low, high);
}

// (v wrapped into [low, high), the number of periods subtracted). A quotient rounded across
// an integer is corrected by one period.
fn wrap_into(v: f32, low: f32, high: f32, width: f32) -> vec2<f32> {
    if (v >= low && v < high) {
        return vec2<f32>(v, 0.0);
    }
    var n = floor((v - low) / width);
    var w = v - n * width;
    if (w >= high) {
        w = w - width;
        n = n + 1.0;
    }
    if (w < low) {
        w = w + width;
        n = n - 1.0;
    }
    return vec2<f32>(clamp(w, low, high), n);
}

// Whether x lies in target j (closed regions: a box's faces and a half-space's plane belong
// to it).
fn in_target(j: u32, x: Point) -> bool {
    let o = BOUNDARY_TARGETS + j * TARGET_FLOATS;
    var dot_n = 0.0;
    var inside = true;
    for (var k = 0u; k < DIM; k = k + 1u) {
        let v = coordinate(x, k);
        dot_n = dot_n + spec(o + TARGET_A + k) * v;
        inside = inside && v >= spec(o + TARGET_A + k) && v <= spec(o + TARGET_B + k);
    }
    if (u32(spec(o)) == REGION_HALF_SPACE) {
        return dot_n >= spec(o + 2u);
    }
    return inside;
}

// The walk of particle i from the start of a dispatch.
fn walk_start(i: u32, x: Point) -> Walk {
    var w = Walk(x, zero_point(), 0u, 0u, i * TAG_STRIDE, BASIN_NONE, 0u);
    if (BOUNDARY == 1u) {
        w.dead = tags[w.tag0 + TAG_ABSORBED];
        if (BASINS > 0u) {
            w.last = tags[w.tag0 + TAG_WINDING + DIM + TARGETS];
        }
        for (var j = 0u; j < TARGETS; j = j + 1u) {
            if (tags[w.tag0 + TAG_WINDING + DIM + j] != PASSAGE_NEVER) {
                w.seen = w.seen | (1u << j);
            }
        }
    }
    return w;
}

// Walls, then targets, after step s of the dispatch moved the walk to `x`.
fn walk_bound(w: Walk, x_new: Point, s: u32) -> Walk {
    var out = w;
    var x = x_new;
    for (var k = 0u; k < DIM; k = k + 1u) {
        let o = k * BOUNDARY_AXIS_FLOATS;
        let kind = u32(spec(o));
        if (kind == WALL_REFLECTING) {
            x = with_coordinate(x, k, reflect_into(coordinate(x, k), spec(o + 1u), spec(o + 2u), spec(o + 3u)));
        } else if (kind == WALL_PERIODIC) {
            let r = wrap_into(coordinate(x, k), spec(o + 1u), spec(o + 2u), spec(o + 3u));
            x = with_coordinate(x, k, r.x);
            out.wind = with_coordinate(out.wind, k, coordinate(out.wind, k) + r.y);
        }
    }
    out.x = x;
    // First-passage steps count from 1 (the step after which the particle is inside).
    let after = step.step0 + s + 1u;
    for (var j = 0u; j < TARGETS; j = j + 1u) {
        if ((out.seen & (1u << j)) == 0u && in_target(j, x)) {
            out.seen = out.seen | (1u << j);
            tags[out.tag0 + TAG_WINDING + DIM + j] = after;
            if (out.dead == 0u && spec(BOUNDARY_TARGETS + j * TARGET_FLOATS + 1u) != 0.0) {
                out.dead = after;
            }
        }
    }
    // A basin other than the last one: a transition; the time with the old one as the last
    // basin ends with this step.
    if (BASINS > 0u && (out.last == BASIN_NONE || !in_target(TARGETS + out.last, x))) {
        for (var b = 0u; b < BASINS; b = b + 1u) {
            if (b != out.last && in_target(TARGETS + b, x)) {
                if (out.last != BASIN_NONE) {
                    count64(BASIN_COUNTERS + 2u * out.last, s + 1u - out.since);
                    count64(BASIN_COUNTERS + 2u * (BASINS + out.last * BASINS + b), 1u);
                }
                out.last = b;
                out.since = s + 1u;
                break;
            }
        }
    }
    return out;
}

// Stores what the dispatch changed besides the position: the absorbed step and the windings.
fn walk_end(w: Walk) {
    if (BOUNDARY == 1u) {
        tags[w.tag0 + TAG_ABSORBED] = w.dead;
        if (BASINS > 0u && w.last != BASIN_NONE) {
            // Until the end of the dispatch, or the step that absorbed the particle.
            let end = select(step.steps, w.dead - step.step0, w.dead != 0u);
            count64(BASIN_COUNTERS + 2u * w.last, end - w.since);
            tags[w.tag0 + TAG_WINDING + DIM + TARGETS] = w.last;
        }
        for (var k = 0u; k < DIM; k = k + 1u) {
            let n = coordinate(w.wind, k);
            if (n != 0.0) {
                let at = w.tag0 + TAG_WINDING + k;
                tags[at] = bitcast<u32>(bitcast<i32>(tags[at]) + i32(n));
            }
        }
    }
}
