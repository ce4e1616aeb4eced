//! Scenario keys written as expressions (src/model/expr): `{ expr = "...", params = {...} }`
//! tables for potentials, temperatures, schedules and pair potentials, and the `sde` kind's
//! `drift` / `diffusion` / `params`. Every error names the key, the expression and the
//! reason with its column; params nothing reads are refused (a misspelt sweep key would
//! otherwise change nothing).

use super::walk::{Issues, Section, number, show, table};
use crate::model::expr::{
    CompileError, ExprPotential, PairPotential, Params, PotentialSource, SdeModel, SdeSource,
    TimeExpr, TimeSource, parse,
};
use crate::model::wgsl_model::WgslModel;
use crate::model::{Potential, Temperature};
use std::path::Path;
use toml::Value;

/// Keys of an expression table.
pub const EXPR_KEYS: &[&str] = &["kind", "expr", "params"];

/// `params`: a table of name = finite number (absent: none).
pub(crate) fn params(issues: &mut Issues, sec: Section<'_>) -> Option<Params> {
    let Some(v) = sec.get("params") else {
        return Some(Params::new());
    };
    let key = sec.key("params");
    let t = table(issues, &key, v)?;
    let mut out = Params::new();
    let mut ok = true;
    for (name, value) in t {
        let k = format!("{key}.{name}");
        if let Err(why) = parse::check_param_name(name) {
            issues.add(&k, Some(value), format!("a parameter name: {why}"));
            ok = false;
            continue;
        }
        match number(issues, &k, value, "a finite number", |_| true) {
            Some(x) => {
                out.insert(name.clone(), x);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A string expression at `key`.
fn text<'a>(issues: &mut Issues, key: &str, v: &'a Value) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        _ => {
            issues.add(key, Some(v), "an expression (a string, e.g. \"0.5*k*x^2\")");
            None
        }
    }
}

/// Records a compile error of the expression `src` at `key`.
pub(crate) fn compile_issue(issues: &mut Issues, key: &str, src: &str, e: &CompileError) {
    issues.add(
        key,
        Some(&Value::String(src.to_string())),
        format!("a valid expression: {}", e.error),
    );
}

/// Records the params in `unused` as unread.
fn unused_issues(issues: &mut Issues, params_key: &str, unused: &[String], params: &Params) {
    for name in unused {
        issues.add(
            &format!("{params_key}.{name}"),
            params.get(name).map(|v| Value::Float(*v)).as_ref(),
            "a parameter the expression uses (no expression reads this one)",
        );
    }
}

/// An expression table `{ expr, params }` (with `kind = "expr"` optional): the text and
/// params.
fn expr_table(issues: &mut Issues, sec: Section<'_>) -> Option<(String, Params)> {
    sec.check_keys(EXPR_KEYS, issues);
    if let Some(k) = sec.get("kind")
        && k.as_str() != Some("expr")
    {
        issues.add(
            &sec.key("kind"),
            Some(k),
            "\"expr\" (or no kind) beside an expr",
        );
    }
    let src = match sec.get("expr") {
        Some(v) => text(issues, &sec.key("expr"), v).map(str::to_string),
        None => {
            issues.missing(&sec.key("expr"), "an expression (a string)");
            None
        }
    };
    let params = params(issues, sec);
    Some((src?, params?))
}

/// `potential = { expr = "U(x, t)", params = {...} }` with particles of dimension `dim`.
pub(crate) fn potential(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
) -> Option<Potential> {
    let (expr, params) = expr_table(issues, sec)?;
    let dim = dim?;
    let source = PotentialSource {
        expr: expr.clone(),
        params: params.clone(),
        dim,
    };
    match ExprPotential::new(source) {
        Ok(p) => {
            let unused = p.unused_params();
            unused_issues(issues, &sec.key("params"), &unused, &params);
            unused.is_empty().then_some(Potential::Expr(p))
        }
        Err(e) => {
            compile_issue(issues, &sec.key("expr"), &expr, &e);
            None
        }
    }
}

/// A model compiled from one `{ expr, params }` table at `key` by `new`, with its unread
/// params refused.
fn one_expr<T>(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    new: fn(TimeSource) -> Result<T, CompileError>,
    unused: fn(&T) -> Vec<String>,
) -> Option<T> {
    let t = table(issues, key, v)?;
    let sec = Section::new(key, t);
    let (expr, params) = expr_table(issues, sec)?;
    match new(TimeSource {
        expr: expr.clone(),
        params: params.clone(),
    }) {
        Ok(f) => {
            let unread = unused(&f);
            unused_issues(issues, &sec.key("params"), &unread, &params);
            unread.is_empty().then_some(f)
        }
        Err(e) => {
            compile_issue(issues, &sec.key("expr"), &expr, &e);
            None
        }
    }
}

/// A function of t at `key`: `{ expr = "f(t)", params = {...} }`.
pub(crate) fn time_expr(issues: &mut Issues, key: &str, v: &Value) -> Option<TimeExpr> {
    one_expr(issues, key, v, TimeExpr::new, TimeExpr::unused_params)
}

/// `wgsl = "file.wgsl"` (relative to the scenario) with `params`: the file's text, read now
/// so that the plan holds it. `keys` are the table's allowed keys.
pub(crate) fn wgsl_model(
    issues: &mut Issues,
    sec: Section<'_>,
    base_dir: &Path,
    keys: &[&str],
) -> Option<WgslModel> {
    sec.check_keys(keys, issues);
    let key = sec.key("wgsl");
    let path = match sec.get("wgsl") {
        Some(Value::String(s)) => s.clone(),
        other => {
            issues.add(
                &key,
                other,
                "the path of a .wgsl file (relative to the scenario)",
            );
            return None;
        }
    };
    let params = params(issues, sec)?;
    match std::fs::read_to_string(base_dir.join(&path)) {
        Ok(code) => Some(WgslModel {
            wgsl: path,
            code,
            params,
        }),
        Err(e) => {
            issues.add(
                &key,
                sec.get("wgsl"),
                format!(
                    "a readable WGSL file: {} ({e})",
                    base_dir.join(&path).display()
                ),
            );
            None
        }
    }
}

/// A pair potential W(r) at `key`: `{ expr = "W(r)", params = {...} }`.
#[allow(dead_code)] // read by the interaction kind's `interaction = { expr }` (being added)
pub(crate) fn pair_expr(issues: &mut Issues, key: &str, v: &Value) -> Option<PairPotential> {
    one_expr(
        issues,
        key,
        v,
        PairPotential::new,
        PairPotential::unused_params,
    )
}

/// `temperature`: a number T >= 0 (default 1) or `{ expr = "T(t)", params }`, checked >= 0
/// and finite at the step times of a run of `steps` steps of `dt` when those are known.
pub(crate) fn temperature(
    issues: &mut Issues,
    sec: Section<'_>,
    run: Option<(u64, crate::model::StepSize)>,
) -> Option<Temperature> {
    let key = sec.key("temperature");
    let t = match sec.get("temperature") {
        None => Temperature::Constant(1.0),
        Some(v @ Value::Table(_)) => Temperature::Expr(time_expr(issues, &key, v)?),
        Some(v) => Temperature::Constant(number(
            issues,
            &key,
            v,
            "a finite number >= 0, or { expr = \"T(t)\", params = {...} }",
            |x| x >= 0.0,
        )?),
    };
    if let (Temperature::Expr(f), Some((steps, dt))) = (&t, run)
        && let Some((at, value)) = t.first_invalid(steps, &dt)
    {
        issues.add(
            &format!("{key}.expr"),
            Some(&Value::String(f.source().expr.clone())),
            format!("a temperature >= 0 at every step of the run; T({at}) = {value}"),
        );
        return None;
    }
    Some(t)
}

/// The `sde` kind's `drift` (one expression per axis), `diffusion` (a number or an
/// expression string, or `{ expr }`) and dynamics-level `params`.
pub(crate) fn sde(issues: &mut Issues, sec: Section<'_>, dim: Option<usize>) -> Option<SdeModel> {
    let params = params(issues, sec);
    let drift_key = sec.key("drift");
    let drift: Option<Vec<String>> = match sec.get("drift") {
        None => {
            issues.missing(&drift_key, "a list of expressions f_k(x, t), one per axis");
            None
        }
        Some(Value::Array(items)) => {
            let texts: Option<Vec<String>> = items
                .iter()
                .enumerate()
                .map(|(k, v)| text(issues, &format!("{drift_key}[{k}]"), v).map(str::to_string))
                .collect();
            match (texts, dim) {
                (Some(t), Some(d)) if t.len() != d => {
                    issues.add(
                        &drift_key,
                        sec.get("drift"),
                        format!(
                            "one expression per axis; particles.dim = {d}, got {}",
                            t.len()
                        ),
                    );
                    None
                }
                (t, _) => t,
            }
        }
        Some(v) => {
            issues.add(
                &drift_key,
                Some(v),
                "a list of expressions f_k(x, t), one per axis",
            );
            None
        }
    };
    let diffusion_key = sec.key("diffusion");
    let diffusion: Option<(String, String)> = match sec.get("diffusion") {
        None => Some(("1".to_string(), diffusion_key.clone())),
        Some(Value::String(s)) => Some((s.clone(), diffusion_key.clone())),
        Some(Value::Integer(i)) if *i >= 0 => Some((format!("{i}"), diffusion_key.clone())),
        Some(Value::Float(x)) if x.is_finite() && *x >= 0.0 => {
            Some((format!("{x:?}"), diffusion_key.clone()))
        }
        Some(Value::Table(t)) => {
            let sec = Section::new(&diffusion_key, t);
            sec.check_keys(&["expr"], issues);
            match sec.get("expr") {
                Some(v) => {
                    text(issues, &sec.key("expr"), v).map(|s| (s.to_string(), sec.key("expr")))
                }
                None => {
                    issues.missing(&sec.key("expr"), "an expression D(x, t) >= 0");
                    None
                }
            }
        }
        Some(v) => {
            issues.add(
                &diffusion_key,
                Some(v),
                format!(
                    "D(x, t) >= 0: a number, an expression string or {{ expr = \"...\" }} (got {})",
                    show(v)
                ),
            );
            None
        }
    };
    let (drift, (diffusion, diffusion_at), params) = (drift?, diffusion?, params?);
    let source = SdeSource {
        drift: drift.clone(),
        diffusion: diffusion.clone(),
        params: params.clone(),
    };
    match SdeModel::new(source) {
        Ok(m) => {
            let unused = m.unused_params();
            unused_issues(issues, &sec.key("params"), &unused, &params);
            unused.is_empty().then_some(m)
        }
        Err(e) => {
            if e.which < drift.len() {
                compile_issue(
                    issues,
                    &format!("{drift_key}[{}]", e.which),
                    &drift[e.which],
                    &e,
                );
            } else {
                compile_issue(issues, &diffusion_at, &diffusion, &e);
            }
            None
        }
    }
}
