// Gaussian-kernel weighted means, the O(N M) sum shared by SD flow, the empirical score of
// reverse diffusion, MMD flow, SVGD and the MMD diagnostic. For queries q_i (i < count, rows
// first + i of `queries`, times `query_scale`), sources y_j (j < m) and payloads p_j:
//   w_ij        = exp(-|query_scale q_i - y_j|^2 / (2 v))
//   out_mean[i] = sum_j w_ij p_j / sum_j w_ij
//   out_log[i]  = log sum_j w_ij
// CPU twin: src/dynamics/kernel_sum.rs (`kernel_sum_cpu`).
//
// Stability: weights are taken relative to the smallest squared distance seen so far
// (log-sum-exp shift), so the largest weight is 1 and the denominator never underflows to
// 0/0 however far the query is. Each tile of TILE sources is summed with the shift of the
// tiles before it while tracking the tile's own smallest distance; only when that is far
// below the shift (weights beyond 2^REDO) is the tile summed again with its own shift, which
// in practice happens on the first tile only, so the common path costs one exp2 per
// interaction. Tile sums are combined into the running sums with Kahan compensation: a
// plain f32 running sum over 65536 sources is 1e-3..1e-2 off.
//
// Performance on software adapters (lavapipe runs invocations 8-wide in SIMD): all work is
// on scalars with compile-time component selection (DIM is an override), sources come from
// workgroup memory with a uniform index, and each invocation carries QUERIES queries so that
// one load of a source serves several exp2.

override DIM: u32 = 2u;
override WG: u32 = 64u;
// 1: payloads p_j come from `payload`; 0: p_j = y_j (and `payload` is never read).
override SEPARATE_PAYLOAD: u32 = 0u;
// Queries per invocation: 1 or 2.
override QUERIES: u32 = 2u;

const TILE: u32 = 256u;
// A tile is summed again with its own shift when its weights relative to the running shift
// would exceed 2^REDO (that keeps tile sums of 256 weights times payloads far inside f32).
const REDO: f32 = 64.0;

struct Params {
    first: u32,
    count: u32,
    m: u32,
    out_first: u32,
    query_scale: f32,
    // log2(e) / (2 v): squared distance to exponent in base 2.
    c2: f32,
    // 1 / (2 v): squared distance to exponent in base e.
    ce: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> queries: array<f32>;
@group(0) @binding(1) var<storage, read> sources: array<f32>;
@group(0) @binding(2) var<storage, read> payload: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read_write> out_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_log: array<f32>;

var<workgroup> tile_ya: array<vec4<f32>, TILE>;
var<workgroup> tile_yb: array<vec4<f32>, TILE>;
var<workgroup> tile_pa: array<vec4<f32>, TILE>;
var<workgroup> tile_pb: array<vec4<f32>, TILE>;

// A row of DIM floats as two vec4 (zero beyond DIM), read with compile-time indices.
struct Row {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn query_row(i: u32) -> Row {
    let o = i * DIM;
    var r = Row(vec4<f32>(0.0), vec4<f32>(0.0));
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

fn source_row(j: u32) -> Row {
    let o = j * DIM;
    var r = Row(vec4<f32>(0.0), vec4<f32>(0.0));
    r.a.x = sources[o];
    if (DIM > 1u) { r.a.y = sources[o + 1u]; }
    if (DIM > 2u) { r.a.z = sources[o + 2u]; }
    if (DIM > 3u) { r.a.w = sources[o + 3u]; }
    if (DIM > 4u) { r.b.x = sources[o + 4u]; }
    if (DIM > 5u) { r.b.y = sources[o + 5u]; }
    if (DIM > 6u) { r.b.z = sources[o + 6u]; }
    if (DIM > 7u) { r.b.w = sources[o + 7u]; }
    return r;
}

fn payload_row(j: u32) -> Row {
    let o = j * DIM;
    var r = Row(vec4<f32>(0.0), vec4<f32>(0.0));
    r.a.x = payload[o];
    if (DIM > 1u) { r.a.y = payload[o + 1u]; }
    if (DIM > 2u) { r.a.z = payload[o + 2u]; }
    if (DIM > 3u) { r.a.w = payload[o + 3u]; }
    if (DIM > 4u) { r.b.x = payload[o + 4u]; }
    if (DIM > 5u) { r.b.y = payload[o + 5u]; }
    if (DIM > 6u) { r.b.z = payload[o + 6u]; }
    if (DIM > 7u) { r.b.w = payload[o + 7u]; }
    return r;
}

fn dist2(q: Row, ya: vec4<f32>, yb: vec4<f32>) -> f32 {
    let da = q.a - ya;
    var s = da.x * da.x;
    if (DIM > 1u) { s = fma(da.y, da.y, s); }
    if (DIM > 2u) { s = fma(da.z, da.z, s); }
    if (DIM > 3u) { s = fma(da.w, da.w, s); }
    if (DIM > 4u) {
        let db = q.b - yb;
        s = fma(db.x, db.x, s);
        if (DIM > 5u) { s = fma(db.y, db.y, s); }
        if (DIM > 6u) { s = fma(db.z, db.z, s); }
        if (DIM > 7u) { s = fma(db.w, db.w, s); }
    }
    return s;
}

// acc + w p on the first DIM components.
fn add_weighted(acc: Row, w: f32, pa: vec4<f32>, pb: vec4<f32>) -> Row {
    var r = acc;
    r.a.x = fma(w, pa.x, r.a.x);
    if (DIM > 1u) { r.a.y = fma(w, pa.y, r.a.y); }
    if (DIM > 2u) { r.a.z = fma(w, pa.z, r.a.z); }
    if (DIM > 3u) { r.a.w = fma(w, pa.w, r.a.w); }
    if (DIM > 4u) { r.b.x = fma(w, pb.x, r.b.x); }
    if (DIM > 5u) { r.b.y = fma(w, pb.y, r.b.y); }
    if (DIM > 6u) { r.b.z = fma(w, pb.z, r.b.z); }
    if (DIM > 7u) { r.b.w = fma(w, pb.w, r.b.w); }
    return r;
}

fn scaled(r: Row, f: f32) -> Row {
    return Row(r.a * f, r.b * f);
}

// The sums of one tile for one query: weights exp2((shift - d2) c2).
struct TileSums {
    s: f32,
    acc: Row,
    // Smallest squared distance in the tile.
    dmin: f32,
}

fn zero_row() -> Row {
    return Row(vec4<f32>(0.0), vec4<f32>(0.0));
}

// Payload of tile entry j: the source itself unless SEPARATE_PAYLOAD.
fn tile_payload_a(j: u32) -> vec4<f32> {
    if (SEPARATE_PAYLOAD == 1u) { return tile_pa[j]; }
    return tile_ya[j];
}

fn tile_payload_b(j: u32) -> vec4<f32> {
    if (SEPARATE_PAYLOAD == 1u) { return tile_pb[j]; }
    return tile_yb[j];
}

fn tile_sums(q: Row, n: u32, shift: f32) -> TileSums {
    let c2 = params.c2;
    var t = TileSums(0.0, zero_row(), 3.0e38);
    for (var j = 0u; j < n; j = j + 1u) {
        let ya = tile_ya[j];
        var yb = vec4<f32>(0.0);
        if (DIM > 4u) { yb = tile_yb[j]; }
        let d2 = dist2(q, ya, yb);
        t.dmin = min(t.dmin, d2);
        let w = exp2((shift - d2) * c2);
        t.s = t.s + w;
        var pb = vec4<f32>(0.0);
        if (DIM > 4u) { pb = tile_payload_b(j); }
        t.acc = add_weighted(t.acc, w, tile_payload_a(j), pb);
    }
    return t;
}

// Two queries against the same tile entries, so each source load serves two exp2.
struct TileSums2 {
    first: TileSums,
    second: TileSums,
}

fn tile_sums2(q0: Row, q1: Row, n: u32, shift0: f32, shift1: f32) -> TileSums2 {
    let c2 = params.c2;
    var t0 = TileSums(0.0, zero_row(), 3.0e38);
    var t1 = TileSums(0.0, zero_row(), 3.0e38);
    for (var j = 0u; j < n; j = j + 1u) {
        let ya = tile_ya[j];
        var yb = vec4<f32>(0.0);
        var pb = vec4<f32>(0.0);
        if (DIM > 4u) {
            yb = tile_yb[j];
            pb = tile_payload_b(j);
        }
        let pa = tile_payload_a(j);
        let d0 = dist2(q0, ya, yb);
        let d1 = dist2(q1, ya, yb);
        t0.dmin = min(t0.dmin, d0);
        t1.dmin = min(t1.dmin, d1);
        let w0 = exp2((shift0 - d0) * c2);
        let w1 = exp2((shift1 - d1) * c2);
        t0.s = t0.s + w0;
        t1.s = t1.s + w1;
        t0.acc = add_weighted(t0.acc, w0, pa, pb);
        t1.acc = add_weighted(t1.acc, w1, pa, pb);
    }
    return TileSums2(t0, t1);
}

// Running sums of one query relative to exp2(-shift c2), with Kahan compensations.
struct Running {
    q: Row,
    started: bool,
    shift: f32,
    s: f32,
    s_comp: f32,
    acc: Row,
    acc_comp: Row,
}

fn new_running(q: Row) -> Running {
    return Running(q, false, 0.0, 0.0, 0.0, zero_row(), zero_row());
}

// Whether a tile summed with the running shift must be summed again with its own.
fn needs_redo(r: Running, t: TileSums) -> bool {
    return !r.started || (r.shift - t.dmin) * params.c2 > REDO;
}

// Adds a tile's sums, taken with shift `used`, to the running sums.
fn combine(r: Running, t: TileSums, used: f32) -> Running {
    let c2 = params.c2;
    var out = r;
    var shift = t.dmin;
    if (r.started) {
        shift = min(r.shift, t.dmin);
    }
    // Both factors are <= 1: the new shift is the smallest distance seen.
    let keep = select(0.0, exp2((shift - r.shift) * c2), r.started);
    let take = exp2((shift - used) * c2);
    out.s = r.s * keep;
    out.s_comp = r.s_comp * keep;
    out.acc = scaled(r.acc, keep);
    out.acc_comp = scaled(r.acc_comp, keep);
    // Kahan: y = x - comp; t = s + y; comp = (t - s) - y; s = t.
    let ys = t.s * take - out.s_comp;
    let ts = out.s + ys;
    out.s_comp = (ts - out.s) - ys;
    out.s = ts;
    let ya = t.acc.a * take - out.acc_comp.a;
    let ta = out.acc.a + ya;
    out.acc_comp.a = (ta - out.acc.a) - ya;
    out.acc.a = ta;
    if (DIM > 4u) {
        let yb = t.acc.b * take - out.acc_comp.b;
        let tb = out.acc.b + yb;
        out.acc_comp.b = (tb - out.acc.b) - yb;
        out.acc.b = tb;
    }
    out.shift = shift;
    out.started = true;
    return out;
}

fn finish(r: Running, local: u32) {
    let o = (params.out_first + local) * DIM;
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

fn scaled_query(local: u32) -> Row {
    // Invocations past the end compute on the last query (they still load tiles) and write
    // nothing.
    let i = params.first + min(local, params.count - 1u);
    return scaled(query_row(i), params.query_scale);
}

fn load_tile(base: u32, n: u32, lid: u32) {
    for (var k = lid; k < n; k = k + WG) {
        let y = source_row(base + k);
        tile_ya[k] = y.a;
        if (DIM > 4u) { tile_yb[k] = y.b; }
        if (SEPARATE_PAYLOAD == 1u) {
            let p = payload_row(base + k);
            tile_pa[k] = p.a;
            if (DIM > 4u) { tile_pb[k] = p.b; }
        }
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let group = wid.x + wid.y * nwg.x;
    // Query k of this invocation is local index group * QUERIES * WG + k * WG + lid.
    let local0 = group * QUERIES * WG + lid;
    let local1 = local0 + WG;
    var r0 = new_running(scaled_query(local0));
    var r1 = new_running(scaled_query(local1));
    for (var base = 0u; base < params.m; base = base + TILE) {
        let n = min(TILE, params.m - base);
        workgroupBarrier();
        load_tile(base, n, lid);
        workgroupBarrier();
        if (QUERIES == 2u) {
            var t = tile_sums2(r0.q, r1.q, n, r0.shift, r1.shift);
            var used0 = r0.shift;
            var used1 = r1.shift;
            let redo0 = needs_redo(r0, t.first);
            let redo1 = needs_redo(r1, t.second);
            if (redo0 || redo1) {
                // Both are summed again (one loop for the pair); the one that did not need it
                // keeps its running shift.
                used0 = select(r0.shift, t.first.dmin, redo0);
                used1 = select(r1.shift, t.second.dmin, redo1);
                t = tile_sums2(r0.q, r1.q, n, used0, used1);
            }
            r0 = combine(r0, t.first, used0);
            r1 = combine(r1, t.second, used1);
        } else {
            var t = tile_sums(r0.q, n, r0.shift);
            var used = r0.shift;
            if (needs_redo(r0, t)) {
                used = t.dmin;
                t = tile_sums(r0.q, n, used);
            }
            r0 = combine(r0, t, used);
        }
    }
    if (local0 < params.count) {
        finish(r0, local0);
    }
    if (QUERIES == 2u && local1 < params.count) {
        finish(r1, local1);
    }
}
