// Gradients of the built-in potentials, the f32 twins of src/model/potential.rs.
// The including shader declares `override DIM: u32`, `override POTENTIAL: u32` and the
// storage array `potential_params` whose layout is written by `gpu_potential_params`
// (src/dynamics/potential_params.rs):
//   POTENTIAL 0 quadratic:      A (DIM x DIM, row-major), then the center c (DIM)
//   POTENTIAL 1 double_well:    (none)
//   POTENTIAL 2 mueller_brown:  scale
//   POTENTIAL 3 mixture:        K, then per component: log w_k - sum_i log sigma_ki,
//                               mu_k (DIM), 1 / sigma_k^2 (DIM)

const POTENTIAL_QUADRATIC: u32 = 0u;
const POTENTIAL_DOUBLE_WELL: u32 = 1u;
const POTENTIAL_MUELLER_BROWN: u32 = 2u;
const POTENTIAL_MIXTURE: u32 = 3u;

fn grad_quadratic(x: array<f32, 8>) -> array<f32, 8> {
    var g: array<f32, 8>;
    for (var i = 0u; i < DIM; i = i + 1u) {
        var s = 0.0;
        for (var j = 0u; j < DIM; j = j + 1u) {
            s = s + potential_params[i * DIM + j] * (x[j] - potential_params[DIM * DIM + j]);
        }
        g[i] = s;
    }
    return g;
}

fn grad_double_well(x: array<f32, 8>) -> array<f32, 8> {
    var g = x;
    g[0] = 4.0 * x[0] * (x[0] * x[0] - 1.0);
    return g;
}

// Müller & Brown (1979): U = sum_k A_k exp(a_k dx^2 + b_k dx dy + c_k dy^2).
fn grad_mueller_brown(x: array<f32, 8>) -> array<f32, 8> {
    let amp = array<f32, 4>(-200.0, -100.0, -170.0, 15.0);
    let a = array<f32, 4>(-1.0, -1.0, -6.5, 0.7);
    let b = array<f32, 4>(0.0, 0.0, 11.0, 0.6);
    let c = array<f32, 4>(-10.0, -10.0, -6.5, 0.7);
    let x0 = array<f32, 4>(1.0, 0.0, -0.5, -1.0);
    let y0 = array<f32, 4>(0.0, 0.5, 1.5, 1.0);
    var gx = 0.0;
    var gy = 0.0;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let dx = x[0] - x0[k];
        let dy = x[1] - y0[k];
        let e = amp[k] * exp(a[k] * dx * dx + b[k] * dx * dy + c[k] * dy * dy);
        gx = gx + e * (2.0 * a[k] * dx + b[k] * dy);
        gy = gy + e * (b[k] * dx + 2.0 * c[k] * dy);
    }
    var g = x;
    g[0] = potential_params[0] * gx;
    g[1] = potential_params[0] * gy;
    return g;
}

// grad U = -score of the mixture; responsibilities by a running log-sum-exp so that
// far-away points never give 0/0.
fn grad_mixture(x: array<f32, 8>) -> array<f32, 8> {
    let k_count = u32(potential_params[0]);
    let stride = 1u + 2u * DIM;
    var m = -3.4028235e38;
    var total = 0.0;
    var acc: array<f32, 8>;
    for (var k = 0u; k < k_count; k = k + 1u) {
        let base = 1u + k * stride;
        var l = potential_params[base];
        var v: array<f32, 8>;
        for (var i = 0u; i < DIM; i = i + 1u) {
            let d = potential_params[base + 1u + i] - x[i];
            let iv = potential_params[base + 1u + DIM + i];
            l = l - 0.5 * d * d * iv;
            v[i] = d * iv;
        }
        if (l > m) {
            let shrink = exp(m - l);
            total = total * shrink + 1.0;
            for (var i = 0u; i < DIM; i = i + 1u) {
                acc[i] = acc[i] * shrink + v[i];
            }
            m = l;
        } else {
            let w = exp(l - m);
            total = total + w;
            for (var i = 0u; i < DIM; i = i + 1u) {
                acc[i] = acc[i] + w * v[i];
            }
        }
    }
    var g: array<f32, 8>;
    for (var i = 0u; i < DIM; i = i + 1u) {
        g[i] = -acc[i] / total;
    }
    return g;
}

fn grad_u(x: array<f32, 8>) -> array<f32, 8> {
    switch POTENTIAL {
        case 0u: { return grad_quadratic(x); }
        case 1u: { return grad_double_well(x); }
        case 2u: { return grad_mueller_brown(x); }
        default: { return grad_mixture(x); }
    }
}
