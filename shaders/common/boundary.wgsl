// Walls, periodic axes, first-passage targets and basins, applied after every step of a
// stepping kernel (docs/architecture.md, "Boundaries and first passage"; host side and f64
// twins of the wall maps and the bridge: src/observe/first_passage.rs). The walls and regions
// are the uniform `bounds` (layout: src/gpu/abi.rs, BOUNDS_*, REGION_*); which axes reflect
// or wrap, and which axes each region constrains, are compile-time masks, so the per-step
// work is a few selects per constrained lane and no branch (a software rasteriser runs every
// branch's body, masked). The per-particle `tags` hold the absorbed step, the winding counts,
// the first-passage steps and the last basin. Needs common/philox.wgsl, common/point.wgsl,
// common/state.wgsl, and from the including kernel `nonfinite` and a `step` uniform with
// step0, step0_hi, steps and key (src/gpu/abi.rs, LangevinStep).

// 1: walls and targets are applied; 0: the kernel runs as if this file were not there.
override BOUNDARY: u32 = 0u;
// Bit k: axis k reflects / wraps.
override REFLECT_AXES: u32 = 0u;
override PERIODIC_AXES: u32 = 0u;
// 1: a step is reflected once at each wall (`reflect_once`), the host's choice when no
// step's noise can carry a particle across the box (src/observe/first_passage.rs,
// `reflects_once`); 0: folded for a step of any length (`fold_reflect`).
override REFLECT_ONCE: u32 = 0u;
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

// Bit 8 (j & 3) + k of REGION_AXES_<j >> 2>: region j constrains axis k (a box's named
// axes, a half-space's nonzero normal components). The tests read only those lanes.
override REGION_AXES_0: u32 = 0xFFFFFFFFu;
override REGION_AXES_1: u32 = 0xFFFFFFFFu;
override REGION_AXES_2: u32 = 0xFFFFFFFFu;
override REGION_AXES_3: u32 = 0xFFFFFFFFu;
// The same bits for the faces of box regions that are tested: a face at or beyond a
// reflecting wall holds every position on its side, so the host clears its bit and its
// comparison is compiled out (src/observe/first_passage.rs, `region_faces`).
override REGION_LOWS_0: u32 = 0xFFFFFFFFu;
override REGION_LOWS_1: u32 = 0xFFFFFFFFu;
override REGION_LOWS_2: u32 = 0xFFFFFFFFu;
override REGION_LOWS_3: u32 = 0xFFFFFFFFu;
override REGION_HIGHS_0: u32 = 0xFFFFFFFFu;
override REGION_HIGHS_1: u32 = 0xFFFFFFFFu;
override REGION_HIGHS_2: u32 = 0xFFFFFFFFu;
override REGION_HIGHS_3: u32 = 0xFFFFFFFFu;
// Bit j: target j is also reached between step ends with the Brownian-bridge crossing
// probability (`bridge`), its uniform from Philox stream STREAM_BRIDGE.
override BRIDGE: u32 = 0u;

// In `Walk.fa`/`fb`: the target was reached in an earlier dispatch (its tag holds the step).
const REACHED_EARLIER: u32 = 0u;

// A particle's walk through one dispatch: its position, the periodic crossings of this
// dispatch per axis (whole numbers, added to the i32 windings at the end) and its
// first-passage steps; whether it is absorbed is read from those of the absorbing targets
// (`walk_alive`). Everything stays in registers through the fused steps; the tags are read
// at the start and written once at the end (`walk_end`).
struct Walk {
    x: Point,
    wind: Point,
    // The step after which it was absorbed in an earlier dispatch (0: alive at the start;
    // the kernels return at once then). An absorbed walk stays at the position where the
    // target took it: the kernel goes on computing its steps to the end of the dispatch,
    // and `walk_bound_noise` keeps the old position by one select per coordinate. A per-step
    // early return made software adapters mask and blend the whole step (1.45 times plain
    // Langevin's cost with two walls and one absorbing target against 1.11 without the
    // target).
    dead: u32,
    tag0: u32,
    // Per target 0..3 and 4..7: the step after which it was first reached in this dispatch,
    // PASSAGE_NEVER while it has not been, REACHED_EARLIER (0) when it was before: the
    // first passage is the minimum of the steps at which the particle is in the target.
    fa: vec4<u32>,
    fb: vec4<u32>,
    // The last basin visited (BASIN_NONE: none yet) and the step of the dispatch from which
    // this dispatch's time with it as the last basin counts.
    last: u32,
    since: u32,
    // The particle's global index (the bridge's Philox counter).
    index: vec2<u32>,
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

// NaN as a vec4 (a position the non-finite count reports).
fn nan4() -> vec4<f32> {
    return vec4<f32>(bitcast<f32>(0x7FC00000u));
}

// The lanes of v in `mask` that left [low, high] folded back by reflection at the walls, as
// often as the step needs (`first_passage::reflect_into`: reflection at both walls has
// period 2 (high - low), so the image is found by one floor, exact for a step of any
// length). `inverse` = 1 / (high - low). A lane inside keeps its bits; NaN stays NaN and an
// infinite position becomes NaN (every comparison with NaN is false; no min/max, which
// would return the other operand), so the non-finite count reports them. Branch-free and
// without a division: a software rasteriser runs a branch's body at every step, masked.
fn fold_reflect(v: vec4<f32>, mask: vec4<bool>, low: vec4<f32>, high: vec4<f32>, inverse: vec4<f32>) -> vec4<f32> {
    let width = high - low;
    let y = v - low;
    // m = y mod 2 width; the image is low + m on the way out and high - (m - width) on the
    // way back, both high - |m - width|: never above high, and below low only by the
    // rounding of m, where the select keeps it on the wall. (A few operations fewer than
    // a select between the two branches and a clamp at both walls: this runs every step.)
    let m = y - (2.0 * width) * floor(y * (0.5 * inverse));
    let f = high - abs(m - width);
    let kept = select(f, low, f < low);
    return select(v, kept, mask & ((v < low) | (v > high)));
}

// The lanes of v in `mask` reflected once at each wall: exact for a step that ends less
// than a box width past a wall (then high - (v - high) and low + (low - v) are the fold's
// image, each rounded once, and never past the other wall). A lane still above high after
// both reflections crossed the whole box in one step, which `REFLECT_ONCE` rules out for
// the noise; only the drift can do it, and the lane becomes NaN, a divergence the
// non-finite count reports (reduce dt). A lane inside keeps its bits; NaN stays NaN and an
// infinite lane becomes NaN. Six operations a step against `fold_reflect`'s thirteen.
fn reflect_once(v: vec4<f32>, mask: vec4<bool>, low: vec4<f32>, high: vec4<f32>) -> vec4<f32> {
    let r1 = select(v, 2.0 * high - v, mask & (v > high));
    let r2 = select(r1, 2.0 * low - r1, mask & (r1 < low));
    return select(r2, nan4(), mask & (r2 > high));
}

// The lanes of v in `mask` wrapped by whole periods and the periods subtracted in `n`, for
// a step of any length: one floor, no division (`inverse` = 1 / width). A point inside
// keeps its bits (n = 0); NaN stays NaN and an infinite lane becomes NaN. The result is in
// [low, high] up to the rounding of the quotient and the product: a quotient rounded across
// an integer leaves it an ulp or two outside one wall, the same point of the circle as the
// other wall, and the next step wraps it again. Clamping it there cost 15 of the walled
// Langevin loop's 427 instructions per round on lavapipe (two selects per wall per step and
// their registers) for a difference no density or observer sees; the winding count keeps
// the unwrapped coordinate, v + n width, exact either way.
struct Wrapped {
    v: vec4<f32>,
    n: vec4<f32>,
}

fn fold_wrap(v: vec4<f32>, mask: vec4<bool>, low: vec4<f32>, width: vec4<f32>, inverse: vec4<f32>) -> Wrapped {
    let n = floor((v - low) * inverse);
    return Wrapped(select(v, v - n * width, mask), n);
}

// Region j's byte of the four words w0..w3 (8 bits per region, 4 regions per word); j a
// literal at the per-step calls, so this folds to a constant there.
fn region_bits(j: u32, w0: u32, w1: u32, w2: u32, w3: u32) -> u32 {
    let lo = select(w0, w1, j >= 4u);
    let hi = select(w2, w3, j >= 12u);
    return (select(lo, hi, j >= 8u) >> (8u * (j & 3u))) & 0xFFu;
}

// The axes region j constrains (bit k: axis k).
fn region_axes(j: u32) -> u32 {
    return region_bits(j, REGION_AXES_0, REGION_AXES_1, REGION_AXES_2, REGION_AXES_3);
}

// The axes whose low (high) face of box region j is tested (see REGION_LOWS_0).
fn region_lows(j: u32) -> u32 {
    return region_axes(j) & region_bits(j, REGION_LOWS_0, REGION_LOWS_1, REGION_LOWS_2, REGION_LOWS_3);
}

fn region_highs(j: u32) -> u32 {
    return region_axes(j) & region_bits(j, REGION_HIGHS_0, REGION_HIGHS_1, REGION_HIGHS_2, REGION_HIGHS_3);
}

// Rows of region j's vec4s in `bounds` (a box's lows, highs; a half-space's normal).
fn region_row(j: u32, row: u32) -> Point {
    let o = BOUNDS_REGIONS + j * REGION_VEC4S + 2u * row;
    return Point(bounds[o], bounds[o + 1u]);
}

// Whether x lies in region j (targets, then basins; closed: a box's faces and a
// half-space's plane belong to it). Only the axes the region constrains are compared, lane
// by lane: with j a literal the tests of other axes are compiled away (a 0 in a vector
// product would not be, 0 x may be NaN).
fn in_region(j: u32, x: Point) -> bool {
    let axes = region_axes(j);
    if (((HALF_SPACES >> j) & 1u) == 1u) {
        let n = region_row(j, 0u);
        // -0 + y = y for every y, so the sum starts from the first product.
        var d = -0.0;
        for (var k = 0u; k < DIM; k = k + 1u) {
            if (((axes >> k) & 1u) == 1u) {
                d = d + coordinate(n, k) * coordinate(x, k);
            }
        }
        return d >= bounds[BOUNDS_REGIONS + j * REGION_VEC4S + 4u].z;
    }
    let low = region_row(j, 0u);
    let high = region_row(j, 1u);
    let lows = region_lows(j);
    let highs = region_highs(j);
    var inside = true;
    for (var k = 0u; k < DIM; k = k + 1u) {
        if (((lows >> k) & 1u) == 1u) {
            inside = inside & (coordinate(x, k) >= coordinate(low, k));
        }
        if (((highs >> k) & 1u) == 1u) {
            inside = inside & (coordinate(x, k) <= coordinate(high, k));
        }
    }
    return inside;
}

// exp(c d0 d1) where both distances are positive, else 1: the probability that a Brownian
// bridge from distance d0 to d1 outside a plane (c = -2 / (sigma^2 dt) per unit normal)
// touched it.
fn touched(d0: f32, d1: f32, c: f32) -> f32 {
    return select(1.0, exp(c * d0 * d1), (d0 > 0.0) & (d1 > 0.0));
}

// The probability that the Brownian bridge from x0 to x1 (variance `var2` = sigma^2 dt per
// coordinate) entered region j between them (1 when x0 or x1 is in it): a half-space's
// exp(-2 d0 d1 / (|n|^2 var2)) with d = offset - n.x, a box's product of that over its faces
// (exact for one constrained axis; with several, the product of the per-axis slabs' crossing
// probabilities, which counts a path that visits the slabs at different times near a corner).
fn bridge_probability(j: u32, x0: Point, x1: Point, var2: f32) -> f32 {
    let axes = region_axes(j);
    let c = -2.0 / var2;
    if (((HALF_SPACES >> j) & 1u) == 1u) {
        let n = region_row(j, 0u);
        let info = bounds[BOUNDS_REGIONS + j * REGION_VEC4S + 4u];
        var n0 = -0.0;
        var n1 = -0.0;
        for (var k = 0u; k < DIM; k = k + 1u) {
            if (((axes >> k) & 1u) == 1u) {
                n0 = n0 + coordinate(n, k) * coordinate(x0, k);
                n1 = n1 + coordinate(n, k) * coordinate(x1, k);
            }
        }
        // info.z = offset, info.w = 1 / |n|^2.
        return touched(info.z - n0, info.z - n1, c * info.w);
    }
    let low = region_row(j, 0u);
    let high = region_row(j, 1u);
    let lows = region_lows(j);
    let highs = region_highs(j);
    // A face beyond a reflecting wall (its bit clear) is never touched: its factor is 1.
    var q = 1.0;
    for (var k = 0u; k < DIM; k = k + 1u) {
        if (((lows >> k) & 1u) == 1u) {
            let lo = coordinate(low, k);
            q = q * touched(lo - coordinate(x0, k), lo - coordinate(x1, k), c);
        }
        if (((highs >> k) & 1u) == 1u) {
            let hi = coordinate(high, k);
            q = q * touched(coordinate(x0, k) - hi, coordinate(x1, k) - hi, c);
        }
    }
    return q;
}

// The walk of particle i from the start of a dispatch.
fn walk_start(i: u32, x: Point) -> Walk {
    let never = vec4<u32>(PASSAGE_NEVER);
    var w = Walk(x, zero_point(), 0u, i * TAG_STRIDE, never, never, BASIN_NONE, 0u, global_index(chunk.base, i));
    if (BOUNDARY == 1u) {
        w.dead = tags[w.tag0 + TAG_ABSORBED];
        if (BASINS > 0u) {
            w.last = tags[w.tag0 + TAG_WINDING + DIM + TARGETS];
        }
        let lanes = vec4<u32>(0u, 1u, 2u, 3u);
        for (var j = 0u; j < TARGETS; j = j + 1u) {
            let earlier = select(PASSAGE_NEVER, REACHED_EARLIER, tags[w.tag0 + TAG_WINDING + DIM + j] != PASSAGE_NEVER);
            w.fa = select(w.fa, vec4<u32>(earlier), lanes == vec4<u32>(j));
            w.fb = select(w.fb, vec4<u32>(earlier), lanes + 4u == vec4<u32>(j));
        }
    }
    return w;
}

// Whether the walk is not absorbed: none of the absorbing targets has been reached (their
// lanes of `fa`/`fb` are compile-time constants elsewhere, so this is one comparison per
// absorbing target). A walk absorbed in an earlier dispatch holds REACHED_EARLIER there.
fn walk_alive(w: Walk) -> bool {
    let never = vec4<u32>(PASSAGE_NEVER);
    return !any(mask4(ABSORBING, 0u) & (w.fa != never)) && !any(mask4(ABSORBING, 4u) & (w.fb != never));
}

// Target j's first passage at step `after` if it is reached now (x in it, or with the
// bridge u < p) and was not before: the minimum with the step recorded so far. Branch-free,
// j a literal at every call, so the lane picks fold to one register. `u` holds the bridge's
// uniforms of targets 0..3 or 4..7 for this step.
//
// An absorbed walk records nothing more, and needs no test for it: it is frozen at the
// position where a target took it (bits kept, `walk_bound_noise`), so every region it is in
// now it was in at that step, whose passage is the smaller step and stays; a region it is
// not in stays unreached. Only the bridge, a fresh uniform each step, asks `alive`. For an
// absorbing target the minimum is its absorption: while the walk is alive its f is
// PASSAGE_NEVER.
fn passage(w: Walk, j: u32, x0: Point, x: Point, after: u32, var2: f32, u: vec4<f32>, alive: bool) -> Walk {
    var out = w;
    let lane = j & 3u;
    let both = select(w.fa, w.fb, j >= 4u);
    let f = select(select(both.x, both.y, lane == 1u), select(both.z, both.w, lane == 3u), lane >= 2u);
    var reached = in_region(j, x);
    if (((BRIDGE >> j) & 1u) == 1u) {
        let uj = select(select(u.x, u.y, lane == 1u), select(u.z, u.w, lane == 3u), lane >= 2u);
        reached = reached || (alive && uj < bridge_probability(j, x0, x, var2));
    }
    let first = vec4<u32>(min(f, select(PASSAGE_NEVER, after, reached)));
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    out.fa = select(w.fa, first, lanes == vec4<u32>(j));
    out.fb = select(w.fb, first, lanes + 4u == vec4<u32>(j));
    return out;
}

// The bridge's uniforms in [0, 1) of step s of the dispatch: word j & 3 of block
// 2 k + (j >> 2) of stream STREAM_BRIDGE for target j at absolute step k (src/rng.rs,
// `bridge_uniform`); `high` picks the block of targets 4..7.
fn bridge_uniforms(index: vec2<u32>, s: u32, high: u32) -> vec4<f32> {
    let k = block_add(vec2<u32>(step.step0, step.step0_hi), s);
    let block = vec2<u32>((k.x << 1u) | high, (k.y << 1u) | (k.x >> 31u));
    let w = philox4x32_10(philox_block_counter(index, block, STREAM_BRIDGE), step.key);
    return vec4<f32>(unit_closed_open(w.x), unit_closed_open(w.y), unit_closed_open(w.z), unit_closed_open(w.w));
}

// Walls, then targets, after step s of the dispatch moved the walk to `x_new`; `var2` is the
// step's noise variance sigma^2 dt per coordinate (read only by bridged targets).
fn walk_bound_noise(w: Walk, x_new: Point, s: u32, var2: f32) -> Walk {
    var out = w;
    // Lanes beyond DIM pinned to zero: carried through the loop, they would be computed
    // and blended at every step (common/state.wgsl, `fit`).
    var x = fit(x_new);
    // Absorbed at an earlier step: frozen below, and nothing is recorded.
    let alive = walk_alive(w);
    if (REFLECT_AXES != 0u) {
        let ra = mask4(REFLECT_AXES, 0u);
        let rb = mask4(REFLECT_AXES, 4u);
        if (REFLECT_ONCE == 1u) {
            x.a = reflect_once(x.a, ra, bounds[0], bounds[2]);
            if (DIM > 4u) {
                x.b = reflect_once(x.b, rb, bounds[1], bounds[3]);
            }
        } else {
            x.a = fold_reflect(x.a, ra, bounds[0], bounds[2], bounds[6]);
            if (DIM > 4u) {
                x.b = fold_reflect(x.b, rb, bounds[1], bounds[3], bounds[7]);
            }
        }
    }
    if (PERIODIC_AXES != 0u) {
        // Only the periodic lanes add (+ 0 is an operation: x + 0 is not x for x = -0), and
        // the others are the constant 0 (not carried through the loop).
        let pa = mask4(PERIODIC_AXES, 0u);
        let ra = fold_wrap(x.a, pa, bounds[0], bounds[4], bounds[6]);
        x.a = ra.v;
        out.wind.a = select(vec4<f32>(0.0), select(out.wind.a, out.wind.a + ra.n, vec4<bool>(alive)), pa);
        if (DIM > 4u) {
            let pb = mask4(PERIODIC_AXES, 4u);
            let rb = fold_wrap(x.b, pb, bounds[1], bounds[5], bounds[7]);
            x.b = rb.v;
            out.wind.b = select(vec4<f32>(0.0), select(out.wind.b, out.wind.b + rb.n, vec4<bool>(alive)), pb);
        }
    }
    if (ABSORBING != 0u) {
        // Absorbed at an earlier step: frozen where the target took it (see `Walk.dead`).
        let frozen = vec4<bool>(!alive);
        x.a = select(x.a, w.x.a, frozen);
        if (DIM > 4u) {
            x.b = select(x.b, w.x.b, frozen);
        }
    }
    out.x = x;
    // First-passage steps count from 1 (the step after which the particle is inside).
    // Targets one by one with literal indices (a loop index made the uniform reads
    // per-invocation gathers on lavapipe, twice as slow).
    let after = step.step0 + s + 1u;
    var ua = vec4<f32>(0.0);
    var ub = vec4<f32>(0.0);
    if ((BRIDGE & 0x0Fu) != 0u) { ua = bridge_uniforms(w.index, s, 0u); }
    if ((BRIDGE & 0xF0u) != 0u) { ub = bridge_uniforms(w.index, s, 1u); }
    if (TARGETS > 0u) { out = passage(out, 0u, w.x, x, after, var2, ua, alive); }
    if (TARGETS > 1u) { out = passage(out, 1u, w.x, x, after, var2, ua, alive); }
    if (TARGETS > 2u) { out = passage(out, 2u, w.x, x, after, var2, ua, alive); }
    if (TARGETS > 3u) { out = passage(out, 3u, w.x, x, after, var2, ua, alive); }
    if (TARGETS > 4u) { out = passage(out, 4u, w.x, x, after, var2, ub, alive); }
    if (TARGETS > 5u) { out = passage(out, 5u, w.x, x, after, var2, ub, alive); }
    if (TARGETS > 6u) { out = passage(out, 6u, w.x, x, after, var2, ub, alive); }
    if (TARGETS > 7u) { out = passage(out, 7u, w.x, x, after, var2, ub, alive); }
    // Lanes of no target: the constant PASSAGE_NEVER rather than a carried value.
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    out.fa = select(vec4<u32>(PASSAGE_NEVER), out.fa, lanes < vec4<u32>(TARGETS));
    out.fb = select(vec4<u32>(PASSAGE_NEVER), out.fb, lanes + 4u < vec4<u32>(TARGETS));
    // A basin other than the last one: a transition; the time with the old one as the last
    // basin ends with this step.
    if (BASINS > 0u && alive && (out.last == BASIN_NONE || !in_region(TARGETS + out.last, x))) {
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

// `walk_bound_noise` for kernels without bridged targets.
fn walk_bound(w: Walk, x_new: Point, s: u32) -> Walk {
    return walk_bound_noise(w, x_new, s, 0.0);
}

// The step after which the walk was absorbed in this dispatch (0: it was not): its first
// passage into an absorbing target (the first of them, when several hold it). For a walk
// alive at the start of the dispatch, the only kind that reaches `walk_end`.
fn walk_absorbed(w: Walk) -> u32 {
    let never = vec4<u32>(PASSAGE_NEVER);
    let a = select(never, w.fa, mask4(ABSORBING, 0u));
    let b = select(never, w.fb, mask4(ABSORBING, 4u));
    let m = min(min(a, b).xy, min(a, b).zw);
    let first = min(m.x, m.y);
    return select(first, 0u, first == PASSAGE_NEVER);
}

// Stores what the dispatch changed besides the position: the absorbed step, the
// first-passage steps reached in it and the windings.
fn walk_end(w: Walk) {
    if (BOUNDARY == 1u) {
        let dead = walk_absorbed(w);
        if (ABSORBING != 0u) {
            tags[w.tag0 + TAG_ABSORBED] = dead;
        }
        for (var j = 0u; j < TARGETS; j = j + 1u) {
            let f = select(w.fa[j & 3u], w.fb[j & 3u], j >= 4u);
            if (f != PASSAGE_NEVER && f != REACHED_EARLIER) {
                tags[w.tag0 + TAG_WINDING + DIM + j] = f;
            }
        }
        if (BASINS > 0u && w.last != BASIN_NONE) {
            // Until the end of the dispatch, or the step that absorbed the particle.
            let end = select(step.steps, dead - step.step0, dead != 0u);
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
