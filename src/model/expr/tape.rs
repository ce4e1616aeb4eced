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
            let v = |k: usize| scratch[k];
            let value = match *op {
                Op::Num(x) => x,
                Op::Var(Var::Axis(a)) => at.x.get(usize::from(a)).copied().unwrap_or(0.0),
                Op::Var(Var::T) => at.t,
                Op::Var(Var::S) => at.s,
                Op::Param(k) => params.get(usize::from(k)).copied().unwrap_or(f64::NAN),
                Op::Neg(a) => -v(a),
                Op::Add(a, b) => v(a) + v(b),
                Op::Sub(a, b) => v(a) - v(b),
                Op::Mul(a, b) => v(a) * v(b),
                Op::Div(a, b) => v(a) / v(b),
                Op::Powi(a, n) => v(a).powi(n),
                Op::Pow(a, b) => v(a).powf(v(b)),
                Op::Call(f, a) => f.apply(v(a)),
                Op::Call2(f, a, b) => f.apply(v(a), v(b)),
                Op::Less(a, b, p, q) => {
                    if v(a) < v(b) {
                        v(p)
                    } else {
                        v(q)
                    }
                }
            };
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
