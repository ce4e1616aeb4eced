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
