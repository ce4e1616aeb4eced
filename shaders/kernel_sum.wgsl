// Gaussian-kernel weighted means, the O(N M) sum shared by SD flow, the empirical score of
// reverse diffusion, MMD flow, SVGD and the MMD diagnostic. For queries q_i (i < count, rows
// first + i of `queries`, times `query_scale`), sources y_j and payloads p_j:
//   w_ij        = exp(-|query_scale q_i - y_j|^2 / (2 v))
//   out_mean[i] = sum_j w_ij p_j / sum_j w_ij
//   out_log[i]  = log sum_j w_ij
// CPU twin: src/dynamics/kernel_sum.rs (`kernel_sum_cpu`).
//
// Tiling. The host copies the sources (and payloads) in windows of 64 KiB into uniform
// buffers and dispatches once per window; every invocation reads the same source at the same
// time, a broadcast. Uniform memory rather than workgroup memory: lavapipe turns any load
// from workgroup or storage memory inside a loop into a scalar loop over the 8 SIMD lanes
// (its uniform-address shortcut is disabled under an execution mask), which made the kernel
// 2.5x slower, while uniform-buffer loads at a uniform offset are one scalar load and a
// broadcast; on hardware, a uniform broadcast is served by the constant cache. Running sums
// carry over between windows in `running` (per query: shift, sum, its compensation, the
// weighted payload sum and its compensation).
//
// Stability. Weights are taken relative to the smallest squared distance seen so far
// (log-sum-exp shift), so the largest weight is 1 and the denominator never underflows to
// 0/0 however far the query is. Each tile of TILE sources is summed with the shift of the
// tiles before it while tracking the tile's own smallest distance; only when that is far
// below the shift (weights beyond 2^REDO) is the tile summed again with its own shift, which
// in practice happens on the first tile only, so the common path costs one exp2 per
// interaction. Tile sums are combined into the running sums with Kahan compensation: a plain
// f32 running sum over 65536 sources is 1e-3..1e-2 off.
//
// Speed on software adapters (invocations run 8-wide in SIMD): scalar work with compile-time
// component selection (DIM is an override), two queries per invocation so that one source
// load serves two exp2, and the tile loop unrolled by four (each iteration costs lavapipe an
// execution-mask update).

override DIM: u32 = 2u;
override WG: u32 = 64u;
// 1: payloads p_j come from `payload_window`; 0: p_j = y_j.
override SEPARATE_PAYLOAD: u32 = 0u;

// Floats in a window: 64 KiB, the uniform-binding size every WebGPU device offers.
const WINDOW_FLOATS: u32 = 16384u;
const TILE: u32 = 256u;
// A tile is summed again with its own shift when its weights relative to the running shift
// would exceed 2^REDO (that keeps tile sums of TILE weights times payloads inside f32).
const REDO: f32 = 64.0;
// Params.flags bits.
const FIRST_WINDOW: u32 = 1u;
const LAST_WINDOW: u32 = 2u;

struct Params {
    first: u32,
    count: u32,
    // Sources in this window.
    rows: u32,
    out_first: u32,
    query_scale: f32,
    // log2(e) / (2 v): squared distance to exponent in base 2.
    c2: f32,
    // 1 / (2 v): squared distance to exponent in base e.
    ce: f32,
    flags: u32,
}

@group(0) @binding(0) var<storage, read> queries: array<f32>;
@group(0) @binding(1) var<uniform> window: array<vec4<f32>, 4096>;
@group(0) @binding(2) var<uniform> payload_window: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<uniform> params: Params;
// Per query, between windows: shift, sum, sum compensation, DIM payload sums, DIM
// compensations.
@group(0) @binding(4) var<storage, read_write> running: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_log: array<f32>;

// A row of DIM floats as two vec4 (zero beyond DIM), read with compile-time indices.
struct Row {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn zero_row() -> Row {
    return Row(vec4<f32>(0.0), vec4<f32>(0.0));
}

fn query_row(i: u32) -> Row {
    let o = i * DIM;
    var r = zero_row();
    r.a.x = queries[o];
    if (DIM > 1u) { r.a.y = queries[o + 1u]; }
    if (DIM > 2u) { r.a.z = queries[o + 2u]; }
    if (DIM > 3u) { r.a.w = queries[o + 3u]; }
    if (DIM > 4u) { r.b.x = queries[o + 4u]; }
    if (DIM > 5u) { r.b.y = queries[o + 5u]; }
    if (DIM > 6u) { r.b.z = queries[o + 6u]; }
    if (DIM > 7u) { r.b.w = queries[o + 7u]; }
    return r;
}

// Float k of the window.
fn wf(k: u32) -> f32 {
    return window[k >> 2u][k & 3u];
}

fn pf(k: u32) -> f32 {
    return payload_window[k >> 2u][k & 3u];
}

fn source_row(j: u32) -> Row {
    let o = j * DIM;
    var r = zero_row();
    r.a.x = wf(o);
    if (DIM > 1u) { r.a.y = wf(o + 1u); }
    if (DIM > 2u) { r.a.z = wf(o + 2u); }
    if (DIM > 3u) { r.a.w = wf(o + 3u); }
    if (DIM > 4u) { r.b.x = wf(o + 4u); }
    if (DIM > 5u) { r.b.y = wf(o + 5u); }
    if (DIM > 6u) { r.b.z = wf(o + 6u); }
    if (DIM > 7u) { r.b.w = wf(o + 7u); }
    return r;
}

fn payload_row(j: u32) -> Row {
    let o = j * DIM;
    var r = zero_row();
    r.a.x = pf(o);
    if (DIM > 1u) { r.a.y = pf(o + 1u); }
    if (DIM > 2u) { r.a.z = pf(o + 2u); }
    if (DIM > 3u) { r.a.w = pf(o + 3u); }
    if (DIM > 4u) { r.b.x = pf(o + 4u); }
    if (DIM > 5u) { r.b.y = pf(o + 5u); }
    if (DIM > 6u) { r.b.z = pf(o + 6u); }
    if (DIM > 7u) { r.b.w = pf(o + 7u); }
    return r;
}

fn dist2(q: Row, y: Row) -> f32 {
    let da = q.a - y.a;
    var s = da.x * da.x;
    if (DIM > 1u) { s = fma(da.y, da.y, s); }
    if (DIM > 2u) { s = fma(da.z, da.z, s); }
    if (DIM > 3u) { s = fma(da.w, da.w, s); }
    if (DIM > 4u) {
        let db = q.b - y.b;
        s = fma(db.x, db.x, s);
        if (DIM > 5u) { s = fma(db.y, db.y, s); }
        if (DIM > 6u) { s = fma(db.z, db.z, s); }
        if (DIM > 7u) { s = fma(db.w, db.w, s); }
    }
    return s;
}

// acc + w p on the first DIM components.
fn add_weighted(acc: Row, w: f32, p: Row) -> Row {
    var r = acc;
    r.a.x = fma(w, p.a.x, r.a.x);
    if (DIM > 1u) { r.a.y = fma(w, p.a.y, r.a.y); }
    if (DIM > 2u) { r.a.z = fma(w, p.a.z, r.a.z); }
    if (DIM > 3u) { r.a.w = fma(w, p.a.w, r.a.w); }
    if (DIM > 4u) { r.b.x = fma(w, p.b.x, r.b.x); }
    if (DIM > 5u) { r.b.y = fma(w, p.b.y, r.b.y); }
    if (DIM > 6u) { r.b.z = fma(w, p.b.z, r.b.z); }
    if (DIM > 7u) { r.b.w = fma(w, p.b.w, r.b.w); }
    return r;
}

fn scaled(r: Row, f: f32) -> Row {
    return Row(r.a * f, r.b * f);
}

// The sums of one tile for one query, weights exp2((shift - d2) c2).
struct TileSums {
    s: f32,
    acc: Row,
    // Smallest squared distance in the tile.
    dmin: f32,
}

// Both queries of an invocation.
struct TilePair {
    first: TileSums,
    second: TileSums,
}

fn empty_tile() -> TileSums {
    return TileSums(0.0, zero_row(), 3.0e38);
}

fn entry(t: TileSums, d2: f32, shift: f32, p: Row) -> TileSums {
    var out = t;
    out.dmin = min(t.dmin, d2);
    let w = exp2((shift - d2) * params.c2);
    out.s = t.s + w;
    out.acc = add_weighted(t.acc, w, p);
    return out;
}

// Source j of the window against both queries: one load serves two exponentials.
fn entry_pair(t: TilePair, q0: Row, q1: Row, j: u32, shift0: f32, shift1: f32) -> TilePair {
    let y = source_row(j);
    var p = y;
    if (SEPARATE_PAYLOAD == 1u) {
        p = payload_row(j);
    }
    return TilePair(
        entry(t.first, dist2(q0, y), shift0, p),
        entry(t.second, dist2(q1, y), shift1, p),
    );
}

// Sources begin .. end of the window.
fn tile_sums(q0: Row, q1: Row, begin: u32, end: u32, shift0: f32, shift1: f32) -> TilePair {
    var t = TilePair(empty_tile(), empty_tile());
    var j = begin;
    for (; j + 4u <= end; j = j + 4u) {
        t = entry_pair(t, q0, q1, j, shift0, shift1);
        t = entry_pair(t, q0, q1, j + 1u, shift0, shift1);
        t = entry_pair(t, q0, q1, j + 2u, shift0, shift1);
        t = entry_pair(t, q0, q1, j + 3u, shift0, shift1);
    }
    for (; j < end; j = j + 1u) {
        t = entry_pair(t, q0, q1, j, shift0, shift1);
    }
    return t;
}

// Running sums of one query relative to exp2(-shift c2), with Kahan compensations.
struct Running {
    started: bool,
    shift: f32,
    s: f32,
    s_comp: f32,
    acc: Row,
    acc_comp: Row,
}

fn running_stride() -> u32 {
    return 3u + 2u * DIM;
}

fn row_at(o: u32) -> Row {
    var r = zero_row();
    r.a.x = running[o];
    if (DIM > 1u) { r.a.y = running[o + 1u]; }
    if (DIM > 2u) { r.a.z = running[o + 2u]; }
    if (DIM > 3u) { r.a.w = running[o + 3u]; }
    if (DIM > 4u) { r.b.x = running[o + 4u]; }
    if (DIM > 5u) { r.b.y = running[o + 5u]; }
    if (DIM > 6u) { r.b.z = running[o + 6u]; }
    if (DIM > 7u) { r.b.w = running[o + 7u]; }
    return r;
}

fn store_row_at(o: u32, r: Row) {
    running[o] = r.a.x;
    if (DIM > 1u) { running[o + 1u] = r.a.y; }
    if (DIM > 2u) { running[o + 2u] = r.a.z; }
    if (DIM > 3u) { running[o + 3u] = r.a.w; }
    if (DIM > 4u) { running[o + 4u] = r.b.x; }
    if (DIM > 5u) { running[o + 5u] = r.b.y; }
    if (DIM > 6u) { running[o + 6u] = r.b.z; }
    if (DIM > 7u) { running[o + 7u] = r.b.w; }
}

fn load_running(local: u32) -> Running {
    if ((params.flags & FIRST_WINDOW) != 0u) {
        return Running(false, 0.0, 0.0, 0.0, zero_row(), zero_row());
    }
    let o = local * running_stride();
    return Running(
        true,
        running[o],
        running[o + 1u],
        running[o + 2u],
        row_at(o + 3u),
        row_at(o + 3u + DIM),
    );
}

fn store_running(local: u32, r: Running) {
    let o = local * running_stride();
    running[o] = r.shift;
    running[o + 1u] = r.s;
    running[o + 2u] = r.s_comp;
    store_row_at(o + 3u, r.acc);
    store_row_at(o + 3u + DIM, r.acc_comp);
}

// Whether a tile summed with the running shift must be summed again with its own.
fn needs_redo(r: Running, t: TileSums) -> bool {
    return !r.started || (r.shift - t.dmin) * params.c2 > REDO;
}

// Kahan step on a vec4: (sum, compensation) + x.
struct Kahan4 {
    sum: vec4<f32>,
    comp: vec4<f32>,
}

fn kahan4(sum: vec4<f32>, comp: vec4<f32>, x: vec4<f32>) -> Kahan4 {
    let y = x - comp;
    let t = sum + y;
    return Kahan4(t, (t - sum) - y);
}

// Adds a tile's sums, taken with shift `used`, to the running sums.
fn combine(r: Running, t: TileSums, used: f32) -> Running {
    let c2 = params.c2;
    var shift = t.dmin;
    if (r.started) {
        shift = min(r.shift, t.dmin);
    }
    // Both factors are <= 1: the new shift is the smallest distance seen.
    let keep = select(0.0, exp2((shift - r.shift) * c2), r.started);
    let take = exp2((shift - used) * c2);
    var out = r;
    let s = kahan4(vec4<f32>(r.s * keep), vec4<f32>(r.s_comp * keep), vec4<f32>(t.s * take));
    out.s = s.sum.x;
    out.s_comp = s.comp.x;
    let a = kahan4(r.acc.a * keep, r.acc_comp.a * keep, t.acc.a * take);
    out.acc.a = a.sum;
    out.acc_comp.a = a.comp;
    if (DIM > 4u) {
        let b = kahan4(r.acc.b * keep, r.acc_comp.b * keep, t.acc.b * take);
        out.acc.b = b.sum;
        out.acc_comp.b = b.comp;
    }
    out.shift = shift;
    out.started = true;
    return out;
}

fn finish(r: Running, local: u32) {
    if ((params.flags & LAST_WINDOW) == 0u) {
        store_running(local, r);
        return;
    }
    let o = (params.out_first + local) * DIM;
    // s >= 1 up to rounding: the nearest source has weight 1.
    let inv = 1.0 / r.s;
    let a = r.acc.a * inv;
    let b = r.acc.b * inv;
    out_mean[o] = a.x;
    if (DIM > 1u) { out_mean[o + 1u] = a.y; }
    if (DIM > 2u) { out_mean[o + 2u] = a.z; }
    if (DIM > 3u) { out_mean[o + 3u] = a.w; }
    if (DIM > 4u) { out_mean[o + 4u] = b.x; }
    if (DIM > 5u) { out_mean[o + 5u] = b.y; }
    if (DIM > 6u) { out_mean[o + 6u] = b.z; }
    if (DIM > 7u) { out_mean[o + 7u] = b.w; }
    out_log[params.out_first + local] = log(r.s) - r.shift * params.ce;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let group = wid.x + wid.y * nwg.x;
    // The invocation's two queries are local indices group * 2 WG + lid and that + WG.
    let local0 = group * 2u * WG + lid;
    let local1 = local0 + WG;
    if (local0 >= params.count) {
        return;
    }
    // Past the end, the second query repeats the first and writes nothing.
    let second = select(local0, local1, local1 < params.count);
    let q0 = scaled(query_row(params.first + local0), params.query_scale);
    let q1 = scaled(query_row(params.first + second), params.query_scale);
    var r0 = load_running(local0);
    var r1 = load_running(second);
    for (var begin = 0u; begin < params.rows; begin = begin + TILE) {
        let end = min(begin + TILE, params.rows);
        var t = tile_sums(q0, q1, begin, end, r0.shift, r1.shift);
        var used0 = r0.shift;
        var used1 = r1.shift;
        let redo0 = needs_redo(r0, t.first);
        let redo1 = needs_redo(r1, t.second);
        if (redo0 || redo1) {
            // One loop serves both; a query that did not need it keeps its running shift.
            used0 = select(r0.shift, t.first.dmin, redo0);
            used1 = select(r1.shift, t.second.dmin, redo1);
            t = tile_sums(q0, q1, begin, end, used0, used1);
        }
        r0 = combine(r0, t.first, used0);
        r1 = combine(r1, t.second, used1);
    }
    finish(r0, local0);
    if (local1 < params.count) {
        finish(r1, local1);
    }
}
