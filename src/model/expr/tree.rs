//! Expression trees with simplifying constructors and exact symbolic derivatives.
//!
//! Every constructor folds constants and drops identities (`a + 0`, `1 * a`, `a ^ 1`, ...),
//! so derivatives come out small without a separate simplification pass; structurally equal
//! subtrees are shared again when the tree is linearised (src/model/expr/tape.rs).

use std::sync::Arc;

/// A variable an expression may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    /// Coordinate `axis` (0..8) of the point.
    Axis(u8),
    /// Time.
    T,
    /// The squared pair distance s = r^2 of an interaction (`r` is written sqrt(s)).
    S,
}

/// Functions of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    Exp,
    Log,
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sinh,
    Cosh,
    /// -1, 0 or 1 (the derivative of abs).
    Sign,
}

/// Functions of two arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func2 {
    Atan2,
    Min,
    Max,
}

impl Func {
    pub const NAMED: &[(&str, Func)] = &[
        ("exp", Func::Exp),
        ("log", Func::Log),
        ("sqrt", Func::Sqrt),
        ("abs", Func::Abs),
        ("sin", Func::Sin),
        ("cos", Func::Cos),
        ("tan", Func::Tan),
        ("tanh", Func::Tanh),
        ("sinh", Func::Sinh),
        ("cosh", Func::Cosh),
        ("sign", Func::Sign),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Tanh => "tanh",
            Func::Sinh => "sinh",
            Func::Cosh => "cosh",
            Func::Sign => "sign",
        }
    }

    pub fn apply(self, a: f64) -> f64 {
        match self {
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
            // WGSL's sign: 0 at 0 (f64::signum would give 1).
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
}

impl Func2 {
    pub const NAMED: &[(&str, Func2)] = &[
        ("atan2", Func2::Atan2),
        ("min", Func2::Min),
        ("max", Func2::Max),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func2::Atan2 => "atan2",
            Func2::Min => "min",
            Func2::Max => "max",
        }
    }

    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Func2::Atan2 => a.atan2(b),
            Func2::Min => a.min(b),
            Func2::Max => a.max(b),
        }
    }
}

/// A shared, immutable expression.
pub type Expr = Arc<Node>;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Num(f64),
    Var(Var),
    /// Parameter `k` of the table the expression belongs to.
    Param(u16),
    Neg(Expr),
    Add(Expr, Expr),
    Sub(Expr, Expr),
    Mul(Expr, Expr),
    Div(Expr, Expr),
    /// a ^ b; an integer constant exponent is evaluated by multiplication (any sign of a).
    Pow(Expr, Expr),
    Call(Func, Expr),
    Call2(Func2, Expr, Expr),
    /// `if a < b { p } else { q }` (the derivatives of min and max).
    Less(Expr, Expr, Expr, Expr),
}

pub fn num(v: f64) -> Expr {
    Arc::new(Node::Num(v))
}

pub fn var(v: Var) -> Expr {
    Arc::new(Node::Var(v))
}

pub fn param(k: u16) -> Expr {
    Arc::new(Node::Param(k))
}

fn constant(e: &Expr) -> Option<f64> {
    match **e {
        Node::Num(v) => Some(v),
        _ => None,
    }
}

fn is(e: &Expr, v: f64) -> bool {
    constant(e) == Some(v)
}

pub fn neg(a: Expr) -> Expr {
    match &*a {
        Node::Num(v) => num(-v),
        Node::Neg(inner) => inner.clone(),
        _ => Arc::new(Node::Neg(a)),
    }
}

pub fn add(a: Expr, b: Expr) -> Expr {
    match (constant(&a), constant(&b)) {
        (Some(x), Some(y)) => num(x + y),
        (Some(0.0), _) => b,
        (_, Some(0.0)) => a,
        _ => match &*b {
            Node::Neg(inner) => sub(a, inner.clone()),
            _ => Arc::new(Node::Add(a, b)),
        },
    }
}

pub fn sub(a: Expr, b: Expr) -> Expr {
    match (constant(&a), constant(&b)) {
        (Some(x), Some(y)) => num(x - y),
        (Some(0.0), _) => neg(b),
        (_, Some(0.0)) => a,
        _ if a == b => num(0.0),
        _ => match &*b {
            Node::Neg(inner) => add(a, inner.clone()),
            _ => Arc::new(Node::Sub(a, b)),
        },
    }
}

pub fn mul(a: Expr, b: Expr) -> Expr {
    match (constant(&a), constant(&b)) {
        (Some(x), Some(y)) => num(x * y),
        (Some(0.0), _) | (_, Some(0.0)) => num(0.0),
        (Some(1.0), _) => b,
        (_, Some(1.0)) => a,
        (Some(-1.0), _) => neg(b),
        (_, Some(-1.0)) => neg(a),
        // Constants to the front, and folded: c1 * (c2 * x) = (c1 c2) * x.
        (None, Some(_)) => mul(b, a),
        (Some(x), None) => match &*b {
            Node::Mul(c, rest) if constant(c).is_some() => {
                mul(num(x * constant(c).unwrap_or(1.0)), rest.clone())
            }
            Node::Neg(inner) => mul(num(-x), inner.clone()),
            _ => Arc::new(Node::Mul(a, b)),
        },
        (None, None) => match (&*a, &*b) {
            (Node::Neg(p), Node::Neg(q)) => mul(p.clone(), q.clone()),
            (Node::Neg(p), _) => neg(mul(p.clone(), b.clone())),
            (_, Node::Neg(q)) => neg(mul(a.clone(), q.clone())),
            // Pull a constant factor out: (c x) y = c (x y).
            (Node::Mul(c, rest), _) if constant(c).is_some() => {
                mul(c.clone(), mul(rest.clone(), b.clone()))
            }
            (_, Node::Mul(c, rest)) if constant(c).is_some() => {
                mul(c.clone(), mul(a.clone(), rest.clone()))
            }
            _ if a == b => pow(a, num(2.0)),
            _ => Arc::new(Node::Mul(a, b)),
        },
    }
}

pub fn div(a: Expr, b: Expr) -> Expr {
    match (constant(&a), constant(&b)) {
        (Some(x), Some(y)) => num(x / y),
        (Some(0.0), _) => num(0.0),
        (_, Some(1.0)) => a,
        (_, Some(-1.0)) => neg(a),
        // Division by a nonzero constant is a multiplication by its inverse (exact for
        // powers of two, within half an ulp otherwise).
        (_, Some(y)) if y != 0.0 && y.is_finite() => mul(num(1.0 / y), a),
        _ => match (&*a, &*b) {
            (Node::Neg(p), _) => neg(div(p.clone(), b.clone())),
            _ => Arc::new(Node::Div(a, b)),
        },
    }
}

/// The integer value of a constant exponent, where it is one of moderate size.
pub fn integer_exponent(e: &Expr) -> Option<i32> {
    let v = constant(e)?;
    (v.fract() == 0.0 && v.abs() <= 64.0).then_some(v as i32)
}

pub fn pow(a: Expr, b: Expr) -> Expr {
    match (constant(&a), constant(&b)) {
        (Some(x), Some(y)) => num(power(x, y)),
        (_, Some(0.0)) => num(1.0),
        (_, Some(1.0)) => a,
        _ => match (&*a, integer_exponent(&b)) {
            // (a^m)^n = a^(m n) for integers m, n.
            (Node::Pow(base, m), Some(n)) if integer_exponent(m).is_some() => {
                let m = integer_exponent(m).unwrap_or(1);
                pow(base.clone(), num(f64::from(m * n)))
            }
            // sqrt(a)^(2n) = a^n (a >= 0 wherever sqrt(a) is defined).
            (Node::Call(Func::Sqrt, inner), Some(n)) if n % 2 == 0 => {
                pow(inner.clone(), num(f64::from(n / 2)))
            }
            _ => Arc::new(Node::Pow(a, b)),
        },
    }
}

/// a ^ b as the shaders evaluate it: integer exponents by repeated multiplication (defined
/// for negative a), others by powf.
pub fn power(a: f64, b: f64) -> f64 {
    if b.fract() == 0.0 && b.abs() <= 64.0 {
        a.powi(b as i32)
    } else {
        a.powf(b)
    }
}

pub fn call(f: Func, a: Expr) -> Expr {
    if let Some(x) = constant(&a) {
        return num(f.apply(x));
    }
    match (f, &*a) {
        (Func::Exp, Node::Call(Func::Log, inner)) => inner.clone(),
        (Func::Sign, Node::Call(Func::Sign, _)) => a,
        _ => Arc::new(Node::Call(f, a)),
    }
}

pub fn call2(f: Func2, a: Expr, b: Expr) -> Expr {
    match (constant(&a), constant(&b)) {
        (Some(x), Some(y)) => num(f.apply(x, y)),
        _ => Arc::new(Node::Call2(f, a, b)),
    }
}

pub fn less(a: Expr, b: Expr, p: Expr, q: Expr) -> Expr {
    if p == q {
        return p;
    }
    match (constant(&a), constant(&b)) {
        (Some(x), Some(y)) => {
            if x < y {
                p
            } else {
                q
            }
        }
        _ => Arc::new(Node::Less(a, b, p, q)),
    }
}

/// d e / d v, exact and simplified.
pub fn derivative(e: &Expr, v: Var) -> Expr {
    let d = |x: &Expr| derivative(x, v);
    match &**e {
        Node::Num(_) | Node::Param(_) => num(0.0),
        Node::Var(w) => num(if *w == v { 1.0 } else { 0.0 }),
        Node::Neg(a) => neg(d(a)),
        Node::Add(a, b) => add(d(a), d(b)),
        Node::Sub(a, b) => sub(d(a), d(b)),
        Node::Mul(a, b) => add(mul(d(a), b.clone()), mul(a.clone(), d(b))),
        Node::Div(a, b) => {
            // (a / b)' = a' / b - a b' / b^2
            let db = d(b);
            let first = div(d(a), b.clone());
            if constant(&db) == Some(0.0) {
                first
            } else {
                sub(first, div(mul(a.clone(), db), pow(b.clone(), num(2.0))))
            }
        }
        Node::Pow(a, b) => {
            let da = d(a);
            let db = d(b);
            if constant(&db) == Some(0.0) {
                // (a^c)' = c a^(c-1) a'
                let c = b.clone();
                mul(mul(c.clone(), pow(a.clone(), sub(c, num(1.0)))), da)
            } else {
                // (a^b)' = a^b (b' log a + b a' / a)
                mul(
                    e.clone(),
                    add(
                        mul(db, call(Func::Log, a.clone())),
                        div(mul(b.clone(), da), a.clone()),
                    ),
                )
            }
        }
        Node::Call(f, a) => {
            let da = d(a);
            if is(&da, 0.0) {
                return num(0.0);
            }
            let outer = match f {
                Func::Exp => e.clone(),
                Func::Log => div(num(1.0), a.clone()),
                Func::Sqrt => div(num(0.5), e.clone()),
                Func::Abs => call(Func::Sign, a.clone()),
                Func::Sin => call(Func::Cos, a.clone()),
                Func::Cos => neg(call(Func::Sin, a.clone())),
                Func::Tan => add(num(1.0), pow(e.clone(), num(2.0))),
                Func::Tanh => sub(num(1.0), pow(e.clone(), num(2.0))),
                Func::Sinh => call(Func::Cosh, a.clone()),
                Func::Cosh => call(Func::Sinh, a.clone()),
                Func::Sign => num(0.0),
            };
            mul(outer, da)
        }
        Node::Call2(f, a, b) => {
            let (da, db) = (d(a), d(b));
            match f {
                // atan2(a, b)' = (b a' - a b') / (a^2 + b^2)
                Func2::Atan2 => div(
                    sub(mul(b.clone(), da), mul(a.clone(), db)),
                    add(pow(a.clone(), num(2.0)), pow(b.clone(), num(2.0))),
                ),
                Func2::Min => less(a.clone(), b.clone(), da, db),
                Func2::Max => less(a.clone(), b.clone(), db, da),
            }
        }
        Node::Less(a, b, p, q) => less(a.clone(), b.clone(), d(p), d(q)),
    }
}

/// Replaces every `from` by `to`.
pub fn substitute(e: &Expr, from: Var, to: &Expr) -> Expr {
    let s = |x: &Expr| substitute(x, from, to);
    match &**e {
        Node::Var(w) if *w == from => to.clone(),
        Node::Num(_) | Node::Param(_) | Node::Var(_) => e.clone(),
        Node::Neg(a) => neg(s(a)),
        Node::Add(a, b) => add(s(a), s(b)),
        Node::Sub(a, b) => sub(s(a), s(b)),
        Node::Mul(a, b) => mul(s(a), s(b)),
        Node::Div(a, b) => div(s(a), s(b)),
        Node::Pow(a, b) => pow(s(a), s(b)),
        Node::Call(f, a) => call(*f, s(a)),
        Node::Call2(f, a, b) => call2(*f, s(a), s(b)),
        Node::Less(a, b, p, q) => less(s(a), s(b), s(p), s(q)),
    }
}

/// Calls `f` on every variable the expression reads.
pub fn visit_vars(e: &Expr, f: &mut dyn FnMut(Var)) {
    match &**e {
        Node::Var(v) => f(*v),
        Node::Num(_) | Node::Param(_) => {}
        Node::Neg(a) | Node::Call(_, a) => visit_vars(a, f),
        Node::Add(a, b)
        | Node::Sub(a, b)
        | Node::Mul(a, b)
        | Node::Div(a, b)
        | Node::Pow(a, b)
        | Node::Call2(_, a, b) => {
            visit_vars(a, f);
            visit_vars(b, f);
        }
        Node::Less(a, b, p, q) => {
            for x in [a, b, p, q] {
                visit_vars(x, f);
            }
        }
    }
}

/// Whether the expression reads `v`.
pub fn reads(e: &Expr, v: Var) -> bool {
    let mut found = false;
    visit_vars(e, &mut |w| found |= w == v);
    found
}

/// Whether the expression is the constant `v`.
pub fn is_constant(e: &Expr, v: f64) -> bool {
    is(e, v)
}

/// The expression as text the parser reads back to the same function (fully parenthesised;
/// `s` is written as r^2).
pub fn to_text(e: &Expr) -> String {
    match &**e {
        Node::Num(v) => {
            if v.is_finite() {
                format!("({v:?})")
            } else if v.is_nan() {
                "(0/0)".into()
            } else if *v > 0.0 {
                "(1/0)".into()
            } else {
                "(-1/0)".into()
            }
        }
        Node::Var(Var::Axis(a)) => format!("x{a}"),
        Node::Var(Var::T) => "t".into(),
        Node::Var(Var::S) => "(r^2)".into(),
        Node::Param(k) => format!("p{k}"),
        Node::Neg(a) => format!("(-{})", to_text(a)),
        Node::Add(a, b) => format!("({} + {})", to_text(a), to_text(b)),
        Node::Sub(a, b) => format!("({} - {})", to_text(a), to_text(b)),
        Node::Mul(a, b) => format!("({} * {})", to_text(a), to_text(b)),
        Node::Div(a, b) => format!("({} / {})", to_text(a), to_text(b)),
        Node::Pow(a, b) => format!("({} ^ {})", to_text(a), to_text(b)),
        Node::Call(f, a) => format!("{}({})", f.name(), to_text(a)),
        Node::Call2(f, a, b) => format!("{}({}, {})", f.name(), to_text(a), to_text(b)),
        Node::Less(..) => "(0/0)".into(),
    }
}
