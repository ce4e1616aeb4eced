// Kernel flows and mean-field interacting particles: the per-particle stages around the
// kernel sums (shaders/kernel_sum.wgsl) of one step. Rows of `means` and `logs`: [0, N) the
// first kernel sum of the step, [N, 2N) the second. CPU twins: src/dynamics/kernel_flows.rs.
//
// MODE 0 sd_flow (seed 004):   PRE  z = y + sigma eps                        (stream 2)
//                              sums D_p(z) over the targets, D_q(z) over the particles
//                              POST y += eta (D_p - D_q)
// MODE 1 sd_flow, approximate: as 0 with D_q(z) ~ y (no second sum)
// MODE 2 mmd_flow:             PRE  z = y + beta eps (noise injection)       (stream 2)
//                              sums S_p, m_p over the targets, S_q, m_q over the particles
//                                   (Gaussian kernel of bandwidth h)
//                              POST y += (eta / h^2) [(S_q / N)(z - m_q) - (S_p / M)(z - m_p)]
//                                   = -eta grad_z [(1/N) sum_j k(z, y_j) - (1/M) sum_m k(z, x_m)]
// MODE 3 svgd:                 PRE  score_i = grad log p(y_i): the target mixture's exact
//                                   score, or (SCORE_FROM 1) the kernel-smoothed score of the
//                                   target samples (E_eps[x | y] - y) / eps^2 from sum 0
//                              sums over the particles with k = exp(-r^2 / h): payload the
//                                   scores (ms) and the positions (m), both with S
//                              POST y += (eta / N) S [ms + (2 / h)(y - m)]
// MODE 4 interaction:          sum over the particles, kernel width w (quadratic W: w = inf,
//                                   one query only: SHARED_SUM)
//                              POST y += [-grad V(y) - kappa (S / N)(y - m)] dt + sqrt(2 T dt) xi
//                                   (stream 0); kappa = b (quadratic) or -strength / w^2
// Includes common/chunk.wgsl, common/philox.wgsl, common/point.wgsl, common/potential.wgsl,
// common/noise.wgsl.

override DIM: u32 = 2u;
// Needed by common/noise.wgsl; a step here takes single steps' normals only.
override ROUND_STEPS: u32 = 1u;
override POTENTIAL: u32 = 1u;
override MODE: u32 = 0u;
override STAGE: u32 = 0u;
override SCORE_FROM: u32 = 0u;
// sd_flow with a mixture target's exact noised score: D_p(z) = z - sigma^2 grad U_sigma(z),
// U_sigma = -log of the mixture with every variance grown by sigma^2 (the host rewrites
// `potential_params` each step).
override EXACT_P: u32 = 0u;
// Interaction with quadratic W: the flat-kernel sum is the same for every particle (the
// ensemble mean, S = N), so it is computed once, for query 0, and every particle reads row 0:
// O(N) per step instead of O(N^2).
override SHARED_SUM: u32 = 0u;
override WG: u32 = 64u;

struct Step {
    key: vec2<u32>,
    // Philox block (low word; high word in block0_hi) and lane of the step's first normal:
    // g = step * DIM.
    block0: u32,
    lane0: u32,
    // sigma (sd_flow), beta (mmd_flow), sqrt(2 T dt) (interaction).
    noise_scale: f32,
    // eta (sd_flow), eta / h^2 (mmd_flow), eta / N (svgd), dt (interaction).
    a: f32,
    // 1 / N (mmd_flow), 2 / h (svgd), kappa / N (interaction).
    b: f32,
    // 1 / M (mmd_flow), 1 / eps^2 (svgd with samples).
    c: f32,
    block0_hi: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read_write> proxy: array<f32>;
@group(0) @binding(4) var<storage, read> means: array<f32>;
@group(0) @binding(5) var<storage, read> logs: array<f32>;
@group(0) @binding(6) var<storage, read_write> score: array<f32>;
@group(0) @binding(7) var<storage, read> potential_params: array<f32>;
@group(0) @binding(8) var<storage, read_write> nonfinite: array<atomic<u32>>;

fn mean_row(r: u32) -> Point {
    let o = r * DIM;
    var p = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    p.a.x = means[o];
    if (DIM > 1u) { p.a.y = means[o + 1u]; }
    if (DIM > 2u) { p.a.z = means[o + 2u]; }
    if (DIM > 3u) { p.a.w = means[o + 3u]; }
    if (DIM > 4u) { p.b.x = means[o + 4u]; }
    if (DIM > 5u) { p.b.y = means[o + 5u]; }
    if (DIM > 6u) { p.b.z = means[o + 6u]; }
    if (DIM > 7u) { p.b.w = means[o + 7u]; }
    return p;
}

fn proxy_row(i: u32) -> Point {
    let o = i * DIM;
    var p = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    p.a.x = proxy[o];
    if (DIM > 1u) { p.a.y = proxy[o + 1u]; }
    if (DIM > 2u) { p.a.z = proxy[o + 2u]; }
    if (DIM > 3u) { p.a.w = proxy[o + 3u]; }
    if (DIM > 4u) { p.b.x = proxy[o + 4u]; }
    if (DIM > 5u) { p.b.y = proxy[o + 5u]; }
    if (DIM > 6u) { p.b.z = proxy[o + 6u]; }
    if (DIM > 7u) { p.b.w = proxy[o + 7u]; }
    return p;
}

fn store_proxy(i: u32, p: Point) {
    let o = i * DIM;
    proxy[o] = p.a.x;
    if (DIM > 1u) { proxy[o + 1u] = p.a.y; }
    if (DIM > 2u) { proxy[o + 2u] = p.a.z; }
    if (DIM > 3u) { proxy[o + 3u] = p.a.w; }
    if (DIM > 4u) { proxy[o + 4u] = p.b.x; }
    if (DIM > 5u) { proxy[o + 5u] = p.b.y; }
    if (DIM > 6u) { proxy[o + 6u] = p.b.z; }
    if (DIM > 7u) { proxy[o + 7u] = p.b.w; }
}

fn store_score(i: u32, p: Point) {
    let o = i * DIM;
    score[o] = p.a.x;
    if (DIM > 1u) { score[o + 1u] = p.a.y; }
    if (DIM > 2u) { score[o + 2u] = p.a.z; }
    if (DIM > 3u) { score[o + 3u] = p.a.w; }
    if (DIM > 4u) { score[o + 4u] = p.b.x; }
    if (DIM > 5u) { score[o + 5u] = p.b.y; }
    if (DIM > 6u) { score[o + 6u] = p.b.z; }
    if (DIM > 7u) { score[o + 7u] = p.b.w; }
}

fn scale(p: Point, f: f32) -> Point {
    return Point(p.a * f, p.b * f);
}

fn add(p: Point, q: Point) -> Point {
    return Point(p.a + q.a, p.b + q.b);
}

fn sub(p: Point, q: Point) -> Point {
    return Point(p.a - q.a, p.b - q.b);
}

// grad U of common/potential.wgsl (V for interaction, -log p of a mixture target for svgd).
fn grad_u(x: Point) -> Point {
    var quadratic: Quadratic;
    if (POTENTIAL == 0u) {
        quadratic = load_quadratic();
    }
    return gradient(quadratic, x);
}

// D_p(z) of sd_flow: sum 0's weighted mean, or the exact one of a mixture target.
fn target_denoiser(i: u32) -> Point {
    if (EXACT_P == 1u) {
        let z = proxy_row(i);
        let sigma = step.noise_scale;
        return sub(z, scale(grad_u(z), sigma * sigma));
    }
    return mean_row(i);
}

fn finish(i: u32, x: Point) {
    if (!point_is_finite(x)) {
        atomicAdd(&nonfinite[0], 1u);
    }
    store_point(i, x);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let n = chunk.count;
    if (i >= n) {
        return;
    }
    let y = load_point(i);
    let index = global_index(chunk.base, i);
    if (STAGE == 0u) {
        if (MODE == 3u) {
            if (SCORE_FROM == 1u) {
                store_score(i, scale(sub(mean_row(i), y), step.c));
            } else {
                store_score(i, scale(grad_u(y), -1.0));
            }
        } else {
            let eps = step_normals(index, vec2<u32>(step.block0, step.block0_hi), step.lane0, 2u, step.key);
            store_proxy(i, add(y, scale(eps, step.noise_scale)));
        }
        return;
    }
    var next = y;
    switch MODE {
        case 0u: {
            next = add(y, scale(sub(target_denoiser(i), mean_row(n + i)), step.a));
        }
        case 1u: {
            next = add(y, scale(sub(target_denoiser(i), y), step.a));
        }
        case 2u: {
            let z = proxy_row(i);
            let sp = exp(logs[i]) * step.c;
            let sq = exp(logs[n + i]) * step.b;
            let drift = sub(scale(sub(z, mean_row(n + i)), sq), scale(sub(z, mean_row(i)), sp));
            next = add(y, scale(drift, step.a));
        }
        case 3u: {
            let s = exp(logs[n + i]);
            let repulsion = scale(sub(y, mean_row(n + i)), step.b);
            next = add(y, scale(add(mean_row(i), repulsion), step.a * s));
        }
        default: {
            let r = select(i, 0u, SHARED_SUM == 1u);
            let s = exp(logs[r]);
            let drift = add(grad_u(y), scale(sub(y, mean_row(r)), step.b * s));
            let xi = step_normals(index, vec2<u32>(step.block0, step.block0_hi), step.lane0, 0u, step.key);
            next = add(sub(y, scale(drift, step.a)), scale(xi, step.noise_scale));
        }
    }
    finish(i, next);
}
