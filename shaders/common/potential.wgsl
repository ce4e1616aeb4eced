// Gradients and values of the built-in potentials, the f32 twins of src/model/potential.rs.
// Points are common/point.wgsl's two-vec4 `Point`.
//
// The including shader declares `override DIM: u32`, `override POTENTIAL: u32` and the
// storage array `potential_params`, laid out by src/dynamics/potential_params.rs (codes and
// offsets from src/gpu/abi.rs):
//   POTENTIAL_QUADRATIC:      A (8 x 8, row-major, zero-padded), then from QUADRATIC_CENTER
//                             the center c (8)
//   POTENTIAL_DOUBLE_WELL:    (none)
//   POTENTIAL_MUELLER_BROWN:  scale
//   POTENTIAL_MIXTURE:        K, then per component (MIXTURE_COMPONENT_FLOATS):
//                             log w_k - sum_i log sigma_ki, mu_k (8, zero-padded, from
//                             MIXTURE_MEAN), 1 / sigma_k^2 (8, zero-padded, from MIXTURE_INV_VAR)
//   POTENTIAL_EXPR:           the expression's params in name order
// A temperature expression's params follow the potential's (the generated
// `user_temperature` reads them at their offset).

fn param4(at: u32) -> vec4<f32> {
    return vec4<f32>(potential_params[at], potential_params[at + 1u], potential_params[at + 2u], potential_params[at + 3u]);
}

// The quadratic's matrix as four 4x4 blocks [[m00, m01], [m10, m11]] and its center,
// loaded once per invocation.
struct Quadratic {
    m00: mat4x4<f32>,
    m01: mat4x4<f32>,
    m10: mat4x4<f32>,
    m11: mat4x4<f32>,
    center: Point,
}

// Block (r, c) as a WGSL matrix whose column j is column j of the block, so that
// (m * v)_i = sum_j A_ij v_j.
fn quadratic_block(r: u32, c: u32) -> mat4x4<f32> {
    let row0 = 4u * r;
    let col0 = 4u * c;
    return mat4x4<f32>(
        vec4<f32>(potential_params[(row0 + 0u) * 8u + col0], potential_params[(row0 + 1u) * 8u + col0], potential_params[(row0 + 2u) * 8u + col0], potential_params[(row0 + 3u) * 8u + col0]),
        vec4<f32>(potential_params[(row0 + 0u) * 8u + col0 + 1u], potential_params[(row0 + 1u) * 8u + col0 + 1u], potential_params[(row0 + 2u) * 8u + col0 + 1u], potential_params[(row0 + 3u) * 8u + col0 + 1u]),
        vec4<f32>(potential_params[(row0 + 0u) * 8u + col0 + 2u], potential_params[(row0 + 1u) * 8u + col0 + 2u], potential_params[(row0 + 2u) * 8u + col0 + 2u], potential_params[(row0 + 3u) * 8u + col0 + 2u]),
        vec4<f32>(potential_params[(row0 + 0u) * 8u + col0 + 3u], potential_params[(row0 + 1u) * 8u + col0 + 3u], potential_params[(row0 + 2u) * 8u + col0 + 3u], potential_params[(row0 + 3u) * 8u + col0 + 3u]),
    );
}

fn load_quadratic() -> Quadratic {
    return Quadratic(
        quadratic_block(0u, 0u),
        quadratic_block(0u, 1u),
        quadratic_block(1u, 0u),
        quadratic_block(1u, 1u),
        Point(param4(QUADRATIC_CENTER), param4(QUADRATIC_CENTER + 4u)),
    );
}

// The quadratic of the potential, loaded once per invocation; zero for other potentials.
fn potential_quadratic() -> Quadratic {
    var quadratic: Quadratic;
    if (POTENTIAL == POTENTIAL_QUADRATIC) {
        quadratic = load_quadratic();
    }
    return quadratic;
}

fn grad_quadratic(q: Quadratic, x: Point) -> Point {
    let da = x.a - q.center.a;
    let db = x.b - q.center.b;
    return Point(q.m00 * da + q.m01 * db, q.m10 * da + q.m11 * db);
}

// U = (x_0^2 - 1)^2 + (1/2) sum_{i>=1} x_i^2.
fn grad_double_well(x: Point) -> Point {
    return Point(vec4<f32>(4.0 * x.a.x * (x.a.x * x.a.x - 1.0), x.a.yzw), x.b);
}

// Müller & Brown (1979): U = scale sum_k A_k exp(a_k dx^2 + b_k dx dy + c_k dy^2) on axes
// 0, 1, plus (1/2) sum_{i>=2} x_i^2.
fn grad_mueller_brown(x: Point) -> Point {
    let amp = vec4<f32>(-200.0, -100.0, -170.0, 15.0);
    let a = vec4<f32>(-1.0, -1.0, -6.5, 0.7);
    let b = vec4<f32>(0.0, 0.0, 11.0, 0.6);
    let c = vec4<f32>(-10.0, -10.0, -6.5, 0.7);
    let dx = x.a.x - vec4<f32>(1.0, 0.0, -0.5, -1.0);
    let dy = x.a.y - vec4<f32>(0.0, 0.5, 1.5, 1.0);
    let e = amp * exp(a * dx * dx + b * dx * dy + c * dy * dy);
    let scale = potential_params[0];
    let gx = scale * dot(e, 2.0 * a * dx + b * dy);
    let gy = scale * dot(e, b * dx + 2.0 * c * dy);
    return Point(vec4<f32>(gx, gy, x.a.zw), x.b);
}

// grad U = -score of the mixture (responsibilities by common/point.wgsl's running
// log-sum-exp).
fn grad_mixture(x: Point) -> Point {
    let k_count = u32(potential_params[0]);
    var sum = weighted_sum_start();
    for (var k = 0u; k < k_count; k = k + 1u) {
        let base = 1u + k * MIXTURE_COMPONENT_FLOATS;
        let da = param4(base + MIXTURE_MEAN) - x.a;
        let db = param4(base + MIXTURE_MEAN + 4u) - x.b;
        let iva = param4(base + MIXTURE_INV_VAR);
        let ivb = param4(base + MIXTURE_INV_VAR + 4u);
        let l = potential_params[base] - 0.5 * (dot(da * da, iva) + dot(db * db, ivb));
        sum = weighted_sum_add(sum, l, Point(da * iva, db * ivb));
    }
    return Point(-sum.acc.a / sum.total, -sum.acc.b / sum.total);
}

// grad U at time t of the potential chosen by `override POTENTIAL`; `quadratic` is only
// read for POTENTIAL_QUADRATIC. No host value reaches the default.
fn gradient(quadratic: Quadratic, x: Point, t: f32) -> Point {
    switch POTENTIAL {
        case POTENTIAL_QUADRATIC: { return grad_quadratic(quadratic, x); }
        case POTENTIAL_DOUBLE_WELL: { return grad_double_well(x); }
        case POTENTIAL_MUELLER_BROWN: { return grad_mueller_brown(x); }
        case POTENTIAL_MIXTURE: { return grad_mixture(x); }
        case POTENTIAL_EXPR: { return user_gradient(x, t); }
        default: { return poison_point(); }
    }
}

// U at time t, the f32 twin of `Potential::value_at` (MALA's acceptance ratio needs U as
// well as its gradient). Coordinates beyond DIM are zero, so whole-vec4 sums are exact.
fn value_quadratic(q: Quadratic, x: Point) -> f32 {
    let da = x.a - q.center.a;
    let db = x.b - q.center.b;
    return 0.5 * (dot(da, q.m00 * da + q.m01 * db) + dot(db, q.m10 * da + q.m11 * db));
}

fn value_double_well(x: Point) -> f32 {
    let a = x.a.x * x.a.x - 1.0;
    return a * a + 0.5 * (dot(x.a.yzw, x.a.yzw) + dot(x.b, x.b));
}

fn value_mueller_brown(x: Point) -> f32 {
    let amp = vec4<f32>(-200.0, -100.0, -170.0, 15.0);
    let a = vec4<f32>(-1.0, -1.0, -6.5, 0.7);
    let b = vec4<f32>(0.0, 0.0, 11.0, 0.6);
    let c = vec4<f32>(-10.0, -10.0, -6.5, 0.7);
    let dx = x.a.x - vec4<f32>(1.0, 0.0, -0.5, -1.0);
    let dy = x.a.y - vec4<f32>(0.0, 0.5, 1.5, 1.0);
    let e = amp * exp(a * dx * dx + b * dx * dy + c * dy * dy);
    return potential_params[0] * (e.x + e.y + e.z + e.w) + 0.5 * (dot(x.a.zw, x.a.zw) + dot(x.b, x.b));
}

// -log p: the running log-sum-exp of log w_k + log N(x; mu_k, sigma_k) (common/point.wgsl),
// plus (DIM / 2) log(2 pi).
fn value_mixture(x: Point) -> f32 {
    let k_count = u32(potential_params[0]);
    var sum = weighted_sum_start();
    for (var k = 0u; k < k_count; k = k + 1u) {
        let base = 1u + k * MIXTURE_COMPONENT_FLOATS;
        let da = param4(base + MIXTURE_MEAN) - x.a;
        let db = param4(base + MIXTURE_MEAN + 4u) - x.b;
        let l = potential_params[base] - 0.5 * (dot(da * da, param4(base + MIXTURE_INV_VAR)) + dot(db * db, param4(base + MIXTURE_INV_VAR + 4u)));
        sum = weighted_sum_add(sum, l, zero_point());
    }
    return 0.9189385332046727 * f32(DIM) - sum.m - log(sum.total);
}

// U at time t of the potential chosen by `override POTENTIAL` (see `gradient`).
fn potential_value(quadratic: Quadratic, x: Point, t: f32) -> f32 {
    switch POTENTIAL {
        case POTENTIAL_QUADRATIC: { return value_quadratic(quadratic, x); }
        case POTENTIAL_DOUBLE_WELL: { return value_double_well(x); }
        case POTENTIAL_MUELLER_BROWN: { return value_mueller_brown(x); }
        case POTENTIAL_MIXTURE: { return value_mixture(x); }
        case POTENTIAL_EXPR: { return user_value(x, t); }
        default: { return bitcast<f32>(0x7FC00000u); }
    }
}

// Laplacian of U at time t, the f32 twin of `Potential::laplacian_at` (the energy
// observer's configurational temperature, shaders/energy.wgsl). Closed forms and the
// mixture's derivation in src/model/potential.rs and src/model/mixture.rs.
fn laplacian_quadratic(q: Quadratic) -> f32 {
    // tr A: the padding beyond DIM is zero.
    return q.m00[0].x + q.m00[1].y + q.m00[2].z + q.m00[3].w + q.m11[0].x + q.m11[1].y + q.m11[2].z + q.m11[3].w;
}

fn laplacian_double_well(x: Point) -> f32 {
    return 12.0 * x.a.x * x.a.x - 4.0 + f32(DIM - 1u);
}

fn laplacian_mueller_brown(x: Point) -> f32 {
    let amp = vec4<f32>(-200.0, -100.0, -170.0, 15.0);
    let a = vec4<f32>(-1.0, -1.0, -6.5, 0.7);
    let b = vec4<f32>(0.0, 0.0, 11.0, 0.6);
    let c = vec4<f32>(-10.0, -10.0, -6.5, 0.7);
    let dx = x.a.x - vec4<f32>(1.0, 0.0, -0.5, -1.0);
    let dy = x.a.y - vec4<f32>(0.0, 0.5, 1.5, 1.0);
    let e = amp * exp(a * dx * dx + b * dx * dy + c * dy * dy);
    let gx = 2.0 * a * dx + b * dy;
    let gy = b * dx + 2.0 * c * dy;
    return potential_params[0] * dot(e, gx * gx + gy * gy + 2.0 * (a + c)) + f32(max(DIM, 2u) - 2u);
}

// -sum_k r_k (|s_k|^2 - tr Lambda_k) + |sum_k r_k s_k|^2, s_k = Lambda_k (mu_k - x).
fn laplacian_mixture(x: Point) -> f32 {
    let k_count = u32(potential_params[0]);
    var sum = weighted_sum_start();
    var curv = weighted_sum_start();
    for (var k = 0u; k < k_count; k = k + 1u) {
        let base = 1u + k * MIXTURE_COMPONENT_FLOATS;
        let da = param4(base + MIXTURE_MEAN) - x.a;
        let db = param4(base + MIXTURE_MEAN + 4u) - x.b;
        let iva = param4(base + MIXTURE_INV_VAR);
        let ivb = param4(base + MIXTURE_INV_VAR + 4u);
        let l = potential_params[base] - 0.5 * (dot(da * da, iva) + dot(db * db, ivb));
        let sa = da * iva;
        let sb = db * ivb;
        let c = dot(sa, sa) + dot(sb, sb) - dot(iva, vec4<f32>(1.0)) - dot(ivb, vec4<f32>(1.0));
        sum = weighted_sum_add(sum, l, Point(sa, sb));
        curv = weighted_sum_add(curv, l, Point(vec4<f32>(c, 0.0, 0.0, 0.0), vec4<f32>(0.0)));
    }
    let ga = sum.acc.a / sum.total;
    let gb = sum.acc.b / sum.total;
    return -curv.acc.a.x / curv.total + dot(ga, ga) + dot(gb, gb);
}

// Delta U at time t of the potential chosen by `override POTENTIAL` (see `gradient`).
fn potential_laplacian(quadratic: Quadratic, x: Point, t: f32) -> f32 {
    switch POTENTIAL {
        case POTENTIAL_QUADRATIC: { return laplacian_quadratic(quadratic); }
        case POTENTIAL_DOUBLE_WELL: { return laplacian_double_well(x); }
        case POTENTIAL_MUELLER_BROWN: { return laplacian_mueller_brown(x); }
        case POTENTIAL_MIXTURE: { return laplacian_mixture(x); }
        case POTENTIAL_EXPR: { return user_laplacian(x, t); }
        default: { return bitcast<f32>(0x7FC00000u); }
    }
}

// The user region: each line between the markers is a one-line stub that the host replaces
// with a function generated from the scenario's expressions (src/shaders.rs,
// `with_user_functions`); a stub left in place poisons its result.
// USER CODE BEGIN
fn user_gradient(x: Point, t: f32) -> Point { return poison_point(); }
fn user_value(x: Point, t: f32) -> f32 { return bitcast<f32>(0x7FC00000u); }
fn user_laplacian(x: Point, t: f32) -> f32 { return bitcast<f32>(0x7FC00000u); }
fn user_temperature(t: f32) -> f32 { return bitcast<f32>(0x7FC00000u); }
// USER CODE END
