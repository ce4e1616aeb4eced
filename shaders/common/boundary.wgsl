// Walls, periodic axes, first-passage targets and basins, applied after every step of a
// stepping kernel (docs/architecture.md, "Boundaries and first passage"; host side and f64
// twins of the wall maps: src/observe/first_passage.rs). The walls and regions are the
// uniform `bounds` (layout: src/gpu/abi.rs, BOUNDS_*, REGION_*), read as whole vec4s so that
// every test is a few vector operations; which axes reflect or wrap are compile-time masks.
// The per-particle `tags` hold the absorbed step, the winding counts, the first-passage
// steps and the last basin. Needs common/point.wgsl and common/state.wgsl.

// 1: walls and targets are applied; 0: the kernel runs as if this file were not there.
override BOUNDARY: u32 = 0u;
// Bit k: axis k reflects / wraps.
override REFLECT_AXES: u32 = 0u;
override PERIODIC_AXES: u32 = 0u;
// Number of first-passage targets (<= 8).
override TARGETS: u32 = 0u;
// Bit j: region j (targets, then basins) is a half-space, not a box; target j absorbs.
override HALF_SPACES: u32 = 0u;
override ABSORBING: u32 = 0u;
// u32 words per particle in `tags`: 1 + DIM + TARGETS (+ 1 with basins).
override TAG_STRIDE: u32 = 1u;
// Number of basins whose transitions are counted (0 or 2 ..= 8); their regions follow the
// targets', the last basin is the particle's last tag word, and the counts go to the
// including shader's `nonfinite` counters from BASIN_COUNTERS (`count64`).
override BASINS: u32 = 0u;

@group(0) @binding(5) var<storage, read_write> tags: array<u32>;
@group(0) @binding(6) var<uniform> bounds: array<vec4<f32>, BOUNDS_VEC4S>;

// A particle's walk through one dispatch: its position, the periodic crossings of this
// dispatch per axis (whole numbers, added to the i32 windings at the end), the targets
// reached so far (bit j) and the step after which it was absorbed (0: alive).
struct Walk {
    x: Point,
    wind: Point,
    seen: u32,
    dead: u32,
    tag0: u32,
    // First-passage steps of targets 0..3 and 4..7 reached in this dispatch (0: not),
    // stored at its end.
    fa: vec4<u32>,
    fb: vec4<u32>,
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

// The lanes of bit mask `m` from bit `shift`, as a vec4 of booleans.
fn mask4(m: u32, shift: u32) -> vec4<bool> {
    return ((vec4<u32>(m >> shift) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) == vec4<u32>(1u);
}

// v folded into [low, high] by specular reflection at both walls, as often as it takes: the
// path's image under the reflections, exact for driftless Brownian motion. Lane-wise.
fn reflect4(v: vec4<f32>, low: vec4<f32>, high: vec4<f32>, width: vec4<f32>) -> vec4<f32> {
    let period = 2.0 * width;
    let y = v - low;
    let m = y - period * floor(y / period);
    let folded = clamp(low + select(period - m, m, m <= width), low, high);
    return select(folded, v, (v >= low) & (v <= high));
}

// Lane-wise wrap into [low, high): the wrapped value and the periods subtracted. A quotient
// rounded across an integer is corrected by one period.
struct Wrapped {
    v: vec4<f32>,
    n: vec4<f32>,
}

fn wrap4(v: vec4<f32>, low: vec4<f32>, high: vec4<f32>, width: vec4<f32>) -> Wrapped {
    var n = floor((v - low) / width);
    var w = v - n * width;
    let over = w >= high;
    w = select(w, w - width, over);
    n = select(n, n + 1.0, over);
    let under = w < low;
    w = select(w, w + width, under);
    n = select(n, n - 1.0, under);
    return Wrapped(clamp(w, low, high), n);
}

// Whether x lies in region j (targets, then basins; closed: a box's faces and a
// half-space's plane belong to it). Lanes beyond DIM are 0 in x and unconstrained in a box.
fn in_region(j: u32, x: Point) -> bool {
    let o = BOUNDS_REGIONS + j * REGION_VEC4S;
    let info = bounds[o + 4u];
    if (((HALF_SPACES >> j) & 1u) == 1u) {
        var d = dot(bounds[o], x.a);
        if (DIM > 4u) {
            d = d + dot(bounds[o + 1u], x.b);
        }
        return d >= info.z;
    }
    var inside = all((x.a >= bounds[o]) & (x.a <= bounds[o + 2u]));
    if (DIM > 4u) {
        inside = inside && all((x.b >= bounds[o + 1u]) & (x.b <= bounds[o + 3u]));
    }
    return inside;
}

// The walk of particle i from the start of a dispatch.
fn walk_start(i: u32, x: Point) -> Walk {
    var w = Walk(x, zero_point(), 0u, 0u, i * TAG_STRIDE, vec4<u32>(0u), vec4<u32>(0u), BASIN_NONE, 0u);
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

// Target j's first passage at step `after` if x is in it and it was not reached before;
// branch-free, j a literal at every call, so the selects fold to one lane.
fn passage(w: Walk, j: u32, x: Point, after: u32) -> Walk {
    var out = w;
    let bit = 1u << j;
    let hit = ((w.seen & bit) == 0u) & in_region(j, x);
    out.seen = w.seen | select(0u, bit, hit);
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    out.fa = select(w.fa, vec4<u32>(after), vec4<bool>(hit) & (lanes == vec4<u32>(j)));
    out.fb = select(w.fb, vec4<u32>(after), vec4<bool>(hit) & (lanes + 4u == vec4<u32>(j)));
    if (((ABSORBING >> j) & 1u) == 1u) {
        out.dead = select(w.dead, after, hit & (w.dead == 0u));
    }
    return out;
}

// Walls, then targets, after step s of the dispatch moved the walk to `x`.
fn walk_bound(w: Walk, x_new: Point, s: u32) -> Walk {
    var out = w;
    var x = x_new;
    // The folds only where a masked lane left its interval (rare: no division otherwise).
    if (REFLECT_AXES != 0u) {
        let ma = mask4(REFLECT_AXES, 0u);
        if (any(ma & ((x.a < bounds[0]) | (x.a > bounds[2])))) {
            x.a = select(x.a, reflect4(x.a, bounds[0], bounds[2], bounds[4]), ma);
        }
        let mb = mask4(REFLECT_AXES, 4u);
        if (DIM > 4u && any(mb & ((x.b < bounds[1]) | (x.b > bounds[3])))) {
            x.b = select(x.b, reflect4(x.b, bounds[1], bounds[3], bounds[5]), mb);
        }
    }
    if (PERIODIC_AXES != 0u) {
        let pa = mask4(PERIODIC_AXES, 0u);
        if (any(pa & ((x.a < bounds[0]) | (x.a >= bounds[2])))) {
            let ra = wrap4(x.a, bounds[0], bounds[2], bounds[4]);
            x.a = select(x.a, ra.v, pa);
            out.wind.a = out.wind.a + select(vec4<f32>(0.0), ra.n, pa);
        }
        let pb = mask4(PERIODIC_AXES, 4u);
        if (DIM > 4u && any(pb & ((x.b < bounds[1]) | (x.b >= bounds[3])))) {
            let rb = wrap4(x.b, bounds[1], bounds[3], bounds[5]);
            x.b = select(x.b, rb.v, pb);
            out.wind.b = out.wind.b + select(vec4<f32>(0.0), rb.n, pb);
        }
    }
    out.x = x;
    // First-passage steps count from 1 (the step after which the particle is inside).
    // Targets one by one with literal indices (a loop index made the uniform reads
    // per-invocation gathers on lavapipe, twice as slow).
    let after = step.step0 + s + 1u;
    if (TARGETS > 0u) { out = passage(out, 0u, x, after); }
    if (TARGETS > 1u) { out = passage(out, 1u, x, after); }
    if (TARGETS > 2u) { out = passage(out, 2u, x, after); }
    if (TARGETS > 3u) { out = passage(out, 3u, x, after); }
    if (TARGETS > 4u) { out = passage(out, 4u, x, after); }
    if (TARGETS > 5u) { out = passage(out, 5u, x, after); }
    if (TARGETS > 6u) { out = passage(out, 6u, x, after); }
    if (TARGETS > 7u) { out = passage(out, 7u, x, after); }
    // A basin other than the last one: a transition; the time with the old one as the last
    // basin ends with this step.
    if (BASINS > 0u && (out.last == BASIN_NONE || !in_region(TARGETS + out.last, x))) {
        for (var b = 0u; b < BASINS; b = b + 1u) {
            if (b != out.last && in_region(TARGETS + b, x)) {
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
        for (var j = 0u; j < TARGETS; j = j + 1u) {
            let f = select(w.fa[j & 3u], w.fb[j & 3u], j >= 4u);
            if (f != 0u) {
                tags[w.tag0 + TAG_WINDING + DIM + j] = f;
            }
        }
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
