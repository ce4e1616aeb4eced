//! The expression language of user-written models (docs/architecture.md, "Expressions"):
//! parse (src/model/expr/parse.rs), simplify and differentiate (tree.rs), linearise with
//! common subexpressions shared, evaluate in f64 and print as WGSL (tape.rs).
//!
//! Each model type here holds its source text and params (what the plan records) and the
//! compiled tape (what the CPU twin, the grid solver and the shaders use). They serialise as
//! their source and recompile when read back, so a plan read from a checkpoint is the plan
//! that was written.

pub mod parse;
pub mod tape;
pub mod tree;

pub use parse::{ExprError, Names};
pub use tape::{Point, Tape};
pub use tree::{Expr, Var};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Parameters by name; the GPU and the tapes index them in this (sorted) order.
pub type Params = BTreeMap<String, f64>;

fn param_names(params: &Params) -> Vec<String> {
    params.keys().cloned().collect()
}

/// The params as an array in index order.
pub fn param_values(params: &Params) -> Vec<f64> {
    params.values().copied().collect()
}

/// A compile error of one of a model's expressions: which one (for the key) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    /// Index of the expression among the model's sources.
    pub which: usize,
    pub error: ExprError,
}

/// Params that no expression reads (a misspelt sweep key would silently change nothing).
fn unused_params(trees: &[Expr], params: &Params) -> Vec<String> {
    let tape = Tape::new(trees);
    let mut used = vec![false; params.len()];
    for op in &tape.ops {
        if let tape::Op::Param(k) = op {
            used[usize::from(*k)] = true;
        }
    }
    params
        .keys()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|(k, _)| k.clone())
        .collect()
}

fn compile(sources: &[String], names: &Names<'_>) -> Result<Vec<Expr>, CompileError> {
    sources
        .iter()
        .enumerate()
        .map(|(which, s)| parse::parse(s, names).map_err(|error| CompileError { which, error }))
        .collect()
}

/// Model types serialise as their source and recompile when read back; two are equal when
/// their sources are.
macro_rules! serde_as_source {
    ($model:ident, $source:ident) => {
        impl PartialEq for $model {
            fn eq(&self, other: &Self) -> bool {
                self.source == other.source
            }
        }

        impl From<$model> for $source {
            fn from(m: $model) -> Self {
                m.source
            }
        }

        impl TryFrom<$source> for $model {
            type Error = String;
            fn try_from(source: $source) -> Result<Self, String> {
                $model::new(source).map_err(|e| e.error.to_string())
            }
        }
    };
}

serde_as_source!(ExprPotential, PotentialSource);
serde_as_source!(TimeExpr, TimeSource);
serde_as_source!(SdeModel, SdeSource);
serde_as_source!(PairPotential, TimeSource);

/// U(x, t) written by the user, with its exact gradient.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "PotentialSource", into = "PotentialSource")]
pub struct ExprPotential {
    source: PotentialSource,
    /// U, then dU/dx_k for k < dim.
    trees: Vec<Expr>,
    /// The same, linearised.
    tape: Tape,
    /// Whether U depends on t.
    timed: bool,
}

/// What the plan records of an expression potential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PotentialSource {
    pub expr: String,
    #[serde(default)]
    pub params: Params,
    pub dim: usize,
}

impl ExprPotential {
    pub fn new(source: PotentialSource) -> Result<ExprPotential, CompileError> {
        let names = param_names(&source.params);
        let u = compile(
            std::slice::from_ref(&source.expr),
            &Names {
                dim: source.dim,
                time: true,
                space: true,
                pair: false,
                params: &names,
            },
        )?
        .remove(0);
        let mut outputs = vec![u.clone()];
        outputs.extend((0..source.dim).map(|a| tree::derivative(&u, Var::Axis(a as u8))));
        Ok(ExprPotential {
            timed: tree::reads(&u, Var::T),
            tape: Tape::new(&outputs),
            trees: outputs,
            source,
        })
    }

    pub fn source(&self) -> &PotentialSource {
        &self.source
    }

    /// Params no expression reads.
    pub fn unused_params(&self) -> Vec<String> {
        let names = param_names(&self.source.params);
        let u = parse::parse(
            &self.source.expr,
            &Names {
                dim: self.source.dim,
                time: true,
                space: true,
                pair: false,
                params: &names,
            },
        );
        u.map(|u| unused_params(&[u], &self.source.params))
            .unwrap_or_default()
    }

    /// Whether U changes with time.
    pub fn is_timed(&self) -> bool {
        self.timed
    }

    /// A pair (a, b), a in `axes` and b not, whose mixed partial d2U / dx_a dx_b does not
    /// simplify to 0: U then couples the axes (None: U = U_A(x_A) + U_rest(x_rest)).
    pub fn coupling(&self, axes: &[usize]) -> Option<(usize, usize)> {
        for &a in axes {
            let da = &self.trees[1 + a];
            for b in (0..self.source.dim).filter(|b| !axes.contains(b)) {
                let dab = tree::derivative(da, Var::Axis(b as u8));
                if !tree::is_constant(&dab, 0.0) {
                    return Some((a, b));
                }
            }
        }
        None
    }

    pub fn params(&self) -> Vec<f64> {
        param_values(&self.source.params)
    }

    pub fn tape(&self) -> &Tape {
        &self.tape
    }

    /// A tape of U alone (no gradient), for evaluating U at many points (the grid solver).
    pub fn value_tape(&self) -> Tape {
        Tape::new(&self.trees[..1])
    }

    pub fn value_at(&self, x: &[f64], t: f64) -> f64 {
        let mut out = vec![0.0; self.tape.outputs.len()];
        self.tape
            .eval_into(&Point::new(x, t), &self.params(), &mut Vec::new(), &mut out);
        out[0]
    }

    pub fn gradient_at(&self, x: &[f64], t: f64) -> Vec<f64> {
        let mut out = vec![0.0; self.tape.outputs.len()];
        self.tape
            .eval_into(&Point::new(x, t), &self.params(), &mut Vec::new(), &mut out);
        out.remove(0);
        out
    }

    /// The Laplacian ΔU = Σ_k ∂²U/∂x_k², differentiating each ∂U/∂x_k symbolically once more.
    pub fn laplacian_tree(&self) -> Expr {
        (0..self.source.dim).fold(tree::num(0.0), |acc, k| {
            tree::add(
                acc,
                tree::derivative(&self.trees[1 + k], Var::Axis(k as u8)),
            )
        })
    }

    /// ΔU(x, t) in f64.
    pub fn laplacian_at(&self, x: &[f64], t: f64) -> f64 {
        Tape::new(&[self.laplacian_tree()]).eval(&Point::new(x, t), &self.params())[0]
    }

    /// The WGSL function `fn user_laplacian(x: Point, t: f32) -> f32` returning ΔU (the
    /// energy observer's configurational temperature, src/observe/energy.rs).
    pub fn wgsl_laplacian(&self) -> String {
        scalar_function(
            "user_laplacian",
            &Tape::new(&[self.laplacian_tree()]),
            0,
            "potential_params",
        )
    }

    /// The WGSL function `fn user_value(x: Point, t: f32) -> f32` returning U, reading param
    /// k as `potential_params[k]` (the kernels need only the gradient; for tests of the
    /// generated code).
    pub fn wgsl_value(&self) -> String {
        scalar_function(
            "user_value",
            &Tape::new(&self.trees[..1]),
            0,
            "potential_params",
        )
    }

    /// The WGSL function `fn user_gradient(x: Point, t: f32) -> Point` reading param k as
    /// `potential_params[k]`.
    pub fn wgsl(&self) -> String {
        let gradient = Tape::new(&self.trees[1..]);
        point_function(
            "user_gradient",
            &gradient,
            0,
            self.source.dim,
            "potential_params",
        )
    }
}

/// `fn name(x: Point, t: f32) -> Point` returning outputs first .. first + dim of `tape`
/// (other lanes 0), params read from the storage array `params`.
pub fn point_function(name: &str, tape: &Tape, first: usize, dim: usize, params: &str) -> String {
    let (body, outputs) = tape.wgsl("v", &|a| point_lane("x", a), "t", "0.0", &|k| {
        format!("{params}[{k}u]")
    });
    let lanes: Vec<String> = (0..8)
        .map(|a| {
            if a < dim {
                outputs[first + a].clone()
            } else {
                "0.0".into()
            }
        })
        .collect();
    format!(
        "fn {name}(x: Point, t: f32) -> Point {{\n{body}    return Point(vec4<f32>({}), vec4<f32>({}));\n}}\n",
        lanes[..4].join(", "),
        lanes[4..].join(", ")
    )
}

/// `fn name(x: Point, t: f32) -> f32` returning output `which` of `tape`.
pub fn scalar_function(name: &str, tape: &Tape, which: usize, params: &str) -> String {
    let (body, outputs) = tape.wgsl("v", &|a| point_lane("x", a), "t", "0.0", &|k| {
        format!("{params}[{k}u]")
    });
    format!(
        "fn {name}(x: Point, t: f32) -> f32 {{\n{body}    return {};\n}}\n",
        outputs[which]
    )
}

/// Coordinate `axis` of the two-vec4 WGSL `Point` named `p`.
pub fn point_lane(p: &str, axis: usize) -> String {
    let half = if axis < 4 { "a" } else { "b" };
    let lane = ["x", "y", "z", "w"][axis % 4];
    format!("{p}.{half}.{lane}")
}

/// f(t) written by the user (a temperature or a schedule), evaluated on the host in f64.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "TimeSource", into = "TimeSource")]
pub struct TimeExpr {
    source: TimeSource,
    tape: Tape,
}

/// What the plan records of a function of time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSource {
    pub expr: String,
    #[serde(default)]
    pub params: Params,
}

impl TimeExpr {
    pub fn new(source: TimeSource) -> Result<TimeExpr, CompileError> {
        let names = param_names(&source.params);
        let f = Self::tree(&source, &names)?;
        Ok(TimeExpr {
            tape: Tape::new(&[f]),
            source,
        })
    }

    fn tree(source: &TimeSource, names: &[String]) -> Result<Expr, CompileError> {
        Ok(compile(
            std::slice::from_ref(&source.expr),
            &Names {
                dim: 0,
                time: true,
                space: false,
                pair: false,
                params: names,
            },
        )?
        .remove(0))
    }

    pub fn source(&self) -> &TimeSource {
        &self.source
    }

    pub fn unused_params(&self) -> Vec<String> {
        let names = param_names(&self.source.params);
        Self::tree(&self.source, &names)
            .map(|f| unused_params(&[f], &self.source.params))
            .unwrap_or_default()
    }

    pub fn at(&self, t: f64) -> f64 {
        self.tape
            .eval(&Point::new(&[], t), &param_values(&self.source.params))[0]
    }

    pub fn params(&self) -> Vec<f64> {
        param_values(&self.source.params)
    }

    /// `fn name(t: f32) -> f32`, param k read as `param(k)`.
    pub fn wgsl(&self, name: &str, param: &dyn Fn(usize) -> String) -> String {
        let (body, outputs) = self.tape.wgsl("v", &|_| "0.0".into(), "t", "0.0", param);
        format!(
            "fn {name}(t: f32) -> f32 {{\n{body}    return {};\n}}\n",
            outputs[0]
        )
    }
}

/// The general SDE dX = f(X, t) dt + sqrt(2 D(X, t)) dW (Itô), f and D written by the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "SdeSource", into = "SdeSource")]
pub struct SdeModel {
    source: SdeSource,
    /// f_0 .. f_{dim-1}, D, dD/dx_0 .. dD/dx_{dim-1}.
    trees: Vec<Expr>,
    /// The same, linearised.
    tape: Tape,
    timed: bool,
    /// Whether D depends on x (the grid flux then needs grad D; the shader needs D per particle).
    varying: bool,
}

/// What the plan records of an SDE model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SdeSource {
    pub drift: Vec<String>,
    pub diffusion: String,
    #[serde(default)]
    pub params: Params,
}

impl SdeModel {
    /// Compiles drift (one expression per axis) and diffusion; `which` in an error is the
    /// drift axis, or dim for the diffusion.
    pub fn new(source: SdeSource) -> Result<SdeModel, CompileError> {
        let trees = Self::trees(&source)?;
        let dim = source.drift.len();
        let d = trees[dim].clone();
        let mut outputs = trees.clone();
        outputs.extend((0..dim).map(|a| tree::derivative(&d, Var::Axis(a as u8))));
        let varying = (0..dim).any(|a| tree::reads(&d, Var::Axis(a as u8)));
        Ok(SdeModel {
            timed: trees.iter().any(|e| tree::reads(e, Var::T)),
            varying,
            tape: Tape::new(&outputs),
            trees: outputs,
            source,
        })
    }

    fn trees(source: &SdeSource) -> Result<Vec<Expr>, CompileError> {
        let names = param_names(&source.params);
        let mut all = source.drift.clone();
        all.push(source.diffusion.clone());
        compile(
            &all,
            &Names {
                dim: source.drift.len(),
                time: true,
                space: true,
                pair: false,
                params: &names,
            },
        )
    }

    pub fn source(&self) -> &SdeSource {
        &self.source
    }

    pub fn dim(&self) -> usize {
        self.source.drift.len()
    }

    pub fn unused_params(&self) -> Vec<String> {
        Self::trees(&self.source)
            .map(|t| unused_params(&t, &self.source.params))
            .unwrap_or_default()
    }

    pub fn is_timed(&self) -> bool {
        self.timed
    }

    /// Whether D depends on the position.
    pub fn is_varying(&self) -> bool {
        self.varying
    }

    pub fn params(&self) -> Vec<f64> {
        param_values(&self.source.params)
    }

    pub fn tape(&self) -> &Tape {
        &self.tape
    }

    /// A tape of f_0 .. f_{dim-1}, D (no grad D), for evaluating the coefficients at many
    /// points (the grid solver).
    pub fn coefficient_tape(&self) -> Tape {
        Tape::new(&self.trees[..=self.dim()])
    }

    /// Whether the coordinates `axes` move on their own: None when the drift f_a of every
    /// axis a in `axes` and the diffusion D read no coordinate outside `axes` (then the law
    /// of x_A solves the Fokker–Planck equation of (f_A, D) whatever the other axes do);
    /// otherwise a pair (a, b) with b outside `axes` read by f_a, or by D when a = dim.
    /// The test is on the simplified expressions (`tree::reads`), not on derivatives, so a
    /// piecewise-constant dependence such as sign(x_b) counts.
    pub fn couples(&self, axes: &[usize]) -> Option<(usize, usize)> {
        let dim = self.dim();
        let others: Vec<usize> = (0..dim).filter(|b| !axes.contains(b)).collect();
        let reads_other = |e: &Expr| {
            others
                .iter()
                .copied()
                .find(|&b| tree::reads(e, Var::Axis(b as u8)))
        };
        for &a in axes {
            if let Some(b) = reads_other(&self.trees[a]) {
                return Some((a, b));
            }
        }
        reads_other(&self.trees[dim]).map(|b| (dim, b))
    }

    /// Whether the drift of an axis in `axes`, or D, reads t (the other axes' drifts do not
    /// matter to the law of x_A when [`SdeModel::couples`] is None).
    pub fn is_timed_on(&self, axes: &[usize]) -> bool {
        axes.iter()
            .chain(std::iter::once(&self.dim()))
            .any(|&a| tree::reads(&self.trees[a], Var::T))
    }

    /// (f, D, grad D) at (x, t), reusing `scratch` and `out` (length 2 dim + 1).
    pub fn eval_into(
        &self,
        x: &[f64],
        t: f64,
        params: &[f64],
        scratch: &mut Vec<f64>,
        out: &mut [f64],
    ) {
        self.tape.eval_into(&Point::new(x, t), params, scratch, out);
    }

    /// `fn user_drift(x: Point, t: f32) -> Point`, params read from the array `params`.
    pub fn wgsl_drift(&self, params: &str) -> String {
        let dim = self.dim();
        point_function("user_drift", &Tape::new(&self.trees[..dim]), 0, dim, params)
    }

    /// `fn user_diffusion(x: Point, t: f32) -> f32`, params read from the array `params`.
    pub fn wgsl_diffusion(&self, params: &str) -> String {
        let dim = self.dim();
        scalar_function(
            "user_diffusion",
            &Tape::new(&self.trees[dim..=dim]),
            0,
            params,
        )
    }
}

/// A pair potential W(r) written by the user, compiled in s = r^2: outputs W and 2 W'(s),
/// so that grad_x W(|x - y|) = 2 W'(s) (x - y) with no 0/0 at r = 0.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "TimeSource", into = "TimeSource")]
pub struct PairPotential {
    source: TimeSource,
    tape: Tape,
}

impl PairPotential {
    pub fn new(source: TimeSource) -> Result<PairPotential, CompileError> {
        let w = Self::tree(&source)?;
        let dw = tree::mul(tree::num(2.0), tree::derivative(&w, Var::S));
        Ok(PairPotential {
            tape: Tape::new(&[w, dw]),
            source,
        })
    }

    fn tree(source: &TimeSource) -> Result<Expr, CompileError> {
        let names = param_names(&source.params);
        Ok(compile(
            std::slice::from_ref(&source.expr),
            &Names {
                dim: 0,
                time: false,
                space: false,
                pair: true,
                params: &names,
            },
        )?
        .remove(0))
    }

    pub fn source(&self) -> &TimeSource {
        &self.source
    }

    pub fn unused_params(&self) -> Vec<String> {
        Self::tree(&self.source)
            .map(|f| unused_params(&[f], &self.source.params))
            .unwrap_or_default()
    }

    pub fn params(&self) -> Vec<f64> {
        param_values(&self.source.params)
    }

    /// The tape of (W, 2 W'(s)), its variable s (for callers evaluating many pairs with
    /// one scratch vector).
    pub fn tape(&self) -> &Tape {
        &self.tape
    }

    /// (W, 2 W'(s)) at squared distance s.
    pub fn at(&self, s: f64) -> (f64, f64) {
        let v = self.tape.eval(&Point { x: &[], t: 0.0, s }, &self.params());
        (v[0], v[1])
    }

    /// `fn user_pair(s: f32) -> vec2<f32>` returning (W, 2 W'(s)), params read from `params`.
    pub fn wgsl(&self, params: &str) -> String {
        let (body, outputs) = self.tape.wgsl("v", &|_| "0.0".into(), "0.0", "s", &|k| {
            format!("{params}[{k}u]")
        });
        format!(
            "fn user_pair(s: f32) -> vec2<f32> {{\n{body}    return vec2<f32>({}, {});\n}}\n",
            outputs[0], outputs[1]
        )
    }
}

#[cfg(test)]
mod tests;
