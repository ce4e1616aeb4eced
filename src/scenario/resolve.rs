//! The scenario schema: walks the parsed TOML table key by key, records every problem, and
//! builds the [`Plan`] with all defaults filled in.
//!
//! Checks that depend on another key (lengths that must equal `particles.dim`, steps from
//! `t_end / dt`) are skipped when that other key is itself invalid, so one mistake is reported
//! once rather than echoed by every key that depends on it.

use super::data::{self, SampleTable};
use super::plan::*;
use super::range::default_range;
use super::walk::{Issues, Section, choice, integer, number, numbers, one_of, show, table};
use crate::error::Error;
use crate::model::{Mixture, Potential};
use std::path::Path;
use toml::{Table, Value};

/// Largest `particles.dim`: the GPU kernels are specialised for d = 1..=8.
pub const MAX_DIM: usize = 8;
/// Largest bin count per histogram axis.
pub const MAX_BINS: u32 = 4096;
/// Default bins per histogram axis.
pub const DEFAULT_BINS: u32 = 128;
/// Largest step count: steps are also handled as f64 (time = step * dt), exact up to 2^53.
pub const MAX_STEPS: u64 = 1 << 53;

const TOP_KEYS: &[&str] = &[
    "name",
    "seed",
    "particles",
    "dynamics",
    "output",
    "boundary",
    "observe",
];
const PARTICLES_KEYS: &[&str] = &["count", "dim", "init"];
const INIT_KINDS: &[&str] = &[
    "point", "gaussian", "uniform", "mixture", "samples", "prior",
];
const POTENTIAL_KINDS: &[&str] = &[
    "quadratic",
    "double_well",
    "mueller_brown",
    "mixture",
    "expr",
];
const MIXTURE_KEYS: &[&str] = &["kind", "weights", "means", "stds"];
const OUTPUT_KEYS: &[&str] = &[
    "every",
    "histogram",
    "heatmap",
    "particles",
    "gif",
    "trajectories",
    "reference",
    "marginals",
];
/// Most particles `output.trajectories` may trace.
pub const MAX_TRAJECTORIES: u32 = 64;
const HISTOGRAM_KEYS: &[&str] = &["axes", "bins", "range"];
const HEATMAP_KEYS: &[&str] = &["colormap", "scale"];
const COLORMAPS: &[&str] = &[
    "viridis", "magma", "inferno", "plasma", "cividis", "turbo", "greys",
];

/// A resolved plan and the sample table it refers to (if any).
pub(crate) struct Built {
    pub plan: Plan,
    pub samples: Option<SampleTable>,
    /// The data set the dynamics read (an empirical score), if any.
    pub data: Option<SampleTable>,
}

/// Validates and resolves the whole scenario. `seed_override` (`--seed`) replaces the file's
/// `seed`, which is then not validated at all: it does not take part in the run.
pub(crate) fn resolve(
    root: &Table,
    base_dir: &Path,
    seed_override: Option<u64>,
    issues: &mut Issues,
) -> Option<Built> {
    let top = Section::new("", root);
    top.check_keys(TOP_KEYS, issues);

    let name = match top.get("name") {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(v) => {
            issues.add("name", Some(v), "a string");
            None
        }
    };
    let seed = match (seed_override, top.get("seed")) {
        (Some(s), _) => Some(s),
        (None, None) => Some(0),
        (None, Some(v)) => {
            integer(issues, "seed", v, "a non-negative integer", |n| n >= 0).map(|n| n as u64)
        }
    };

    let particles = required_table(issues, top, "particles")
        .map(|t| particles(issues, Section::new("particles", t), base_dir));
    let dim = particles.as_ref().and_then(|p| p.dim);

    let dynamics = required_table(issues, top, "dynamics").and_then(|t| {
        let cx = crate::dynamics::ParseContext { dim, base_dir };
        crate::dynamics::parse(issues, Section::new("dynamics", t), &cx)
    });
    let (dynamics, data) = match dynamics {
        Some((d, data)) => (Some(d), data),
        None => (None, None),
    };
    let mut particles = particles;
    let init = particles
        .as_mut()
        .and_then(|p| resolve_prior(issues, p.init.take()?, dynamics.as_ref(), p.dim));

    let context = RangeContext {
        init: init.as_ref().map(|(i, s)| (i, s.as_ref())),
        dynamics: dynamics.as_ref(),
        data: data.as_ref(),
    };
    let output = output(issues, top.get("output"), dim, &context);
    let boundary = super::boundary::Boundary {
        walls: super::boundary::walls(issues, top.get("boundary"), dim),
        first_passage: super::boundary::targets(issues, top.get("observe"), dim),
        basins: super::boundary::basins(issues, top.get("observe"), dim),
    };

    let (Some(name), Some(seed), Some(particles), Some(dynamics), Some(output)) =
        (name, seed, particles, dynamics, output)
    else {
        return None;
    };
    let (Some(count), Some(dim), Some((init, samples))) = (particles.count, particles.dim, init)
    else {
        return None;
    };
    if !issues.is_empty() {
        return None;
    }
    let plan = Plan {
        name,
        seed,
        particles: ParticlesPlan {
            count,
            dim: dim as u32,
            init,
        },
        dynamics,
        output,
        boundary,
    };
    super::boundary::check_plan(&plan, issues);
    issues.0.extend(plan.dynamics.check_plan(&plan));
    issues.0.extend(crate::reference::check(&plan));
    if !issues.is_empty() {
        return None;
    }
    Some(Built {
        plan,
        samples,
        data,
    })
}

/// `particles.init` as written: a distribution (with the table a samples init reads), or
/// `kind = "prior"`, which stands for the prior of the dynamics' process and is resolved once
/// the dynamics are known, so a plan never holds it.
enum InitRead {
    Law(Init, Option<SampleTable>),
    Prior,
}

/// The initial distribution of the plan: `init = { kind = "prior" }` becomes the Gaussian
/// prior of the reverse dynamics' process, so the plan says exactly what was sampled.
fn resolve_prior(
    issues: &mut Issues,
    init: InitRead,
    dynamics: Option<&DynamicsPlan>,
    dim: Option<usize>,
) -> Option<(Init, Option<SampleTable>)> {
    let InitRead::Law(init, samples) = init else {
        return match dynamics.map(|d| (d, d.prior_process())) {
            Some((_, Some(process))) => dim.map(|d| {
                let std = process.prior_variance().sqrt();
                let prior = Init::Gaussian {
                    mean: vec![0.0; d],
                    std: vec![std; d],
                };
                (prior, None)
            }),
            Some((other, None)) => {
                issues.add(
                    "particles.init.kind",
                    Some(&Value::String("prior".into())),
                    format!(
                        "a distribution of its own: kind = prior is the terminal law of a \
                         reverse dynamics' process (reverse_sde, probability_flow), and \
                         dynamics.kind is {}",
                        other.kind_name()
                    ),
                );
                None
            }
            None => None,
        };
    };
    Some((init, samples))
}

fn required_table<'a>(issues: &mut Issues, sec: Section<'a>, key: &str) -> Option<&'a Table> {
    match sec.get(key) {
        None => {
            issues.missing(&sec.key(key), &format!("a table [{}]", sec.key(key)));
            None
        }
        Some(v) => table(issues, &sec.key(key), v),
    }
}

/// Reads `key` with `read` if present; `default` if absent.
pub(crate) fn optional<'a, T>(
    issues: &mut Issues,
    sec: Section<'a>,
    key: &str,
    default: impl FnOnce() -> Option<T>,
    read: impl FnOnce(&mut Issues, &str, &'a Value) -> Option<T>,
) -> Option<T> {
    match sec.get(key) {
        None => default(),
        Some(v) => read(issues, &sec.key(key), v),
    }
}

/// Reads a required `key` with `read`; `allowed` describes it when missing.
pub(crate) fn required<'a, T>(
    issues: &mut Issues,
    sec: Section<'a>,
    key: &str,
    allowed: &str,
    read: impl FnOnce(&mut Issues, &str, &'a Value) -> Option<T>,
) -> Option<T> {
    match sec.get(key) {
        None => {
            issues.missing(&sec.key(key), allowed);
            None
        }
        Some(v) => read(issues, &sec.key(key), v),
    }
}

/// The `kind` of a tagged table, from `kinds`.
pub(crate) fn kind<'a>(issues: &mut Issues, sec: Section<'a>, kinds: &[&str]) -> Option<&'a str> {
    required(issues, sec, "kind", &one_of(kinds), |i, k, v| {
        choice(i, k, v, kinds)
    })
}

fn per_dim(dim: Option<usize>) -> Option<(usize, String)> {
    dim.map(|d| (d, format!("one per dimension; particles.dim = {d}")))
}

/// A list of `dim` finite numbers satisfying `ok` (any length when dim is unknown).
pub(crate) fn dim_vector(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    dim: Option<usize>,
    what: &str,
    ok: impl Fn(f64) -> bool,
) -> Option<Vec<f64>> {
    let len = per_dim(dim);
    numbers(
        issues,
        key,
        v,
        what,
        len.as_ref().map(|(n, w)| (*n, w.as_str())),
        ok,
    )
}

/// A positive standard deviation: one number (isotropic, expanded to `dim` entries) or one
/// per dimension. `None` without an issue when only `dim` is unknown. `component` names the
/// mixture component in messages.
fn std_spec(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    dim: Option<usize>,
    component: Option<usize>,
) -> Option<Vec<f64>> {
    let whose = component.map_or(String::new(), |c| format!("component {c}'s std: "));
    match v {
        Value::Array(_) => {
            let why = dim.map(|d| format!("{whose}one per dimension; particles.dim = {d}"));
            numbers(
                issues,
                key,
                v,
                "positive numbers",
                dim.zip(why.as_deref()),
                |x| x > 0.0,
            )
        }
        _ => {
            let allowed =
                format!("{whose}a finite number > 0, or a list of them (one per dimension)");
            let s = number(issues, key, v, &allowed, |x| x > 0.0)?;
            dim.map(|d| vec![s; d])
        }
    }
}

// ----------------------------------------------------------------------------------------
// [particles]

struct ParticlesRead {
    count: Option<u64>,
    dim: Option<usize>,
    init: Option<InitRead>,
}

fn particles(issues: &mut Issues, sec: Section<'_>, base_dir: &Path) -> ParticlesRead {
    sec.check_keys(PARTICLES_KEYS, issues);
    let count = required(issues, sec, "count", "an integer >= 1", |i, k, v| {
        integer(i, k, v, "an integer >= 1", |n| n >= 1)
    })
    .map(|n| n as u64);
    let allowed_dim = format!("an integer from 1 to {MAX_DIM}");
    let dim = required(issues, sec, "dim", &allowed_dim, |i, k, v| {
        integer(i, k, v, &allowed_dim, |n| (1..=MAX_DIM as i64).contains(&n))
    })
    .map(|n| n as usize);
    let init = required(
        issues,
        sec,
        "init",
        "a table { kind = ... } describing the initial distribution",
        |i, k, v| {
            let t = table(i, k, v)?;
            init(i, Section::new(k, t), dim, base_dir)
        },
    );
    ParticlesRead { count, dim, init }
}

fn init(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
    base_dir: &Path,
) -> Option<InitRead> {
    let kind = kind(issues, sec, INIT_KINDS)?;
    let vector = |issues: &mut Issues, key: &str| {
        required(
            issues,
            sec,
            key,
            "a list of numbers, one per dimension",
            |i, k, v| dim_vector(i, k, v, dim, "numbers", |_| true),
        )
    };
    match kind {
        "point" => {
            sec.check_keys(&["kind", "at"], issues);
            let at = vector(issues, "at")?;
            Some(InitRead::Law(Init::Point { at }, None))
        }
        "gaussian" => {
            sec.check_keys(&["kind", "mean", "std"], issues);
            let mean = vector(issues, "mean");
            let std = required(
                issues,
                sec,
                "std",
                "a number > 0, or a list of them (one per dimension)",
                |i, k, v| std_spec(i, k, v, dim, None),
            );
            Some(InitRead::Law(
                Init::Gaussian {
                    mean: mean?,
                    std: std?,
                },
                None,
            ))
        }
        "uniform" => {
            sec.check_keys(&["kind", "low", "high"], issues);
            let low = vector(issues, "low");
            let high = vector(issues, "high");
            let (low, high) = (low?, high?);
            if let Some(c) = low.iter().zip(&high).position(|(l, h)| l >= h) {
                issues.add(
                    &sec.key("high"),
                    sec.get("high"),
                    format!(
                        "each entry greater than the same entry of low; entry {c} is {} <= {}",
                        high[c], low[c]
                    ),
                );
                return None;
            }
            Some(InitRead::Law(Init::Uniform { low, high }, None))
        }
        "mixture" => {
            sec.check_keys(MIXTURE_KEYS, issues);
            mixture(issues, sec, dim).map(|m| InitRead::Law(Init::Mixture(m), None))
        }
        "samples" => {
            let (path, rows, sha256, table) = samples_table(issues, sec, base_dir, dim)?;
            Some(InitRead::Law(
                Init::Samples { path, rows, sha256 },
                Some(table),
            ))
        }
        "prior" => {
            sec.check_keys(&["kind"], issues);
            Some(InitRead::Prior)
        }
        _ => None,
    }
}

/// `{ kind = "samples", path }`: the table, read and hashed; or `{ kind = "samples", data }`
/// with an in-memory array (`data::ArrayInputs`, the Python package).
pub(crate) fn samples_table(
    issues: &mut Issues,
    sec: Section<'_>,
    base_dir: &Path,
    dim: Option<usize>,
) -> Option<(std::path::PathBuf, u64, String, SampleTable)> {
    sec.check_keys(&["kind", "path", "data"], issues);
    if let Some(v) = sec.get("data") {
        return samples_array(issues, sec, v, dim);
    }
    let path = required(
        issues,
        sec,
        "path",
        "a path to a .npy or .csv file, relative to the scenario file",
        |i, k, v| match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                i.add(k, Some(v), "a string: a path to a .npy or .csv file");
                None
            }
        },
    )?;
    samples(issues, &sec.key("path"), &path, base_dir, dim)
}

/// `data = <array>`: the table of an in-memory array, checked like a file's.
fn samples_array(
    issues: &mut Issues,
    sec: Section<'_>,
    v: &Value,
    dim: Option<usize>,
) -> Option<(std::path::PathBuf, u64, String, SampleTable)> {
    let key = sec.key("data");
    if sec.get("path").is_some() {
        issues.add(&key, None, "either path or data, not both");
        return None;
    }
    let found = match v {
        Value::String(s) => data::array_for(&key, s),
        _ => None,
    };
    let (path, table) = match found {
        Some(Ok(found)) => found,
        Some(Err((description, reason))) => {
            let shown = Value::String(description);
            issues.add(
                &key,
                Some(&shown),
                format!("a float32 or float64 array of shape (N, dim) or (N,); {reason}"),
            );
            return None;
        }
        None => {
            issues.add(
                &key,
                Some(v),
                "a NumPy array (given from Python: fokker.run with a dict); a scenario file names a .npy or .csv file with path",
            );
            return None;
        }
    };
    if let Some(d) = dim
        && table.dim != d
    {
        let shown = Value::String(format!("array of shape ({}, {})", table.rows, table.dim));
        issues.add(
            &key,
            Some(&shown),
            format!(
                "a table with {d} columns (particles.dim = {d}); the array has {}",
                table.dim
            ),
        );
        return None;
    }
    let sha256 = data::canonical_sha256(&table);
    Some((path, table.rows as u64, sha256, table))
}

/// Loads the table behind `init.path`. Data problems become issues of that key, so they are
/// reported together with everything else wrong in the file.
fn samples(
    issues: &mut Issues,
    key: &str,
    written: &str,
    base_dir: &Path,
    dim: Option<usize>,
) -> Option<(std::path::PathBuf, u64, String, SampleTable)> {
    let value = Value::String(written.to_string());
    let path = base_dir.join(written);
    let (table, sha256) = match data::read_table_and_hash(&path) {
        Ok(r) => r,
        Err(Error::Data { path, reason }) => {
            issues.add(
                key,
                Some(&value),
                format!(
                    "a readable .npy or .csv table; {}: {reason}",
                    path.display()
                ),
            );
            return None;
        }
        Err(e) => {
            issues.add(
                key,
                Some(&value),
                format!("a readable .npy or .csv table; {e}"),
            );
            return None;
        }
    };
    if let Some(d) = dim
        && table.dim != d
    {
        issues.add(
            key,
            Some(&value),
            format!(
                "a table with {d} columns (particles.dim = {d}); {} has {}",
                path.display(),
                table.dim
            ),
        );
        return None;
    }
    Some((path, table.rows as u64, sha256, table))
}

/// `weights`, `means`, `stds` of a Gaussian mixture. Weights are normalised to sum to 1;
/// isotropic stds are expanded to one per dimension.
pub(crate) fn mixture(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
) -> Option<Mixture> {
    let weights = required(
        issues,
        sec,
        "weights",
        "a non-empty list of positive numbers",
        |i, k, v| {
            let w = numbers(i, k, v, "positive numbers", None, |x| x > 0.0)?;
            let total: f64 = w.iter().sum();
            if w.is_empty() || !total.is_finite() {
                i.add(
                    k,
                    Some(v),
                    "a non-empty list of positive numbers with a finite sum",
                );
                return None;
            }
            Some(w.iter().map(|x| x / total).collect::<Vec<_>>())
        },
    );
    let components = weights.as_ref().map(Vec::len);
    let means = required(
        issues,
        sec,
        "means",
        "a list of mean vectors, one per weight",
        |i, k, v| {
            let items = component_list(i, k, v, components, "mean vectors")?;
            let mut out = Vec::with_capacity(items.len());
            for (c, item) in items.iter().enumerate() {
                let why = dim.map(|d| {
                    format!("component {c}'s mean, one per dimension; particles.dim = {d}")
                });
                out.push(numbers(
                    i,
                    k,
                    item,
                    "numbers",
                    dim.zip(why.as_deref()),
                    |_| true,
                ));
            }
            out.into_iter().collect::<Option<Vec<_>>>()
        },
    );
    let stds = required(
        issues,
        sec,
        "stds",
        "a list with one entry per weight: a number > 0 or a list of them (one per dimension)",
        |i, k, v| {
            let items = component_list(
                i,
                k,
                v,
                components,
                "entries (a number > 0, or a list of them, one per dimension)",
            )?;
            let out: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(c, item)| std_spec(i, k, item, dim, Some(c)))
                .collect();
            out.into_iter().collect::<Option<Vec<_>>>()
        },
    );
    Some(Mixture {
        weights: weights?,
        means: means?,
        stds: stds?,
    })
}

/// A list with one entry per mixture component (any length when the count is unknown).
fn component_list<'v>(
    issues: &mut Issues,
    key: &str,
    v: &'v Value,
    components: Option<usize>,
    what: &str,
) -> Option<&'v [Value]> {
    let Value::Array(items) = v else {
        issues.add(key, Some(v), format!("a list of {what}, one per weight"));
        return None;
    };
    match components {
        Some(n) if items.len() != n => {
            issues.add(
                key,
                Some(v),
                format!("a list of {n} {what}, one per weight; got {}", items.len()),
            );
            None
        }
        _ => Some(items),
    }
}

// ----------------------------------------------------------------------------------------
// [dynamics]

pub(crate) fn potential(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
    base_dir: &Path,
) -> Option<Potential> {
    // `{ expr = "U(x, t)", params }` and `{ wgsl = "file.wgsl", params }` need no kind.
    if sec.get("expr").is_some() || sec.get("kind").and_then(Value::as_str) == Some("expr") {
        return super::expr_keys::potential(issues, sec, dim);
    }
    if sec.get("wgsl").is_some() {
        return super::expr_keys::wgsl_model(issues, sec, base_dir, &["wgsl", "params"])
            .map(Potential::Wgsl);
    }
    match kind(issues, sec, POTENTIAL_KINDS)? {
        "quadratic" => {
            sec.check_keys(&["kind", "matrix", "center"], issues);
            let matrix = required(
                issues,
                sec,
                "matrix",
                "a symmetric dim x dim matrix (a list of rows)",
                |i, k, v| quadratic_matrix(i, k, v, dim),
            );
            let center = optional(
                issues,
                sec,
                "center",
                || dim.map(|d| vec![0.0; d]),
                |i, k, v| dim_vector(i, k, v, dim, "numbers", |_| true),
            );
            Some(Potential::Quadratic {
                matrix: matrix?,
                center: center?,
            })
        }
        "double_well" => {
            sec.check_keys(&["kind"], issues);
            Some(Potential::DoubleWell)
        }
        "mueller_brown" => {
            sec.check_keys(&["kind", "scale"], issues);
            if let Some(d @ 0..=1) = dim {
                issues.add(
                    &sec.key("kind"),
                    sec.get("kind"),
                    format!(
                        "mueller_brown is a 2D surface and needs particles.dim >= 2 (dim = {d})"
                    ),
                );
            }
            let scale = optional(
                issues,
                sec,
                "scale",
                || Some(1.0),
                |i, k, v| number(i, k, v, "a finite number > 0", |x| x > 0.0),
            )?;
            match dim {
                Some(d) if d < 2 => None,
                _ => Some(Potential::MuellerBrown { scale }),
            }
        }
        "mixture" => {
            sec.check_keys(MIXTURE_KEYS, issues);
            mixture(issues, sec, dim).map(Potential::Mixture)
        }
        _ => None,
    }
}

/// A dim x dim matrix of finite numbers, symmetric to 1e-12 relative. Definiteness is not
/// required: an indefinite A is a legitimate (unstable) experiment, and blow-up is caught at
/// run time like any diverging step.
fn quadratic_matrix(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    dim: Option<usize>,
) -> Option<Vec<Vec<f64>>> {
    let shape = dim.map_or("dim x dim".to_string(), |d| format!("{d} x {d}"));
    let allowed = format!("a symmetric {shape} matrix of finite numbers (a list of rows)");
    let Value::Array(rows) = v else {
        issues.add(key, Some(v), allowed);
        return None;
    };
    if let Some(d) = dim
        && rows.len() != d
    {
        issues.add(key, Some(v), format!("{allowed}; got {} rows", rows.len()));
        return None;
    }
    let mut m = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter().enumerate() {
        let ok = match (row, dim) {
            (Value::Array(items), Some(d)) => items.len() == d,
            (Value::Array(_), None) => true,
            _ => false,
        };
        let parsed = if ok {
            row.as_array()
                .map(|items| items.iter().map(super::walk::as_number).collect::<Vec<_>>())
        } else {
            None
        };
        match parsed {
            Some(vals) if vals.iter().all(|x| x.is_some_and(f64::is_finite)) => {
                m.push(vals.into_iter().flatten().collect::<Vec<f64>>());
            }
            _ => {
                issues.add(key, Some(v), format!("{allowed}; row {r} is {}", show(row)));
                return None;
            }
        }
    }
    let n = m.len();
    if n == 0 || m.iter().any(|row| row.len() != n) {
        issues.add(key, Some(v), format!("{allowed}; it is not square"));
        return None;
    }
    for (i, row) in m.iter().enumerate() {
        for (j, other) in m.iter().enumerate().take(i) {
            let (a, b) = (row[j], other[i]);
            if (a - b).abs() > 1e-12 * a.abs().max(b.abs()) {
                issues.add(
                    key,
                    Some(v),
                    format!(
                        "{allowed}; entry [{i}][{j}] = {a} differs from entry [{j}][{i}] = {b}"
                    ),
                );
                return None;
            }
        }
    }
    Some(m)
}

// ----------------------------------------------------------------------------------------
// [output]

/// What the default histogram range is computed from; `None` parts are invalid (and already
/// reported), in which case no default is computed.
struct RangeContext<'a> {
    init: Option<(&'a Init, Option<&'a SampleTable>)>,
    dynamics: Option<&'a DynamicsPlan>,
    data: Option<&'a SampleTable>,
}

fn output(
    issues: &mut Issues,
    v: Option<&Value>,
    dim: Option<usize>,
    ctx: &RangeContext<'_>,
) -> Option<OutputPlan> {
    let empty = Table::new();
    let t = match v {
        None => &empty,
        Some(v) => table(issues, "output", v)?,
    };
    let sec = Section::new("output", t);
    sec.check_keys(OUTPUT_KEYS, issues);
    let dt = ctx.dynamics.map(|d| d.time_per_step());
    let every_steps = optional(
        issues,
        sec,
        "every",
        || Some(None),
        |i, k, v| {
            let every = number(i, k, v, "a finite number > 0 (time units)", |x| x > 0.0)?;
            // Saturating cast: a period longer than the run just means first and last only.
            dt.map(|dt| Some(((every / dt).round() as u64).max(1)))
        },
    );
    let histogram = match sec.get("histogram") {
        None => histogram(issues, Section::new("output.histogram", &empty), dim, ctx),
        Some(v) => table(issues, "output.histogram", v)
            .and_then(|t| histogram(issues, Section::new("output.histogram", t), dim, ctx)),
    };
    let heatmap = optional(
        issues,
        sec,
        "heatmap",
        || {
            Some(HeatmapSpec {
                colormap: "viridis".into(),
                scale: Scale::Log,
            })
        },
        |i, k, v| {
            let t = table(i, k, v)?;
            heatmap(i, Section::new(k, t))
        },
    );
    let particles = optional(
        issues,
        sec,
        "particles",
        || Some(ParticlesOutput::None),
        |i, k, v| {
            choice(i, k, v, &["none", "final", "snapshots"]).map(|s| match s {
                "final" => ParticlesOutput::Final,
                "snapshots" => ParticlesOutput::Snapshots,
                _ => ParticlesOutput::None,
            })
        },
    );
    let trajectory_allowed = format!("an integer from 0 to {MAX_TRAJECTORIES}");
    let trajectories = optional(
        issues,
        sec,
        "trajectories",
        || Some(0),
        |i, k, v| {
            integer(i, k, v, &trajectory_allowed, |n| {
                (0..=i64::from(MAX_TRAJECTORIES)).contains(&n)
            })
            .map(|n| n as u32)
        },
    );
    let gif = optional(
        issues,
        sec,
        "gif",
        || Some(true),
        |i, k, v| match v {
            Value::Boolean(b) => Some(*b),
            _ => {
                i.add(k, Some(v), "true or false");
                None
            }
        },
    );
    let reference = optional(
        issues,
        sec,
        "reference",
        || Some(None),
        |i, k, v| {
            choice(i, k, v, ReferenceKind::NAMES).map(|s| match s {
                "boltzmann" => Some(ReferenceKind::Boltzmann),
                "analytic" => Some(ReferenceKind::Analytic),
                _ => Some(ReferenceKind::FokkerPlanck),
            })
        },
    );
    let marginals = optional(
        issues,
        sec,
        "marginals",
        || Some(Vec::new()),
        |i, k, v| marginals(i, k, v, dim, ctx),
    );
    Some(OutputPlan {
        every_steps: every_steps?,
        histogram: histogram?,
        heatmap: heatmap?,
        particles: particles?,
        gif: gif?,
        trajectories: trajectories?,
        reference: reference?,
        marginals: marginals?,
    })
}

/// `output.marginals`: a list of axis pairs `[a, b]` (shorthand for `{ axes = [a, b] }`) or
/// histogram tables `{ axes = [a, b], bins, range }` with the defaults of `output.histogram`.
fn marginals(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    dim: Option<usize>,
    ctx: &RangeContext<'_>,
) -> Option<Vec<HistogramSpec>> {
    const ALLOWED: &str =
        "a list of axis pairs [a, b] or tables { axes = [a, b], bins = .., range = .. }";
    let Value::Array(items) = v else {
        issues.add(key, Some(v), ALLOWED);
        return None;
    };
    let mut specs = Some(Vec::new());
    for (k, item) in items.iter().enumerate() {
        let item_key = format!("{key}[{k}]");
        let t = match item {
            Value::Array(_) => {
                let mut t = Table::new();
                t.insert("axes".into(), item.clone());
                t
            }
            Value::Table(t) => t.clone(),
            _ => {
                issues.add(&item_key, Some(item), ALLOWED);
                specs = None;
                continue;
            }
        };
        let spec = histogram(issues, Section::new(&item_key, &t), dim, ctx);
        match (spec, &mut specs) {
            (Some(s), Some(list)) if s.axes.len() == 2 => list.push(s),
            (Some(s), _) if s.axes.len() != 2 => {
                issues.add(
                    &format!("{item_key}.axes"),
                    t.get("axes"),
                    "two distinct axes (a marginal is a 2D histogram; the 1D one is output.histogram)",
                );
                specs = None;
            }
            _ => specs = None,
        }
    }
    specs
}

fn histogram(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
    ctx: &RangeContext<'_>,
) -> Option<HistogramSpec> {
    sec.check_keys(HISTOGRAM_KEYS, issues);
    let axes = optional(
        issues,
        sec,
        "axes",
        || dim.map(|d| if d == 1 { vec![0] } else { vec![0, 1] }),
        |i, k, v| axes(i, k, v, dim, ctx.dynamics),
    );
    let n = axes.as_ref().map(Vec::len);
    let bins = optional(
        issues,
        sec,
        "bins",
        || n.map(|n| vec![DEFAULT_BINS; n]),
        |i, k, v| bins(i, k, v, n),
    );
    let range = match sec.get("range") {
        Some(v) => explicit_range(issues, &sec.key("range"), v, n),
        None => {
            // Invalid axes, init or dynamics are reported already; no default without them.
            let (Some(axes), Some((init, samples)), Some(dynamics)) =
                (axes.as_ref(), ctx.init, ctx.dynamics)
            else {
                return None;
            };
            let range = default_range(axes, init, samples, dynamics, ctx.data);
            if range.is_none() {
                issues.missing(
                    &sec.key("range"),
                    "[[lo, hi], ...], one pair per axis: the default (the initial \
                     distribution's box joined with the equilibrium region) overflows here",
                );
            }
            range
        }
    };
    Some(HistogramSpec {
        axes: axes?,
        bins: bins?,
        range: range?,
    })
}

/// 1 or 2 distinct axes, each below `dim`, or below 2 dim for dynamics with velocities
/// (phase space: axes dim .. 2 dim - 1 are the velocities).
fn axes(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    dim: Option<usize>,
    dynamics: Option<&DynamicsPlan>,
) -> Option<Vec<u32>> {
    let phase = dynamics.is_some_and(|d| d.velocity_axes());
    let allowed = match (dim, phase) {
        (Some(d), true) => format!(
            "a list of 1 or 2 distinct axes, each from 0 to {}: 0 .. {} the positions, {d} .. {} \
             the velocities",
            2 * d - 1,
            d - 1,
            2 * d - 1
        ),
        (Some(1), false) => "[0] (particles.dim = 1 has only axis 0; velocity axes exist only \
                             for dynamics.kind = \"underdamped\")"
            .to_string(),
        (Some(d), false) => format!(
            "a list of 1 or 2 distinct axes, each from 0 to {} (velocity axes {d} .. {} exist \
             only for dynamics.kind = \"underdamped\")",
            d - 1,
            2 * d - 1
        ),
        (None, _) => "a list of 1 or 2 distinct axis indices".to_string(),
    };
    let factor = if phase { 2 } else { 1 };
    let in_range = |a: i64| {
        usize::try_from(a).is_ok_and(|a| dim.is_none_or(|d| a < factor * d) && a < factor * MAX_DIM)
    };
    let parsed = match v {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Integer(a) if in_range(*a) => Some(*a as u32),
                _ => None,
            })
            .collect::<Option<Vec<u32>>>(),
        _ => None,
    };
    match parsed {
        Some(a) if (a.len() == 1) || (a.len() == 2 && a[0] != a[1]) => Some(a),
        _ => {
            issues.add(key, Some(v), allowed);
            None
        }
    }
}

/// One bin count for all axes, or one per axis; each 1..=MAX_BINS.
fn bins(issues: &mut Issues, key: &str, v: &Value, n: Option<usize>) -> Option<Vec<u32>> {
    let allowed = format!("an integer from 1 to {MAX_BINS}, or a list of them (one per axis)");
    let ok = |b: i64| (1..=i64::from(MAX_BINS)).contains(&b);
    match v {
        Value::Array(items) => {
            let parsed = items
                .iter()
                .map(|item| match item {
                    Value::Integer(b) if ok(*b) => Some(*b as u32),
                    _ => None,
                })
                .collect::<Option<Vec<u32>>>();
            match (parsed, n) {
                (Some(b), Some(n)) if b.len() != n => {
                    issues.add(
                        key,
                        Some(v),
                        format!("{allowed}; histogram.axes has {n}, bins has {}", b.len()),
                    );
                    None
                }
                (Some(b), Some(_)) => Some(b),
                (Some(_), None) => None,
                (None, _) => {
                    issues.add(key, Some(v), allowed);
                    None
                }
            }
        }
        _ => {
            let b = integer(issues, key, v, &allowed, ok)?;
            n.map(|n| vec![b as u32; n])
        }
    }
}

/// One [lo, hi] pair per axis, finite, lo < hi.
fn explicit_range(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    n: Option<usize>,
) -> Option<Vec<[f64; 2]>> {
    let allowed = match n {
        Some(n) => format!("a list of {n} [lo, hi] pair(s), one per axis, finite, lo < hi"),
        None => "a list of [lo, hi] pairs, one per axis, finite, lo < hi".to_string(),
    };
    let pair = |item: &Value| match item.as_array().map(Vec::as_slice) {
        Some([lo, hi]) => match (super::walk::as_number(lo), super::walk::as_number(hi)) {
            (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo < hi => Some([lo, hi]),
            _ => None,
        },
        _ => None,
    };
    let parsed = match v {
        Value::Array(items) => items.iter().map(pair).collect::<Option<Vec<_>>>(),
        _ => None,
    };
    match (parsed, n) {
        (Some(r), Some(n)) if r.len() == n => Some(r),
        (Some(_), None) => None,
        _ => {
            issues.add(key, Some(v), allowed);
            None
        }
    }
}

fn heatmap(issues: &mut Issues, sec: Section<'_>) -> Option<HeatmapSpec> {
    sec.check_keys(HEATMAP_KEYS, issues);
    let colormap = optional(
        issues,
        sec,
        "colormap",
        || Some("viridis"),
        |i, k, v| choice(i, k, v, COLORMAPS),
    );
    let scale = optional(
        issues,
        sec,
        "scale",
        || Some(Scale::Log),
        |i, k, v| {
            choice(i, k, v, &["linear", "log"]).map(|s| {
                if s == "linear" {
                    Scale::Linear
                } else {
                    Scale::Log
                }
            })
        },
    );
    Some(HeatmapSpec {
        colormap: colormap?.to_string(),
        scale: scale?,
    })
}
