// Gradients of the built-in potentials, the f32 twins of src/model/potential.rs.
// Points are common/point.wgsl's two-vec4 `Point`.
//
// The including shader declares `override DIM: u32`, `override POTENTIAL: u32` and the
// storage array `potential_params`, laid out by src/dynamics/potential_params.rs:
//   POTENTIAL 0 quadratic:      A (8 x 8, row-major, zero-padded), then the center c (8)
//   POTENTIAL 1 double_well:    (none)
//   POTENTIAL 2 mueller_brown:  scale
//   POTENTIAL 3 mixture:        K, then per component (17 floats): log w_k - sum_i log sigma_ki,
//                               mu_k (8, zero-padded), 1 / sigma_k^2 (8, zero-padded)

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
        Point(param4(64u), param4(68u)),
    );
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

// grad U = -score of the mixture. Responsibilities by a running log-sum-exp so that far
// points never give 0/0.
fn grad_mixture(x: Point) -> Point {
    let k_count = u32(potential_params[0]);
    var m = -3.4028235e38;
    var total = 0.0;
    var acc = Point(vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k = 0u; k < k_count; k = k + 1u) {
        let base = 1u + k * 17u;
        let da = param4(base + 1u) - x.a;
        let db = param4(base + 5u) - x.b;
        let iva = param4(base + 9u);
        let ivb = param4(base + 13u);
        let l = potential_params[base] - 0.5 * (dot(da * da, iva) + dot(db * db, ivb));
        let va = da * iva;
        let vb = db * ivb;
        if (l > m) {
            let shrink = exp(m - l);
            total = total * shrink + 1.0;
            acc = Point(acc.a * shrink + va, acc.b * shrink + vb);
            m = l;
        } else {
            let w = exp(l - m);
            total = total + w;
            acc = Point(acc.a + w * va, acc.b + w * vb);
        }
    }
    return Point(-acc.a / total, -acc.b / total);
}

// grad U of the potential chosen by `override POTENTIAL`; `quadratic` is only read for 0.
fn gradient(quadratic: Quadratic, x: Point) -> Point {
    switch POTENTIAL {
        case 0u: { return grad_quadratic(quadratic, x); }
        case 1u: { return grad_double_well(x); }
        case 2u: { return grad_mueller_brown(x); }
        default: { return grad_mixture(x); }
    }
}
