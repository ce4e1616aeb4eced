//! Linearised expressions: a list of instructions, each computed once, shared by every output
//! that needs it (common-subexpression elimination by structural hashing). The same tape is
//! evaluated in f64 on the CPU and printed as WGSL, so the GPU computes exactly the
//! operations the CPU twin does.

use super::tree::{Expr, Func, Func2, Node, Var, integer_exponent};
use std::collections::HashMap;
use std::fmt::Write;

/// One instruction; operands are earlier slots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Num(f64),
    Var(Var),
    Param(u16),
    Neg(usize),
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    /// Integer power by multiplication.
    Powi(usize, i32),
    Pow(usize, usize),
    Call(Func, usize),
    Call2(Func2, usize, usize),
    Less(usize, usize, usize, usize),
}

/// The structural identity of an instruction (f64 by its bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Num(u64),
    Var(Var),
    Param(u16),
    Neg(usize),
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    Powi(usize, i32),
    Pow(usize, usize),
    Call(Func, usize),
    Call2(Func2, usize, usize),
    Less(usize, usize, usize, usize),
}

fn key(op: Op) -> Key {
    match op {
        // -0.0 and 0.0 differ only in sign bit; both are kept distinct (harmless).
        Op::Num(v) => Key::Num(v.to_bits()),
        Op::Var(v) => Key::Var(v),
        Op::Param(k) => Key::Param(k),
        Op::Neg(a) => Key::Neg(a),
        // Commutative operations in a canonical operand order.
        Op::Add(a, b) => Key::Add(a.min(b), a.max(b)),
        Op::Sub(a, b) => Key::Sub(a, b),
        Op::Mul(a, b) => Key::Mul(a.min(b), a.max(b)),
        Op::Div(a, b) => Key::Div(a, b),
        Op::Powi(a, n) => Key::Powi(a, n),
        Op::Pow(a, b) => Key::Pow(a, b),
        Op::Call(f, a) => Key::Call(f, a),
        Op::Call2(f, a, b) => Key::Call2(f, a, b),
        Op::Less(a, b, p, q) => Key::Less(a, b, p, q),
    }
}

/// Instructions and the slots of the outputs.
#[derive(Debug, Clone, Default)]
pub struct Tape {
    pub ops: Vec<Op>,
    pub outputs: Vec<usize>,
}

struct Builder {
    ops: Vec<Op>,
    seen: HashMap<Key, usize>,
    /// Slots of nodes already linearised, by address (trees share subtrees).
    done: HashMap<*const Node, usize>,
}

impl Builder {
    fn push(&mut self, op: Op) -> usize {
        let k = key(op);
        if let Some(&slot) = self.seen.get(&k) {
            return slot;
        }
        self.ops.push(op);
        let slot = self.ops.len() - 1;
        self.seen.insert(k, slot);
        slot
    }

    fn node(&mut self, e: &Expr) -> usize {
        let addr = std::sync::Arc::as_ptr(e);
        if let Some(&slot) = self.done.get(&addr) {
            return slot;
        }
        let op = match &**e {
            Node::Num(v) => Op::Num(*v),
            Node::Var(v) => Op::Var(*v),
            Node::Param(k) => Op::Param(*k),
            Node::Neg(a) => Op::Neg(self.node(a)),
            Node::Add(a, b) => Op::Add(self.node(a), self.node(b)),
            Node::Sub(a, b) => Op::Sub(self.node(a), self.node(b)),
            Node::Mul(a, b) => Op::Mul(self.node(a), self.node(b)),
            Node::Div(a, b) => Op::Div(self.node(a), self.node(b)),
            Node::Pow(a, b) => match integer_exponent(b) {
                Some(n) => Op::Powi(self.node(a), n),
                None => Op::Pow(self.node(a), self.node(b)),
            },
            Node::Call(f, a) => Op::Call(*f, self.node(a)),
            Node::Call2(f, a, b) => Op::Call2(*f, self.node(a), self.node(b)),
            Node::Less(a, b, p, q) => {
                Op::Less(self.node(a), self.node(b), self.node(p), self.node(q))
            }
        };
        let slot = self.push(op);
        self.done.insert(addr, slot);
        slot
    }
}

impl Tape {
    pub fn new(outputs: &[Expr]) -> Tape {
        let mut b = Builder {
            ops: Vec::new(),
            seen: HashMap::new(),
            done: HashMap::new(),
        };
        let outputs = outputs.iter().map(|e| b.node(e)).collect();
        Tape {
            ops: b.ops,
            outputs,
        }
    }

    /// Evaluates every output at `vars` (`axes` coordinates, `t`, `s`) with `params`, using
    /// `scratch` (resized as needed) and writing the outputs to `out`.
    pub fn eval_into(
        &self,
        at: &Point<'_>,
        params: &[f64],
        scratch: &mut Vec<f64>,
        out: &mut [f64],
    ) {
        scratch.clear();
        for op in &self.ops {
            let value = op_value(*op, at, params, scratch);
            scratch.push(value);
        }
        for (o, &slot) in out.iter_mut().zip(&self.outputs) {
            *o = scratch[slot];
        }
    }

    /// Every output at one point (allocates; for tests and one-off values).
    pub fn eval(&self, at: &Point<'_>, params: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.outputs.len()];
        self.eval_into(
            at,
            params,
            &mut Vec::with_capacity(self.ops.len()),
            &mut out,
        );
        out
    }

    /// For every output, a bound on |WGSL f32 result - f64 value| at `at` with `params`,
    /// computed alongside the f64 evaluation from the accuracy the WGSL specification
    /// guarantees ("Floating Point Accuracy"), so a GPU that meets the specification lands
    /// within it. `f64::INFINITY` where the specification guarantees nothing (sin or cos
    /// outside [-pi, pi], a divisor that may be 0 or subnormal, log or pow of a value that may
    /// be <= 0, exp overflow, a non-finite value) and the result can be anything.
    ///
    /// Derivation, per instruction, with ULP = 2^-23 (one unit in the last place of a normal
    /// f32, relative to its magnitude: ulp(y) <= 2^-23 |y|), TINY = 2^-126 (the smallest
    /// normal f32: what flushing a subnormal result to zero may lose), v the f64 value and e
    /// the bound of each operand:
    /// - Inputs: coordinates, t and s are read from f32 storage or uniforms: exact (e = 0; a
    ///   caller whose t or s carries an error adds its effect). A param is rounded to the
    ///   nearest f32 on the host: e = |p - f32(p)| (<= 2^-24 |p|). A constant is printed as
    ///   its nearest f32's shortest decimal (`f32_literal`), which WGSL converts rounding up
    ///   or down: e = |c - f32(c)|, plus one ULP where c is not an f32 itself.
    /// - Error carried from the operands ("prop"), exact where cheap: for a product
    ///   |a'b' - ab| <= |a| e_b + |b| e_a + e_a e_b, for a quotient |a'/b' - a/b| <=
    ///   (|b| e_a + |a| e_b) / (|b| (|b| - e_b)); for a function, the largest slope over
    ///   [a - e_a, a + e_a] times e_a (exp: v (e^(e_a) - 1); log: -log(1 - e_a / a); sqrt:
    ///   min(e_a / sqrt(a), sqrt(e_a)); sin and cos: |cos a| e_a + e_a^2 / 2 and
    ///   |sin a| e_a + e_a^2 / 2; sinh and cosh: cosh(m) e_a and sinh(m) e_a with
    ///   m = |a| + e_a; tanh: e_a sech^2; atan2: its gradient (x, -y) / r^2 over the box,
    ///   ((|x| + e_x) e_y + (|y| + e_y) e_x) / (r - |(e_x, e_y)|)^2); abs, neg, min and max
    ///   are 1-Lipschitz: max(e_a, e_b).
    /// - The operation's own error, measured against the exact result of its f32 operands,
    ///   whose magnitude is at most |v| + prop: +, -, *, neg, abs, min, max, select are
    ///   correctly rounded, which WGSL allows in either direction: 1 ULP (0 for the exact
    ///   ones); x / y: 2.5 ULP for |y| in [2^-126, 2^126]; exp(x): 3 + 2 |x| ULP; log(x):
    ///   absolute 2^-21 for x in [0.5, 2], 3 ULP outside (both where [a - e_a, a + e_a]
    ///   straddles an end); sin, cos: absolute 2^-11 inside [-pi, pi]; sqrt: inherited from
    ///   1.0 / inverseSqrt(x), 2 ULP then 2.5 ULP: 4.5 ULP; tan: inherited from sin / cos
    ///   (2^-11 each, then the division); sinh, cosh: inherited from (exp(x) -+ exp(-x)) * 0.5:
    ///   (3 + 2 m) ULP cosh(m) from the two exps, 1 ULP of |sinh| or cosh from the sum, * 0.5
    ///   exact; tanh: the worse of absolute 1e-5 and inherited from sinh(x) / cosh(x); pow(x,
    ///   y): inherited from exp2(y * log2(x)), each step as above (log2 like log, exp2 like
    ///   exp), with its operands' errors carried through; atan2: 4096 ULP for |x| in [2^-126,
    ///   2^126] and y finite and normal (so not 0). Rounding ops add TINY.
    /// - Integer powers follow the generated code (`powi_wgsl`): the repeated squaring's
    ///   products, each with the product rule and one ULP (so their errors compound as they
    ///   do on the GPU), and 1.0 / (a^|n|) for n < 0.
    /// - sign(a) is exact unless a' may have another sign than a (|a| <= e_a, e_a > 0), when
    ///   it may be off by 2. A select (`Less`, from min and max's derivatives) whose
    ///   comparison may go either way (|a - b| <= e_a + e_b, not both exact) may return the
    ///   other branch: max(e_p, |p - q| + e_q) where p is the f64 choice.
    ///
    /// The products of two errors are kept where they appear above; terms of order ULP^2
    /// elsewhere, and the f64 evaluation's own rounding (2^-52 per operation, against at least
    /// 2^-24 in every f32 term), are covered by a final factor 1 + 2^-20.
    ///
    /// Assumed: the implementation evaluates the `let` statements as written. WGSL also allows
    /// reassociation, which no bound of this kind can cover; fusion (a * b + c as an fma) is
    /// only allowed where at least as accurate, so it stays within the bound.
    pub fn f32_error_bounds(&self, at: &Point<'_>, params: &[f64]) -> Vec<f64> {
        let mut values = Vec::with_capacity(self.ops.len());
        let mut errors = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let v = op_value(*op, at, params, &values);
            let e = op_error(*op, v, &values, &errors);
            values.push(v);
            errors.push(if v.is_finite() && e.is_finite() {
                e
            } else {
                f64::INFINITY
            });
        }
        self.outputs
            .iter()
            .map(|&slot| errors[slot] * (1.0 + F32_SLACK))
            .collect()
    }

    /// The instructions as WGSL `let` statements, each named `{prefix}{slot}`, reading
    /// coordinate `a` as `coordinate(a)`, t as `time`, s as `pair` and parameter k as
    /// `param(k)`. Returns the statements and the WGSL expression of each output.
    pub fn wgsl(
        &self,
        prefix: &str,
        coordinate: &dyn Fn(usize) -> String,
        time: &str,
        pair: &str,
        param: &dyn Fn(usize) -> String,
    ) -> (String, Vec<String>) {
        let mut body = String::new();
        let name = |k: usize| format!("{prefix}{k}");
        for (slot, op) in self.ops.iter().enumerate() {
            let rhs = match *op {
                Op::Num(x) => f32_literal(x),
                Op::Var(Var::Axis(a)) => coordinate(usize::from(a)),
                Op::Var(Var::T) => time.to_string(),
                Op::Var(Var::S) => pair.to_string(),
                Op::Param(k) => param(usize::from(k)),
                Op::Neg(a) => format!("-{}", name(a)),
                Op::Add(a, b) => format!("{} + {}", name(a), name(b)),
                Op::Sub(a, b) => format!("{} - {}", name(a), name(b)),
                Op::Mul(a, b) => format!("{} * {}", name(a), name(b)),
                Op::Div(a, b) => format!("{} / {}", name(a), name(b)),
                Op::Powi(a, n) => powi_wgsl(&name(a), n),
                Op::Pow(a, b) => format!("pow({}, {})", name(a), name(b)),
                Op::Call(f, a) => format!("{}({})", f.name(), name(a)),
                Op::Call2(f, a, b) => format!("{}({}, {})", f.name(), name(a), name(b)),
                // select(false value, true value, condition)
                Op::Less(a, b, p, q) => format!(
                    "select({}, {}, {} < {})",
                    name(q),
                    name(p),
                    name(a),
                    name(b)
                ),
            };
            let _ = writeln!(body, "    let {} = {rhs};", name(slot));
        }
        let outputs = self.outputs.iter().map(|&s| name(s)).collect();
        (body, outputs)
    }
}

/// The f64 value of one instruction, its operands' values in `v`.
fn op_value(op: Op, at: &Point<'_>, params: &[f64], v: &[f64]) -> f64 {
    match op {
        Op::Num(x) => x,
        Op::Var(Var::Axis(a)) => at.x.get(usize::from(a)).copied().unwrap_or(0.0),
        Op::Var(Var::T) => at.t,
        Op::Var(Var::S) => at.s,
        Op::Param(k) => params.get(usize::from(k)).copied().unwrap_or(f64::NAN),
        Op::Neg(a) => -v[a],
        Op::Add(a, b) => v[a] + v[b],
        Op::Sub(a, b) => v[a] - v[b],
        Op::Mul(a, b) => v[a] * v[b],
        Op::Div(a, b) => v[a] / v[b],
        Op::Powi(a, n) => v[a].powi(n),
        Op::Pow(a, b) => v[a].powf(v[b]),
        Op::Call(f, a) => f.apply(v[a]),
        Op::Call2(f, a, b) => f.apply(v[a], v[b]),
        Op::Less(a, b, p, q) => {
            if v[a] < v[b] {
                v[p]
            } else {
                v[q]
            }
        }
    }
}

/// One ULP of a normal f32 relative to its magnitude, 2^-23: the error of a WGSL
/// "correctly rounded" f32 operation, which may round to either neighbour.
pub const F32_ULP: f64 = f32::EPSILON as f64;
/// The smallest normal f32, 2^-126: what flushing a subnormal result to zero may lose.
const F32_TINY: f64 = f32::MIN_POSITIVE as f64;
/// 2^126: the largest divisor (and atan2 x) WGSL's accuracy table covers.
const F32_HUGE: f64 = 8.507059173023462e37;
/// log(largest f32): exp of more overflows.
const F32_LN_MAX: f64 = 88.72283905206835;
/// Relative allowance for second-order terms and the f64 evaluation's own rounding.
const F32_SLACK: f64 = 1.0 / (1u64 << 20) as f64;

/// An operation's error: `prop` carried from its operands plus `ulps` ULP of the exact
/// result of its f32 operands (at most |v| + prop in magnitude) and TINY.
fn rounded(prop: f64, v: f64, ulps: f64) -> f64 {
    prop + ulps * F32_ULP * (v.abs() + prop) + F32_TINY
}

/// |a' b' - a b| for |a' - a| <= ea, |b' - b| <= eb.
fn product_error(a: f64, ea: f64, b: f64, eb: f64) -> f64 {
    a.abs() * eb + b.abs() * ea + ea * eb
}

/// WGSL `a * b` from operands with errors ea, eb.
fn mul_error(a: f64, ea: f64, b: f64, eb: f64) -> f64 {
    rounded(product_error(a, ea, b, eb), a * b, 1.0)
}

/// WGSL `a / b` (2.5 ULP for |b| in [2^-126, 2^126]) from operands with errors ea, eb.
fn div_error(a: f64, ea: f64, b: f64, eb: f64) -> f64 {
    let low = b.abs() - eb;
    if low < F32_TINY || b.abs() + eb > F32_HUGE {
        return f64::INFINITY;
    }
    let prop = (b.abs() * ea + a.abs() * eb) / (b.abs() * low);
    rounded(prop, a / b, 2.5)
}

/// Error of WGSL exp (or exp2, with `scale` = ln 2) of an argument p with error ep, whose
/// exact value is v: v (e^(scale ep) - 1) carried, 3 + 2 |p'| ULP of its own.
fn exp_error(p: f64, ep: f64, v: f64, scale: f64) -> f64 {
    if scale * (p + ep) > F32_LN_MAX {
        return f64::INFINITY;
    }
    let prop = v.abs() * (scale * ep).exp_m1();
    rounded(prop, v, 3.0 + 2.0 * (p.abs() + ep))
}

/// Error of WGSL log (or log2, with `scale` = 1 / ln 2) of an argument a with error ea:
/// -log(1 - ea / a) carried; absolute 2^-21 where a' may lie in [0.5, 2], 3 ULP where it
/// may lie outside.
fn log_error(a: f64, ea: f64, scale: f64) -> f64 {
    if a - ea <= 0.0 {
        return f64::INFINITY;
    }
    let prop = -scale * (-ea / a).ln_1p();
    let (lo, hi) = (a - ea, a + ea);
    let inside = if hi >= 0.5 && lo <= 2.0 {
        1.0 / f64::from(1u32 << 21)
    } else {
        0.0
    };
    let outside = if lo < 0.5 || hi > 2.0 {
        3.0 * F32_ULP * (scale * a.ln().abs() + prop)
    } else {
        0.0
    };
    prop + inside + outside + F32_TINY
}

/// Error of WGSL sinh (or cosh: `cosh` true) by its inherited formula (exp(x) -+ exp(-x))
/// * 0.5, for an argument a with error ea.
fn hyperbolic_error(a: f64, ea: f64, cosh: bool) -> f64 {
    let m = a.abs() + ea;
    if m > F32_LN_MAX {
        return f64::INFINITY;
    }
    let prop = if cosh { m.sinh() } else { m.cosh() } * ea;
    let exps = (3.0 + 2.0 * m) * F32_ULP * m.cosh();
    let sum = F32_ULP * if cosh { m.cosh() } else { m.sinh() };
    prop + exps + sum + 2.0 * F32_TINY
}

/// The error of a^n computed as `powi_wgsl` writes it (repeated squaring, then 1 / (a^|n|)
/// for n < 0), for a with error ea.
fn powi_error(a: f64, ea: f64, n: i32) -> f64 {
    fn positive(a: f64, ea: f64, n: u32) -> (f64, f64) {
        match n {
            0 => (1.0, 0.0),
            1 => (a, ea),
            _ => {
                let (h, eh) = positive(a, ea, n / 2);
                let (sq, esq) = (h * h, mul_error(h, eh, h, eh));
                if n % 2 == 1 {
                    (sq * a, mul_error(sq, esq, a, ea))
                } else {
                    (sq, esq)
                }
            }
        }
    }
    let (p, ep) = positive(a, ea, n.unsigned_abs());
    if n < 0 {
        div_error(1.0, 0.0, p, ep)
    } else {
        ep
    }
}

/// The error bound of one instruction of value `v`, its operands' values and bounds in
/// `values` and `errors` (see [`Tape::f32_error_bounds`]).
fn op_error(op: Op, v: f64, values: &[f64], errors: &[f64]) -> f64 {
    let x = |k: usize| (values[k], errors[k]);
    let pi = std::f64::consts::PI;
    match op {
        Op::Num(c) => {
            let near = f64::from(c as f32);
            let literal = if near == c { 0.0 } else { F32_ULP * c.abs() };
            (c - near).abs() + literal
        }
        Op::Var(_) => 0.0,
        Op::Param(_) => (v - f64::from(v as f32)).abs(),
        Op::Neg(a) => errors[a],
        Op::Add(a, b) | Op::Sub(a, b) => rounded(errors[a] + errors[b], v, 1.0),
        Op::Mul(a, b) => {
            let ((a, ea), (b, eb)) = (x(a), x(b));
            mul_error(a, ea, b, eb)
        }
        Op::Div(a, b) => {
            let ((a, ea), (b, eb)) = (x(a), x(b));
            div_error(a, ea, b, eb)
        }
        Op::Powi(a, n) => {
            let (a, ea) = x(a);
            powi_error(a, ea, n)
        }
        Op::Pow(a, b) => {
            // exp2(b * log2(a)).
            let ((a, ea), (b, eb)) = (x(a), x(b));
            let l = a.log2();
            let el = log_error(a, ea, std::f64::consts::LOG2_E);
            let p = b * l;
            let ep = mul_error(b, eb, l, el);
            exp_error(p, ep, v, std::f64::consts::LN_2)
        }
        Op::Call(f, a) => {
            let (a, ea) = x(a);
            match f {
                Func::Exp => exp_error(a, ea, v, 1.0),
                Func::Log => log_error(a, ea, 1.0),
                Func::Sqrt => {
                    if a - ea < 0.0 {
                        return f64::INFINITY;
                    }
                    let prop = if a > 0.0 {
                        (ea / a.sqrt()).min(ea.sqrt())
                    } else {
                        ea.sqrt()
                    };
                    rounded(prop, v, 4.5)
                }
                Func::Abs => ea,
                Func::Sign => {
                    if ea > 0.0 && a.abs() <= ea {
                        2.0
                    } else {
                        0.0
                    }
                }
                Func::Sin | Func::Cos => {
                    if a.abs() + ea > pi {
                        return f64::INFINITY;
                    }
                    let slope = if f == Func::Sin { a.cos() } else { a.sin() };
                    slope.abs() * ea + 0.5 * ea * ea + 1.0 / f64::from(1u32 << 11)
                }
                Func::Tan => {
                    // sin(a') / cos(a'), each within 2^-11, then the division.
                    if a.abs() + ea > pi {
                        return f64::INFINITY;
                    }
                    let abs = 1.0 / f64::from(1u32 << 11);
                    let cos_low = a.cos().abs() - ea;
                    let sin_high = (a.sin().abs() + ea).min(1.0);
                    if cos_low - abs < F32_TINY {
                        return f64::INFINITY;
                    }
                    let prop = ea / (cos_low * cos_low);
                    let quotient = (cos_low * abs + sin_high * abs) / (cos_low * (cos_low - abs));
                    rounded(prop + quotient, v, 2.5)
                }
                Func::Sinh => hyperbolic_error(a, ea, false),
                Func::Cosh => hyperbolic_error(a, ea, true),
                Func::Tanh => {
                    // The worse of 1e-5 and sinh(a') / cosh(a') (|tanh| <= 1 <= cosh).
                    let m = a.abs() + ea;
                    let (es, ec) = (
                        hyperbolic_error(m, 0.0, false),
                        hyperbolic_error(m, 0.0, true),
                    );
                    let low = (a.abs() - ea).max(0.0).cosh() - ec;
                    if low.is_nan() || low <= 0.0 {
                        return f64::INFINITY;
                    }
                    let inherited = rounded((es + ec) / low, 1.0, 2.5);
                    let slope = 1.0 / (a.abs() - ea).max(0.0).cosh().powi(2);
                    slope * ea + inherited.max(1e-5)
                }
            }
        }
        Op::Call2(f, a, b) => {
            let ((a, ea), (b, eb)) = (x(a), x(b));
            match f {
                Func2::Min | Func2::Max => ea.max(eb),
                Func2::Atan2 => {
                    // atan2(y = a, x = b).
                    if b.abs() - eb < F32_TINY || b.abs() + eb > F32_HUGE || a.abs() - ea < F32_TINY
                    {
                        return f64::INFINITY;
                    }
                    let r = a.hypot(b) - ea.hypot(eb);
                    if r <= 0.0 {
                        return f64::INFINITY;
                    }
                    let prop = ((b.abs() + eb) * ea + (a.abs() + ea) * eb) / (r * r);
                    rounded(prop, v, 4096.0)
                }
            }
        }
        Op::Less(a, b, p, q) => {
            let ((a, ea), (b, eb)) = (x(a), x(b));
            let ((p, ep), (q, eq)) = if a < b { (x(p), x(q)) } else { (x(q), x(p)) };
            let either = ea + eb > 0.0 && (a - b).abs() <= ea + eb;
            if either {
                ep.max((p - q).abs() + eq)
            } else {
                ep
            }
        }
    }
}

/// Where an expression is evaluated: coordinates, time and squared pair distance.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    pub x: &'a [f64],
    pub t: f64,
    pub s: f64,
}

impl<'a> Point<'a> {
    pub fn new(x: &'a [f64], t: f64) -> Self {
        Point { x, t, s: 0.0 }
    }
}

/// A WGSL f32 literal of `x` (nearest f32; infinities and NaN as the bit patterns WGSL
/// cannot write as literals).
pub fn f32_literal(x: f64) -> String {
    let f = x as f32;
    if f.is_finite() {
        // Debug formatting of f32 round-trips and always has a '.' or an exponent.
        let text = format!("{f:?}");
        let text = if text.contains('.') || text.contains('e') {
            text
        } else {
            format!("{text}.0")
        };
        format!("f32({text})")
    } else {
        format!("bitcast<f32>({}u)", f.to_bits())
    }
}

/// a^n by repeated squaring, as one WGSL expression (n = 0 is 1; n < 0 is 1 / a^|n|).
fn powi_wgsl(a: &str, n: i32) -> String {
    fn positive(a: &str, n: u32) -> String {
        match n {
            0 => "1.0".into(),
            1 => a.into(),
            _ => {
                let half = positive(a, n / 2);
                let sq = format!("({half}) * ({half})");
                if n % 2 == 1 {
                    format!("{sq} * {a}")
                } else {
                    sq
                }
            }
        }
    }
    let p = positive(a, n.unsigned_abs());
    if n < 0 { format!("1.0 / ({p})") } else { p }
}
