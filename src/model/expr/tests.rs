//! The expression language against exact answers: hand-derived values and gradients,
//! central finite differences in f64, the parser's columns, and no panics on any input.

use super::parse::{Names, parse};
use super::tree::{self, Var, to_text};
use super::*;
use proptest::prelude::*;

fn names(dim: usize, params: &[String]) -> Names<'_> {
    Names {
        dim,
        time: true,
        space: true,
        pair: false,
        params,
    }
}

fn eval(src: &str, x: &[f64], t: f64, params: &[(&str, f64)]) -> f64 {
    let names_: Vec<String> = params.iter().map(|(n, _)| n.to_string()).collect();
    let values: Vec<f64> = params.iter().map(|(_, v)| *v).collect();
    let e = parse(src, &names(x.len(), &names_)).unwrap();
    Tape::new(&[e]).eval(&Point::new(x, t), &values)[0]
}

#[test]
fn precedence_and_associativity() {
    // -x^2 is -(x^2); ^ is right-associative; unary minus in an exponent.
    assert_eq!(eval("-x^2", &[3.0], 0.0, &[]), -9.0);
    assert_eq!(eval("2^3^2", &[0.0], 0.0, &[]), 512.0);
    assert_eq!(eval("2^-1", &[0.0], 0.0, &[]), 0.5);
    assert_eq!(eval("1 - 2 - 3", &[0.0], 0.0, &[]), -4.0);
    assert_eq!(eval("8 / 4 / 2", &[0.0], 0.0, &[]), 1.0);
    assert_eq!(eval("2*3 + 4*5", &[0.0], 0.0, &[]), 26.0);
    assert_eq!(eval("-(1+2)*3", &[0.0], 0.0, &[]), -9.0);
    // Integer powers of negative numbers are defined (by multiplication).
    assert_eq!(eval("x^3", &[-2.0], 0.0, &[]), -8.0);
    assert_eq!(eval("pow(x, 2)", &[-3.0], 0.0, &[]), 9.0);
    assert_eq!(eval("1.5e1 + .5 + 2E-1", &[0.0], 0.0, &[]), 15.7);
}

#[test]
fn the_issue_potential_by_hand() {
    let (x, y, t): (f64, f64, f64) = (0.7, -0.4, 0.9);
    let (a, k, c) = (1.0, 4.0, 0.2);
    let want = a * (x * x - 1.0f64).powi(2) + 0.5 * k * y * y + c * (3.0 * x).sin() * (-t).exp();
    let got = eval(
        "a*(x^2 - 1)^2 + 0.5*k*y^2 + c*sin(3*x)*exp(-t)",
        &[x, y],
        t,
        &[("a", a), ("c", c), ("k", k)],
    );
    assert!(
        (got - want).abs() <= 1e-15 * want.abs().max(1.0),
        "{got} vs {want}"
    );
    // Every function once, against std.
    let v: f64 = 0.37;
    let cases: &[(&str, f64)] = &[
        ("exp(x)", v.exp()),
        ("log(x)", v.ln()),
        ("sqrt(x)", v.sqrt()),
        ("abs(-x)", v),
        ("sin(x)", v.sin()),
        ("cos(x)", v.cos()),
        ("tan(x)", v.tan()),
        ("tanh(x)", v.tanh()),
        ("sinh(x)", v.sinh()),
        ("cosh(x)", v.cosh()),
        ("atan2(x, 2)", v.atan2(2.0)),
        ("pow(x, 0.5)", v.powf(0.5)),
        ("min(x, 0.1)", 0.1),
        ("max(x, 0.1)", v),
        ("pi", std::f64::consts::PI),
    ];
    for (src, want) in cases {
        assert_eq!(eval(src, &[v], 0.0, &[]), *want, "{src}");
    }
}

fn error(src: &str, dim: usize, params: &[&str]) -> ExprError {
    let p: Vec<String> = params.iter().map(|s| s.to_string()).collect();
    parse(src, &names(dim, &p)).unwrap_err()
}

#[test]
fn errors_point_at_the_column() {
    let e = error("exp(x * (y + 1)", 2, &[]);
    assert_eq!(e.column, 16, "{e}");
    assert!(e.message.contains("expected ')'"), "{e}");
    assert_eq!(error("x + * y", 2, &[]).column, 5);
    assert_eq!(error("x $ y", 2, &[]).column, 3);
    assert_eq!(error("", 1, &[]).column, 1);
    assert_eq!(error("(x))", 1, &[]).column, 4);
    let e = error("kk * x", 1, &["k"]);
    assert_eq!(e.column, 1);
    assert!(
        e.to_string()
            .starts_with("unknown name 'kk' at 1; did you mean 'k'?"),
        "{e}"
    );
    let e = error("x + 2*y + z", 2, &[]);
    assert_eq!(e.column, 11);
    assert!(e.message.contains("dim = 2"), "{e}");
    let e = error("x5", 4, &[]);
    assert!(e.message.contains("axis 5"), "{e}");
    assert!(error("r * x", 1, &[]).message.contains("interaction"));
    assert!(error("exp", 1, &[]).message.contains("function"));
    assert!(error("x(2)", 1, &[]).message.contains("not a function"));
    assert!(error("atan2(x)", 1, &[]).message.contains("2 arguments"));
    assert!(error("1.2.3", 1, &[]).message.contains("malformed"));
    assert!(parse::check_param_name("x3").is_err());
    assert!(parse::check_param_name("exp").is_err());
    assert!(parse::check_param_name("3a").is_err());
    assert!(parse::check_param_name("k_2").is_ok());
}

/// Central difference of `src` along `axis` at `x`, step h: error O(h^2 f''') plus
/// rounding O(eps |f| / h); h = 1e-5 balances them near 1e-10 relative for the smooth
/// expressions below, so 1e-6 relative leaves four orders of margin either way.
fn finite_difference(e: &Expr, params: &[f64], x: &[f64], axis: usize) -> f64 {
    let h = 1e-5;
    let tape = Tape::new(std::slice::from_ref(e));
    let mut p = x.to_vec();
    p[axis] = x[axis] + h;
    let up = tape.eval(&Point::new(&p, 0.3), params)[0];
    p[axis] = x[axis] - h;
    let down = tape.eval(&Point::new(&p, 0.3), params)[0];
    (up - down) / (2.0 * h)
}

const SMOOTH: &[&str] = &[
    "a*(x^2 - 1)^2 + 0.5*k*y^2 + c*sin(3*x)*exp(-t)",
    "exp(-((x-1)^2 + (y+0.5)^2)/k) * cosh(y)",
    "log(1 + x^2 + y^4) / (2 + sin(x*y))",
    "sqrt(1 + x^2 + y^2) + tanh(a*x - y) * sinh(y/3)",
    "atan2(y, x + 3) + pow(2 + cos(x), y) + (x + 3)^-2",
    "tan(0.3*x) * (x*y)^3 - k/(1 + x^2)",
    "-x^2 - -y^2 + 2^x * c",
];

#[test]
fn symbolic_gradients_match_finite_differences() {
    let params = ["a".to_string(), "c".to_string(), "k".to_string()];
    let values = [1.3, 0.2, 4.0];
    for src in SMOOTH {
        let e = parse(src, &names(2, &params)).unwrap();
        for k in 0..50 {
            // Points of a 2D Halton-like low-discrepancy sequence over [-1.5, 1.5)^2.
            let frac = |v: f64| v - v.floor();
            let x = [
                3.0 * frac(0.5 + k as f64 * 0.618_033_988_749_895) - 1.5,
                3.0 * frac(0.25 + k as f64 * 0.754_877_666_246_693) - 1.5,
            ];
            for axis in 0..2 {
                let g = tree::derivative(&e, Var::Axis(axis as u8));
                let exact = Tape::new(&[g]).eval(&Point::new(&x, 0.3), &values)[0];
                let fd = finite_difference(&e, &values, &x, axis);
                assert!(
                    (exact - fd).abs() <= 1e-6 * exact.abs().max(1.0),
                    "{src} d/dx{axis} at {x:?}: {exact} vs {fd}"
                );
            }
        }
    }
}

#[test]
fn potential_gradient_and_pair_derivative() {
    let source = PotentialSource {
        expr: "(x^2 - 1)^2 + 0.5*y^2".into(),
        params: Params::new(),
        dim: 2,
    };
    let u = ExprPotential::new(source).unwrap();
    let g = u.gradient_at(&[0.5, 2.0], 0.0);
    assert_eq!(g, vec![4.0 * 0.5 * (0.25 - 1.0), 2.0]);
    assert_eq!(u.value_at(&[0.5, 2.0], 0.0), 0.5625 + 2.0);
    assert!(!u.is_timed());
    // W = eps exp(-r^2 / (2 s^2)): 2 W'(s) = -(eps / s^2) exp(-r^2 / (2 s^2)), finite at r = 0.
    let w = PairPotential::new(TimeSource {
        expr: "eps*exp(-r^2/(2*s^2))".into(),
        params: [("eps".to_string(), 2.0), ("s".to_string(), 0.5)].into(),
    })
    .unwrap();
    for r2 in [0.0, 0.3, 1.7] {
        let (value, dw) = w.at(r2);
        let e = (-r2 / 0.5f64).exp();
        assert!((value - 2.0 * e).abs() < 1e-15);
        assert!((dw + 2.0 / 0.25 * e).abs() < 1e-14, "{dw}");
    }
    // The gradient of a potential with a cusp at 0 and r itself: W = r has 2 W'(s) = 1/r.
    let cone = PairPotential::new(TimeSource {
        expr: "r".into(),
        params: Params::new(),
    })
    .unwrap();
    assert_eq!(cone.at(4.0).1, 0.5);
}

#[test]
fn shared_subexpressions_are_computed_once() {
    // exp(-x^2 - y^2) appears in U and both derivatives: one exp in the tape.
    let u = ExprPotential::new(PotentialSource {
        expr: "exp(-x^2 - y^2) + exp(-x^2 - y^2)*x".into(),
        params: Params::new(),
        dim: 2,
    })
    .unwrap();
    let exps = u
        .tape()
        .ops
        .iter()
        .filter(|op| matches!(op, tape::Op::Call(tree::Func::Exp, _)))
        .count();
    assert_eq!(exps, 1);
    let wgsl = u.wgsl();
    assert_eq!(wgsl.matches("exp(").count(), 1, "{wgsl}");
}

#[test]
fn unused_params_are_reported() {
    let t = TimeExpr::new(TimeSource {
        expr: "a*t".into(),
        params: [("a".to_string(), 1.0), ("b".to_string(), 2.0)].into(),
    })
    .unwrap();
    assert_eq!(t.unused_params(), vec!["b".to_string()]);
    assert_eq!(t.at(2.0), 2.0);
}

#[test]
fn models_serialise_as_their_source() {
    let m = SdeModel::new(SdeSource {
        drift: vec!["-x + w*y".into(), "-y - w*x".into()],
        diffusion: "0.5 + 0.4*tanh(x)".into(),
        params: [("w".to_string(), 2.0)].into(),
    })
    .unwrap();
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        json,
        r#"{"drift":["-x + w*y","-y - w*x"],"diffusion":"0.5 + 0.4*tanh(x)","params":{"w":2.0}}"#
    );
    let back: SdeModel = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    assert!(m.is_varying() && !m.is_timed());
    let bad = r#"{"drift":["-x +"],"diffusion":"1","params":{}}"#;
    assert!(serde_json::from_str::<SdeModel>(bad).is_err());
}

fn sde(drift: &[&str], diffusion: &str) -> SdeModel {
    SdeModel::new(SdeSource {
        drift: drift.iter().map(|d| d.to_string()).collect(),
        diffusion: diffusion.into(),
        params: Params::new(),
    })
    .unwrap()
}

#[test]
fn sde_coupling_of_axes_and_time_on_axes() {
    // x moves on its own; y's drift reads x, which does not matter to x's law.
    let m = sde(&["-x", "-y + x"], "0.5 + 0.4*tanh(x)");
    assert_eq!(m.couples(&[0]), None);
    assert_eq!(m.couples(&[1]), Some((1, 0)));
    assert_eq!(m.couples(&[0, 1]), None);
    // D reading another axis couples (reported as axis dim = 2).
    let m = sde(&["-x", "-y"], "1 + 0.1*y^2");
    assert_eq!(m.couples(&[0]), Some((2, 1)));
    assert_eq!(m.couples(&[1]), None);
    // A piecewise-constant dependence counts although its derivative is 0.
    let m = sde(&["-x + sign(z)", "-y", "-z"], "1");
    assert_eq!(m.couples(&[0, 1]), Some((0, 2)));
    // Dependences that simplify away do not.
    let m = sde(&["-x + (y - y)", "-y"], "1 + 0*y");
    assert_eq!(m.couples(&[0]), None);
    // Time: only the histogram axes' drifts and D count.
    let m = sde(&["-x", "-y*(1 + t)"], "1");
    assert!(m.is_timed() && !m.is_timed_on(&[0]) && m.is_timed_on(&[1]));
    let m = sde(&["-x", "-y"], "1 + exp(-t)");
    assert!(m.is_timed_on(&[0]));
    // The coefficient tape holds f and D only.
    let v = m
        .coefficient_tape()
        .eval(&Point::new(&[0.5, 2.0], 0.0), &m.params());
    assert_eq!(v, vec![-0.5, -2.0, 2.0]);
}

/// Random well-formed expressions over x0, x1, t and params p0, p1.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (0.0f64..10.0).prop_map(|v| format!("{v}")),
        prop_oneof![
            Just("x0"),
            Just("x1"),
            Just("t"),
            Just("p0"),
            Just("p1"),
            Just("y")
        ]
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop_oneof![Just("+"), Just("-"), Just("*"), Just("/"), Just("^")],
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (
                prop_oneof![
                    Just("exp"),
                    Just("sin"),
                    Just("tanh"),
                    Just("sqrt"),
                    Just("abs"),
                    Just("log")
                ],
                inner.clone()
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
            (
                prop_oneof![Just("atan2"), Just("min"), Just("max"), Just("pow")],
                inner.clone(),
                inner
            )
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
        ]
    })
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let text = String::from_utf8_lossy(&bytes);
        let params = ["k".to_string()];
        let _ = parse(&text, &names(3, &params));
    }

    #[test]
    fn random_tokens_never_panic(tokens in proptest::collection::vec(
        prop_oneof![Just("x"), Just("("), Just(")"), Just("^"), Just("-"), Just("*"), Just(","),
                    Just("exp"), Just("atan2"), Just("1e"), Just("2.5"), Just("k"), Just("r")], 0..24)) {
        let params = ["k".to_string()];
        let _ = parse(&tokens.concat(), &names(1, &params));
    }

    /// Printing a parsed expression and parsing it again gives the same function.
    #[test]
    fn round_trip(src in expression(), x0 in -2.0f64..2.0, x1 in -2.0f64..2.0, t in 0.0f64..3.0) {
        let params = ["p0".to_string(), "p1".to_string()];
        let values = [0.7, -1.3];
        let e = parse(&src, &names(2, &params)).unwrap();
        let again = parse(&to_text(&e), &names(2, &params)).unwrap();
        let xs = [x0, x1];
        let at = Point::new(&xs, t);
        let a = Tape::new(&[e]).eval(&at, &values)[0];
        let b = Tape::new(&[again]).eval(&at, &values)[0];
        prop_assert!(same(a, b), "{src}: {a} vs {b}");
    }
}

/// The tape evaluated in f32 the way the generated WGSL does it (Rust's f32 arithmetic is
/// correctly rounded and its functions are far inside the WGSL accuracy table): params and
/// constants rounded to f32, integer powers by the same repeated squaring as `powi_wgsl`.
fn eval_f32(tape: &Tape, x: &[f32], t: f32, params: &[f64]) -> Vec<f32> {
    use tape::Op;
    use tree::{Func, Func2};
    fn positive(a: f32, n: u32) -> f32 {
        match n {
            0 => 1.0,
            1 => a,
            _ => {
                let h = positive(a, n / 2);
                if n % 2 == 1 { h * h * a } else { h * h }
            }
        }
    }
    let mut v: Vec<f32> = Vec::with_capacity(tape.ops.len());
    for op in &tape.ops {
        let value = match *op {
            Op::Num(c) => c as f32,
            Op::Var(Var::Axis(a)) => x.get(usize::from(a)).copied().unwrap_or(0.0),
            Op::Var(Var::T) => t,
            Op::Var(Var::S) => 0.0,
            Op::Param(k) => params[usize::from(k)] as f32,
            Op::Neg(a) => -v[a],
            Op::Add(a, b) => v[a] + v[b],
            Op::Sub(a, b) => v[a] - v[b],
            Op::Mul(a, b) => v[a] * v[b],
            Op::Div(a, b) => v[a] / v[b],
            Op::Powi(a, n) => {
                let p = positive(v[a], n.unsigned_abs());
                if n < 0 { 1.0 / p } else { p }
            }
            Op::Pow(a, b) => v[a].powf(v[b]),
            Op::Call(f, a) => {
                let a = v[a];
                match f {
                    Func::Exp => a.exp(),
                    Func::Log => a.ln(),
                    Func::Sqrt => a.sqrt(),
                    Func::Abs => a.abs(),
                    Func::Sin => a.sin(),
                    Func::Cos => a.cos(),
                    Func::Tan => a.tan(),
                    Func::Tanh => a.tanh(),
                    Func::Sinh => a.sinh(),
                    Func::Cosh => a.cosh(),
                    Func::Sign => {
                        if a > 0.0 {
                            1.0
                        } else if a < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                    }
                }
            }
            Op::Call2(f, a, b) => match f {
                Func2::Atan2 => v[a].atan2(v[b]),
                Func2::Min => v[a].min(v[b]),
                Func2::Max => v[a].max(v[b]),
            },
            Op::Less(a, b, p, q) => {
                if v[a] < v[b] {
                    v[p]
                } else {
                    v[q]
                }
            }
        };
        v.push(value);
    }
    tape.outputs.iter().map(|&s| v[s]).collect()
}

/// U and its gradient in (x0, x1) as one tape, params p0, p1.
fn value_and_gradient(src: &str) -> Tape {
    let params = ["p0".to_string(), "p1".to_string()];
    let u = parse(src, &names(2, &params)).unwrap();
    let dx = tree::derivative(&u, Var::Axis(0));
    let dy = tree::derivative(&u, Var::Axis(1));
    Tape::new(&[u, dx, dy])
}

/// Checks |f32 evaluation - f64| <= bound for every output; returns the largest ratio and
/// whether every bound was finite.
fn check_bounds(tape: &Tape, x: [f32; 2], t: f32, params: &[f64]) -> Result<(f64, bool), String> {
    let xs = [f64::from(x[0]), f64::from(x[1])];
    let at = Point::new(&xs, f64::from(t));
    let exact = tape.eval(&at, params);
    let bounds = tape.f32_error_bounds(&at, params);
    let single = eval_f32(tape, &x, t, params);
    let mut worst: f64 = 0.0;
    let mut finite = true;
    for k in 0..exact.len() {
        if !bounds[k].is_finite() {
            finite = false;
            continue;
        }
        let err = (f64::from(single[k]) - exact[k]).abs();
        if err.is_nan() || err > bounds[k] {
            return Err(format!(
                "output {k} at {x:?}, t = {t}: f32 {} vs f64 {}, error {err:e} > bound {:e}",
                single[k], exact[k], bounds[k]
            ));
        }
        if bounds[k] > 0.0 {
            worst = worst.max(err / bounds[k]);
        }
    }
    Ok((worst, finite))
}

#[test]
fn f32_error_bounds_by_hand() {
    let ulp = f64::from(f32::EPSILON);
    let tiny = f64::from(f32::MIN_POSITIVE);
    let slack = 1.0 + 1.0 / f64::from(1u32 << 20);
    let bound = |src: &str, x: [f64; 2]| {
        value_and_gradient(src).f32_error_bounds(&Point::new(&x, 0.0), &[0.7, -1.3])
    };
    // One product of exact inputs: one ULP of the result.
    assert_eq!(bound("x*y", [3.0, 5.0])[0], (15.0 * ulp + tiny) * slack);
    // Exact operations on exact inputs: nothing.
    assert_eq!(bound("min(abs(x), -y)", [3.0, 5.0]), vec![0.0; 3]);
    // x^3 = (x * x) * x: two roundings, the first carried by the second product.
    let b = bound("x^3", [1.5, 0.0])[0] / slack;
    let first = 2.25 * ulp + tiny;
    let second = 1.5 * first + ulp * (3.375 + 1.5 * first) + tiny;
    assert!((b - second).abs() <= 1e-30, "{b:e} vs {second:e}");
    // A param is rounded on the host: exactly its distance to the nearest f32.
    let p = bound("p0*0 + p0", [0.0, 0.0])[0] / slack;
    assert_eq!(p, (0.7 - f64::from(0.7f32)).abs());
    // 0.1 is no f32: its rounding and one ULP for the literal's conversion.
    let c = bound("x + 0.1", [0.0, 0.0])[0] / slack;
    let e01 = (0.1 - f64::from(0.1f32)).abs() + 0.1 * ulp;
    assert_eq!(c, e01 + ulp * (0.1 + e01) + tiny);
    // Where WGSL promises nothing, the bound is infinite.
    assert!(bound("sin(x)", [4.0, 0.0])[0].is_infinite());
    assert!(bound("log(x)", [-1.0, 0.0])[0].is_infinite());
    assert!(bound("1/x", [0.0, 0.0])[0].is_infinite());
    assert!(bound("atan2(y, x)", [1.0, 0.0])[0].is_infinite());
    assert!(bound("exp(x)", [100.0, 0.0])[0].is_infinite());
    // sin inside [-pi, pi]: absolute 2^-11 (its argument is exact).
    assert_eq!(bound("sin(x)", [3.0, 0.0])[0] / slack, 1.0 / 2048.0);
    // sign of an exact input is exact; of an inexact one near 0 it may flip.
    assert_eq!(bound("sign(x)", [1e-30, 0.0])[0], 0.0);
    assert_eq!(bound("sign(x - 0.1)", [0.1, 0.0])[0] / slack, 2.0);
}

#[test]
fn f32_error_bounds_cover_an_f32_evaluation() {
    // Expressions with the box where the WGSL table bounds every function they use.
    let cases: &[(&str, [f64; 2], [f64; 2])] = &[
        (
            "p0*(x^2 - 1)^2 + 0.5*y^2 + 0.2*sin(3*x)*exp(-t)",
            [-1.0, 1.0],
            [-3.0, 3.0],
        ),
        (
            "-log(0.3*exp(-(x-1)^2 - y^2) + 0.7*exp(-2*(x+1)^2 - (y-0.5)^2))",
            [-3.0, 3.0],
            [-3.0, 3.0],
        ),
        (
            "(x^2 + 1)/(y^2 + 2) + x*y/(1 + x^2 + y^2) + (1 + x^2)^-3",
            [-2.0, 2.0],
            [-2.0, 2.0],
        ),
        (
            "atan2(y, x + 3) + min(x, y)^2 + max(abs(x) - 1, 0.5*y)",
            [-2.0, 2.0],
            [0.1, 2.0],
        ),
        (
            "x^7 - 3*x^-2*y^4 + (x^2 + y^2 + 1)^1.5 + pow(1 + y^2, 0.25) + x^64",
            [0.5, 1.1],
            [-1.5, 1.5],
        ),
        (
            "tanh(x)*y + sinh(0.5*y) + cosh(0.3*x) + tan(0.5*x) + sqrt(2 + y^2) + log(1 + x^2)",
            [-3.0, 3.0],
            [-3.0, 3.0],
        ),
        (
            "exp(p1*x) * cos(y) + sqrt(x^2 + y^2 + 0.01)",
            [-2.0, 2.0],
            [-3.0, 3.0],
        ),
    ];
    let params = [0.7, -1.3];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for &(src, bx, by) in cases {
        let tape = value_and_gradient(src);
        let mut worst: f64 = 0.0;
        for _ in 0..2000 {
            let x = [
                (bx[0] + (bx[1] - bx[0]) * uniform()) as f32,
                (by[0] + (by[1] - by[0]) * uniform()) as f32,
            ];
            let t = (3.0 * uniform()) as f32;
            let (ratio, finite) =
                check_bounds(&tape, x, t, &params).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert!(finite, "{src}: an infinite bound at {x:?}");
            worst = worst.max(ratio);
        }
        println!("{src}: largest error / bound {worst:.3}");
    }
}

proptest! {
    /// Random expressions and their derivatives: the f32 evaluation lies within the bound
    /// wherever the bound is finite.
    #[test]
    fn f32_error_bounds_hold_for_random_expressions(
        src in expression(), x0 in -2.0f32..2.0, x1 in -2.0f32..2.0, t in 0.0f32..3.0
    ) {
        let tape = value_and_gradient(&src);
        let checked = check_bounds(&tape, [x0, x1], t, &[0.7, -1.3]);
        prop_assert!(checked.is_ok(), "{src}: {}", checked.unwrap_err());
    }
}
