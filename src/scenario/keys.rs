//! Scenario keys that several dynamics kinds share (`potential`, `temperature`, `dt` with
//! `t_end` or `steps`, `process`, `score`, `target`, ...): each kind's parser
//! (src/dynamics/<kind>.rs) reads its `[dynamics]` table with these, so a key means the same
//! thing, with the same defaults and messages, in every kind that has it.

use super::data::SampleTable;
use super::plan::{Score, Target};
use super::resolve::{MAX_STEPS, kind, mixture, optional, required, samples_table};
use super::walk::{Issues, Section, choice, integer, number, numbers, one_of, show, table};
use crate::model::process::BetaSchedule;
use crate::model::step_size::{DtSchedule, ScheduleKind};
use crate::model::temperature::SCAN_POINTS;
use crate::model::{Potential, Process, StepSize};
use std::path::Path;
use toml::Value;

/// Target samples drawn from a mixture or image target unless `count` says otherwise.
pub const DEFAULT_TARGET_SAMPLES: u64 = 8192;
/// Most target samples a kernel flow takes (the kernel sum indexes rows with u32).
const MAX_TARGET_SAMPLES: i64 = 1 << 26;
const TARGET_KINDS: &[&str] = &["samples", "mixture", "image"];
const TARGET_IMAGE_KEYS: &[&str] = &["kind", "path", "range", "count"];
const TARGET_MIXTURE_KEYS: &[&str] = &["kind", "weights", "means", "stds", "count"];
const PROCESS_KINDS: &[&str] = &["vp", "ve", "ou"];
const SCORE_KINDS: &[&str] = &["mixture", "samples"];
const MIXTURE_KEYS: &[&str] = &["kind", "weights", "means", "stds"];

/// A constant `temperature` T >= 0, default 1, for the kinds without temperature schedules
/// (langevin's, which may be a schedule, is read by `expr_keys::temperature`); `allowed`
/// describes it in a message.
pub(crate) fn constant_temperature(
    issues: &mut Issues,
    sec: Section<'_>,
    allowed: &str,
) -> Option<f64> {
    optional(
        issues,
        sec,
        "temperature",
        || Some(1.0),
        |i, k, v| number(i, k, v, allowed, |x| x >= 0.0),
    )
}

/// A boolean `key`, false when absent; `allowed` says what true and false mean.
pub(crate) fn flag(
    issues: &mut Issues,
    sec: Section<'_>,
    key: &str,
    allowed: &str,
) -> Option<bool> {
    optional(
        issues,
        sec,
        key,
        || Some(false),
        |i, k, v| match v {
            Value::Boolean(b) => Some(*b),
            _ => {
                i.add(k, Some(v), allowed);
                None
            }
        },
    )
}

/// `score = { kind = "mixture", ... } | { kind = "samples", path }` of reverse dynamics,
/// with the data set it loads.
pub(crate) fn score(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
    base_dir: &Path,
) -> Option<(Score, Option<SampleTable>)> {
    required(
        issues,
        sec,
        "score",
        "a table { kind = \"mixture\", weights, means, stds } or { kind = \"samples\", path }",
        |i, k, v| {
            let t = table(i, k, v)?;
            let sec = Section::new(k, t);
            match kind(i, sec, SCORE_KINDS)? {
                "mixture" => {
                    sec.check_keys(MIXTURE_KEYS, i);
                    mixture(i, sec, dim).map(|m| (Score::Mixture(m), None))
                }
                "samples" => {
                    let (path, rows, sha256, table) = samples_table(i, sec, base_dir, dim)?;
                    Some((Score::Samples { path, rows, sha256 }, Some(table)))
                }
                _ => None,
            }
        },
    )
}

pub(crate) fn potential(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
    base_dir: &Path,
) -> Option<Potential> {
    required(
        issues,
        sec,
        "potential",
        "a table { kind = ... } naming the potential U",
        |i, k, v| {
            let t = table(i, k, v)?;
            super::resolve::potential(i, Section::new(k, t), dim, base_dir)
        },
    )
}

pub(crate) fn positive_dt(issues: &mut Issues, sec: Section<'_>) -> Option<f64> {
    // Any positive dt is accepted: a step that diverges is caught at run time (exit 3).
    required(
        issues,
        sec,
        "dt",
        "a finite number > 0",
        |i, k, v| match v {
            Value::Table(_) => {
                i.add(
                k,
                Some(v),
                "a finite number > 0 (a step-size schedule { start, end, kind } is for kind = \"langevin\" only)",
            );
                None
            }
            _ => number(i, k, v, "a finite number > 0", |x| x > 0.0),
        },
    )
}

const SCHEDULE_KEYS: &[&str] = &["start", "end", "kind"];
const SCHEDULE_KINDS: &[&str] = &["geometric", "linear"];

/// `dt` of a kind that takes a step-size schedule: a finite number > 0, or
/// `{ start, end, kind = "geometric" | "linear" }` with start, end finite and > 0
/// (src/model/step_size.rs). Increasing schedules are allowed.
pub(crate) fn langevin_dt(issues: &mut Issues, sec: Section<'_>) -> Option<StepSize> {
    let allowed =
        "a finite number > 0, or a schedule { start, end, kind = \"geometric\" | \"linear\" }";
    required(issues, sec, "dt", allowed, |i, k, v| match v {
        Value::Table(t) => {
            let sec = Section::new(k, t);
            sec.check_keys(SCHEDULE_KEYS, i);
            let end_point = |i: &mut Issues, key: &str| {
                required(i, sec, key, "a finite number > 0", |i, k, v| {
                    number(i, k, v, "a finite number > 0", |x| x > 0.0)
                })
            };
            let start = end_point(i, "start");
            let end = end_point(i, "end");
            let kind = required(i, sec, "kind", &one_of(SCHEDULE_KINDS), |i, k, v| {
                choice(i, k, v, SCHEDULE_KINDS)
            });
            let kind = match kind? {
                "geometric" => ScheduleKind::Geometric,
                _ => ScheduleKind::Linear,
            };
            Some(StepSize::Schedule(DtSchedule {
                start: start?,
                end: end?,
                kind,
            }))
        }
        _ => number(i, k, v, allowed, |x| x > 0.0).map(StepSize::Constant),
    })
}

/// `steps` or `t_end` beside a `dt` read by [`langevin_dt`]: a constant as [`duration`]; a
/// schedule is over the step index, so it takes `steps` (t_end = t_N, the sum of the steps).
pub(crate) fn step_size_duration(
    issues: &mut Issues,
    sec: Section<'_>,
    dt: Option<StepSize>,
) -> Option<(u64, f64)> {
    match dt {
        Some(StepSize::Schedule(_)) if sec.get("t_end").is_some() => {
            issues.add(
                &sec.key("t_end"),
                sec.get("t_end"),
                format!(
                    "{} (an integer >= 1) with a step-size schedule: the schedule runs over the step index",
                    sec.key("steps")
                ),
            );
            None
        }
        Some(s @ StepSize::Schedule(_)) => {
            let (steps, _) = duration(issues, sec, Some(1.0))?;
            Some((steps, s.time(steps, steps)))
        }
        Some(StepSize::Constant(dt)) => duration(issues, sec, Some(dt)),
        None => duration(issues, sec, None),
    }
}

/// Exactly one of `t_end` (steps = round(t_end / dt), at least 1) or `steps`; the stored
/// t_end is steps * dt, the time the run actually reaches.
pub(crate) fn duration(
    issues: &mut Issues,
    sec: Section<'_>,
    dt: Option<f64>,
) -> Option<(u64, f64)> {
    let t_end_key = sec.key("t_end");
    let steps_allowed = format!("an integer from 1 to {MAX_STEPS}");
    match (sec.get("t_end"), sec.get("steps")) {
        (Some(t), Some(s)) => {
            issues.add(
                &t_end_key,
                Some(t),
                format!(
                    "exactly one of {t_end_key} or {}, not both (steps = {})",
                    sec.key("steps"),
                    show(s)
                ),
            );
            None
        }
        (None, None) => {
            issues.missing(
                &t_end_key,
                &format!(
                    "exactly one of {t_end_key} (time units, > 0) or {} (an integer >= 1)",
                    sec.key("steps")
                ),
            );
            None
        }
        (None, Some(s)) => {
            let steps = integer(issues, &sec.key("steps"), s, &steps_allowed, |n| {
                n >= 1 && n as u64 <= MAX_STEPS
            })? as u64;
            Some((steps, steps as f64 * dt?))
        }
        (Some(t), None) => {
            let t_end = number(issues, &t_end_key, t, "a finite number > 0", |x| x > 0.0)?;
            let dt = dt?;
            let n = (t_end / dt).round().max(1.0);
            if n > MAX_STEPS as f64 {
                issues.add(
                    &t_end_key,
                    Some(t),
                    format!(
                        "at most {MAX_STEPS} steps of dt = {dt}; t_end / dt = {:e}",
                        t_end / dt
                    ),
                );
                return None;
            }
            let steps = n as u64;
            Some((steps, steps as f64 * dt))
        }
    }
}

/// `process = { kind = "vp" | "ve" | "ou", ... }` with its defaults.
pub(crate) fn process(issues: &mut Issues, sec: Section<'_>) -> Option<Process> {
    required(
        issues,
        sec,
        "process",
        "a table { kind = \"vp\" | \"ve\" | \"ou\", ... }",
        |i, k, v| {
            let t = table(i, k, v)?;
            let sec = Section::new(k, t);
            let param =
                |i: &mut Issues, key: &str, default: f64, allowed: &str, ok: fn(f64) -> bool| {
                    optional(
                        i,
                        sec,
                        key,
                        || Some(default),
                        |i, k, v| number(i, k, v, allowed, ok),
                    )
                };
            match kind(i, sec, PROCESS_KINDS)? {
                "vp" => {
                    sec.check_keys(&["kind", "beta_min", "beta_max", "beta"], i);
                    if let Some(b) = sec.get("beta") {
                        for key in ["beta_min", "beta_max"] {
                            if let Some(v) = sec.get(key) {
                                i.add(
                                    &sec.key(key),
                                    Some(v),
                                    format!(
                                        "no {key} beside {} (the schedule is either linear from beta_min to beta_max or the expression)",
                                        sec.key("beta")
                                    ),
                                );
                            }
                        }
                        let beta = super::expr_keys::time_expr(i, &sec.key("beta"), b);
                        if sec.get("beta_min").is_some() || sec.get("beta_max").is_some() {
                            return None;
                        }
                        return Some(Process::VpSchedule(BetaSchedule::from(beta?)));
                    }
                    let lo = param(i, "beta_min", 0.1, "a finite number >= 0", |x| x >= 0.0);
                    let hi = param(i, "beta_max", 20.0, "a finite number > 0", |x| x > 0.0);
                    let (beta_min, beta_max) = (lo?, hi?);
                    if beta_max < beta_min {
                        i.add(
                            &sec.key("beta_max"),
                            Some(&Value::Float(beta_max)),
                            format!("a number >= beta_min = {beta_min}"),
                        );
                        return None;
                    }
                    Some(Process::Vp { beta_min, beta_max })
                }
                "ve" => {
                    sec.check_keys(&["kind", "sigma_min", "sigma_max"], i);
                    let lo = param(i, "sigma_min", 0.01, "a finite number > 0", |x| x > 0.0);
                    let hi = param(i, "sigma_max", 10.0, "a finite number > 0", |x| x > 0.0);
                    let (sigma_min, sigma_max) = (lo?, hi?);
                    if sigma_max <= sigma_min {
                        i.add(
                            &sec.key("sigma_max"),
                            Some(&Value::Float(sigma_max)),
                            format!("a number > sigma_min = {sigma_min}"),
                        );
                        return None;
                    }
                    Some(Process::Ve {
                        sigma_min,
                        sigma_max,
                    })
                }
                "ou" => {
                    sec.check_keys(&["kind", "theta", "diffusion"], i);
                    let theta = param(i, "theta", 1.0, "a finite number > 0", |x| x > 0.0);
                    let d = param(i, "diffusion", 1.0, "a finite number > 0", |x| x > 0.0);
                    Some(Process::Ou {
                        theta: theta?,
                        diffusion: d?,
                    })
                }
                _ => None,
            }
        },
    )
}

/// Times in [0, t_end] at which a beta(t) expression is checked: every 1/1024 of process
/// time, at least 1024 and at most [`SCAN_POINTS`] points.
fn beta_check_points(t_end: f64) -> u64 {
    ((t_end * 1024.0).ceil() as u64).clamp(1024, SCAN_POINTS)
}

/// Checks what `process` can only be checked against the run's horizon: an expression
/// beta(t) must be finite and >= 0 on [0, t_end] (at [`beta_check_points`] evenly spaced
/// times). The issue names `process.beta.expr` and the time where it fails.
pub(crate) fn check_process_horizon(
    issues: &mut Issues,
    sec: Section<'_>,
    process: &Process,
    t_end: f64,
) -> Option<()> {
    let Process::VpSchedule(b) = process else {
        return Some(());
    };
    match b.first_invalid(t_end, beta_check_points(t_end)) {
        None => Some(()),
        Some((t, value)) => {
            issues.add(
                &format!("{}.beta.expr", sec.key("process")),
                Some(&Value::String(b.expr().source().expr.clone())),
                format!("a beta(t) >= 0 and finite on [0, t_end = {t_end}]; beta({t}) = {value}"),
            );
            None
        }
    }
}

/// `target = { kind = "samples", path } | { kind = "mixture", weights, means, stds, count }`:
/// the law a kernel flow pushes the particles onto, with its loaded table.
pub(crate) fn target(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
    base_dir: &Path,
) -> Option<(Target, Option<SampleTable>)> {
    required(
        issues,
        sec,
        "target",
        "a table { kind = \"samples\", path }, { kind = \"mixture\", weights, means, stds, count } \
         or { kind = \"image\", path, range, count }",
        |i, k, v| {
            let t = table(i, k, v)?;
            let sec = Section::new(k, t);
            match kind(i, sec, TARGET_KINDS)? {
                "mixture" => {
                    sec.check_keys(TARGET_MIXTURE_KEYS, i);
                    let allowed = format!(
                        "an integer from 1 to {MAX_TARGET_SAMPLES} (samples drawn from the mixture)"
                    );
                    let count = optional(
                        i,
                        sec,
                        "count",
                        || Some(DEFAULT_TARGET_SAMPLES),
                        |i, k, v| {
                            integer(i, k, v, &allowed, |n| (1..=MAX_TARGET_SAMPLES).contains(&n))
                                .map(|n| n as u64)
                        },
                    );
                    let mixture = mixture(i, sec, dim);
                    Some((
                        Target::Mixture {
                            mixture: mixture?,
                            count: count?,
                        },
                        None,
                    ))
                }
                "image" => image_target(i, sec, dim, base_dir).map(|t| (t, None)),
                "samples" => {
                    let (path, rows, sha256, table) = samples_table(i, sec, base_dir, dim)?;
                    if rows > MAX_TARGET_SAMPLES as u64 {
                        i.add(
                            &sec.key("path"),
                            Some(&Value::String(path.display().to_string())),
                            format!("a table of at most {MAX_TARGET_SAMPLES} rows; it has {rows}"),
                        );
                        return None;
                    }
                    Some((Target::Samples { path, rows, sha256 }, Some(table)))
                }
                _ => None,
            }
        },
    )
}

/// `target = { kind = "image", path, range = [[x0, x1], [y0, y1]], count }` (2D only).
pub(crate) fn image_target(
    issues: &mut Issues,
    sec: Section<'_>,
    dim: Option<usize>,
    base_dir: &Path,
) -> Option<Target> {
    sec.check_keys(TARGET_IMAGE_KEYS, issues);
    if let Some(d) = dim
        && d != 2
    {
        issues.add(
            &sec.key("kind"),
            Some(&Value::String("image".into())),
            format!("a target of particles.dim = {d} dimensions: image targets are 2D (particles.dim = 2)"),
        );
        return None;
    }
    let allowed =
        format!("an integer from 1 to {MAX_TARGET_SAMPLES} (samples drawn from the image)");
    let count = optional(
        issues,
        sec,
        "count",
        || Some(DEFAULT_TARGET_SAMPLES),
        |i, k, v| {
            integer(i, k, v, &allowed, |n| (1..=MAX_TARGET_SAMPLES).contains(&n)).map(|n| n as u64)
        },
    );
    let range_allowed = "[[x0, x1], [y0, y1]]: finite numbers with x0 < x1 and y0 < y1 (the \
                         rectangle the image covers)";
    let range = required(issues, sec, "range", range_allowed, |i, k, v| {
        let rows = match v {
            Value::Array(rows) if rows.len() == 2 => rows,
            _ => {
                i.add(k, Some(v), range_allowed);
                return None;
            }
        };
        let mut out = [[0.0; 2]; 2];
        for (a, row) in rows.iter().enumerate() {
            let pair = numbers(i, k, row, "numbers", Some((2, "low and high")), |_| true)?;
            if pair[0] >= pair[1] {
                i.add(k, Some(v), range_allowed);
                return None;
            }
            out[a] = [pair[0], pair[1]];
        }
        Some(out)
    });
    let path = required(
        issues,
        sec,
        "path",
        "a path to an image (PNG), relative to the scenario file",
        |i, k, v| match v {
            Value::String(s) => {
                let path = base_dir.join(s);
                match crate::dynamics::image_target::read_brightness(&path) {
                    Ok(b) => Some((path, b.sha256)),
                    Err(e) => {
                        i.add(k, Some(v), format!("a readable, not all black image; {e}"));
                        None
                    }
                }
            }
            _ => {
                i.add(k, Some(v), "a string: a path to an image (PNG)");
                None
            }
        },
    );
    let (path, sha256) = path?;
    Some(Target::Image {
        path,
        sha256,
        range: range?,
        count: count?,
    })
}

/// `steps` of a step-based dynamics (kernel flows: time is the step index).
pub(crate) fn step_count(issues: &mut Issues, sec: Section<'_>) -> Option<u64> {
    let allowed = format!("an integer from 1 to {MAX_STEPS}");
    required(issues, sec, "steps", &allowed, |i, k, v| {
        integer(i, k, v, &allowed, |n| n >= 1 && n as u64 <= MAX_STEPS).map(|n| n as u64)
    })
}

/// An optional positive number (a bandwidth); None when absent.
pub(crate) fn optional_positive(
    issues: &mut Issues,
    sec: Section<'_>,
    key: &str,
    allowed: &str,
) -> Option<Option<f64>> {
    optional(
        issues,
        sec,
        key,
        || Some(None),
        |i, k, v| number(i, k, v, allowed, |x| x > 0.0).map(Some),
    )
}

pub(crate) fn step_size(issues: &mut Issues, sec: Section<'_>, default: f64) -> Option<f64> {
    optional(
        issues,
        sec,
        "eta",
        || Some(default),
        |i, k, v| number(i, k, v, "a finite number > 0 (the step size)", |x| x > 0.0),
    )
}
