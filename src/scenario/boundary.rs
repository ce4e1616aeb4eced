//! `[boundary]` (reflecting walls and periodic axes), `[[observe.first_passage]]` (target
//! sets, optionally absorbing) and their checks (README, "Boundaries and first passage").
//!
//! Axes are named as in expressions: x, y, z (0, 1, 2) or x0 .. x7. The plan keeps one
//! [`Wall`] per axis (free by default) and the targets in order; the GPU side is
//! src/observe/first_passage.rs and shaders/langevin.wgsl's `BOUNDARY`.

use super::walk::{Issues, Section, choice, number, numbers, table};
use crate::model::expr::parse::axis_of;
use serde::{Deserialize, Serialize};
use toml::Value;

/// One axis of the box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wall {
    /// No wall.
    #[default]
    Free,
    /// Specular reflection into [low, high] after every step.
    Reflecting { low: f64, high: f64 },
    /// Wrapped into [low, high) after every step, the crossings counted (winding).
    Periodic { low: f64, high: f64 },
}

impl Wall {
    pub fn is_free(&self) -> bool {
        matches!(self, Wall::Free)
    }

    /// (low, high) of a reflecting or periodic axis.
    pub fn interval(&self) -> Option<(f64, f64)> {
        match *self {
            Wall::Free => None,
            Wall::Reflecting { low, high } | Wall::Periodic { low, high } => Some((low, high)),
        }
    }
}

/// A target set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Region {
    /// The product of per-axis closed intervals; `None` leaves an axis unconstrained.
    Box { intervals: Vec<Option<[f64; 2]>> },
    /// The points with normal . x >= offset.
    HalfSpace { normal: Vec<f64>, offset: f64 },
}

impl Region {
    /// Whether `x` lies in the region (closed: the boundary belongs to it).
    pub fn contains(&self, x: &[f64]) -> bool {
        match self {
            Region::Box { intervals } => intervals
                .iter()
                .zip(x)
                .all(|(i, v)| i.is_none_or(|[a, b]| (a..=b).contains(v))),
            Region::HalfSpace { normal, offset } => {
                normal.iter().zip(x).map(|(n, v)| n * v).sum::<f64>() >= *offset
            }
        }
    }
}

/// One `[[observe.first_passage]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassageTarget {
    pub name: String,
    pub region: Region,
    /// Absorbing: a particle that reaches the region is frozen there.
    pub absorb: bool,
    /// Also reached between step ends with the Brownian-bridge crossing probability. Left
    /// out of the JSON when false, so plans written before it keep their hashes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bridge: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Walls and targets of a run; empty (every axis free, no targets) by default, and then left
/// out of the plan JSON so that plans without them keep their hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Boundary {
    /// One per axis when any wall is set; empty when every axis is free.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub walls: Vec<Wall>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_passage: Vec<PassageTarget>,
    /// Named basins between which transitions are counted (`[[observe.basins]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub basins: Vec<Basin>,
}

/// One `[[observe.basins]]` table: a named region; a particle's "last basin" is the last
/// one it was in at a step end, and a change of it is a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Basin {
    pub name: String,
    pub region: Region,
}

impl Boundary {
    pub fn is_empty(&self) -> bool {
        self.walls.iter().all(Wall::is_free)
            && self.first_passage.is_empty()
            && self.basins.is_empty()
    }

    /// Whether any particle can be absorbed.
    pub fn absorbs(&self) -> bool {
        self.first_passage.iter().any(|t| t.absorb)
    }

    pub fn wall(&self, axis: usize) -> Wall {
        self.walls.get(axis).copied().unwrap_or_default()
    }

    pub fn periodic_axes(&self) -> Vec<usize> {
        (0..self.walls.len())
            .filter(|&k| matches!(self.walls[k], Wall::Periodic { .. }))
            .collect()
    }
}

const WALL_KINDS: &[&str] = &["free", "reflecting", "periodic"];
const TARGET_KEYS: &[&str] = &["name", "region", "absorb", "bridge"];
const OBSERVE_KEYS: &[&str] = &["first_passage", "basins"];
const BASIN_KEYS: &[&str] = &["name", "region"];
/// Most basins a run may count transitions between.
pub const MAX_BASINS: usize = 8;
/// Most targets a run may watch (each is one u32 per particle and a loop in the kernel).
pub const MAX_TARGETS: usize = 8;

/// `axis` as written in `key`, if it names an axis below `dim`.
fn axis(issues: &mut Issues, key: &str, name: &str, dim: Option<usize>) -> Option<usize> {
    let Some(k) = axis_of(name) else {
        issues.add(
            key,
            None,
            format!("unknown axis \"{name}\"; axes are x, y, z or x0 .. x7"),
        );
        return None;
    };
    if let Some(d) = dim
        && k >= d
    {
        issues.add(
            key,
            None,
            format!(
                "axis \"{name}\" is axis {k}, but particles.dim = {d} has {}",
                crate::model::expr::parse::coordinate_list(d)
            ),
        );
        return None;
    }
    Some(k)
}

/// `[boundary]`: one `{ kind, low, high }` per named axis.
pub(crate) fn walls(issues: &mut Issues, v: Option<&Value>, dim: Option<usize>) -> Vec<Wall> {
    let Some(v) = v else {
        return Vec::new();
    };
    let Some(t) = table(issues, "boundary", v) else {
        return Vec::new();
    };
    let mut out = vec![Wall::Free; dim.unwrap_or(super::MAX_DIM)];
    let mut named: Vec<Option<String>> = vec![None; out.len()];
    for (name, spec) in t {
        let key = format!("boundary.{name}");
        let Some(k) = axis(issues, &key, name, dim) else {
            continue;
        };
        if let Some(first) = &named[k] {
            issues.add(
                &key,
                Some(spec),
                format!("axis {k} is already given as boundary.{first}: one spec per axis"),
            );
            continue;
        }
        named[k] = Some(name.clone());
        let Some(st) = table(issues, &key, spec) else {
            continue;
        };
        let sec = Section::new(&key, st);
        let Some(kind) = sec
            .get("kind")
            .and_then(|v| choice(issues, &sec.key("kind"), v, WALL_KINDS))
        else {
            if sec.get("kind").is_none() {
                issues.missing(&sec.key("kind"), "\"free\", \"reflecting\" or \"periodic\"");
            }
            continue;
        };
        if kind == "free" {
            sec.check_keys(&["kind"], issues);
            continue;
        }
        sec.check_keys(&["kind", "low", "high"], issues);
        let bound = |issues: &mut Issues, which: &str| match sec.get(which) {
            Some(v) => number(issues, &sec.key(which), v, "a finite number", |_| true),
            None => {
                issues.missing(&sec.key(which), "a finite number");
                None
            }
        };
        let (low, high) = (bound(issues, "low"), bound(issues, "high"));
        let (Some(low), Some(high)) = (low, high) else {
            continue;
        };
        if low >= high {
            issues.add(
                &sec.key("high"),
                sec.get("high"),
                format!("a number > low = {low} (the {kind} interval [low, high] is empty)"),
            );
            continue;
        }
        // In f32, which the GPU holds positions in, the interval must still be wide.
        if ((high - low) as f32) <= f32::EPSILON * (low.abs().max(high.abs()) as f32) * 16.0 {
            issues.add(
                &sec.key("high"),
                sec.get("high"),
                format!("an interval wider than 16 f32 roundings of its ends (low = {low})"),
            );
            continue;
        }
        out[k] = if kind == "reflecting" {
            Wall::Reflecting { low, high }
        } else {
            Wall::Periodic { low, high }
        };
    }
    if out.iter().all(Wall::is_free) {
        Vec::new()
    } else {
        out
    }
}

/// `[observe]`'s `name` entries: None when absent, or (with an issue) when not an array.
fn observe_list<'a>(
    issues: &mut Issues,
    observe: &'a toml::Table,
    name: &str,
) -> Option<&'a [Value]> {
    let list = observe.get(name)?;
    let Value::Array(items) = list else {
        issues.add(
            &format!("observe.{name}"),
            Some(list),
            format!("an array of tables ([[observe.{name}]])"),
        );
        return None;
    };
    Some(items.as_slice())
}

/// `[observe]` with its `[[observe.first_passage]]` tables.
pub(crate) fn targets(
    issues: &mut Issues,
    v: Option<&Value>,
    dim: Option<usize>,
) -> Vec<PassageTarget> {
    let Some(v) = v else {
        return Vec::new();
    };
    let Some(t) = table(issues, "observe", v) else {
        return Vec::new();
    };
    Section::new("observe", t).check_keys(OBSERVE_KEYS, issues);
    let Some(items) = observe_list(issues, t, "first_passage") else {
        return Vec::new();
    };
    if items.len() > MAX_TARGETS {
        issues.add(
            "observe.first_passage",
            None,
            format!("at most {MAX_TARGETS} targets; got {}", items.len()),
        );
        return Vec::new();
    }
    let mut out: Vec<PassageTarget> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("observe.first_passage[{i}]");
        let Some(tt) = table(issues, &key, item) else {
            continue;
        };
        let sec = Section::new(&key, tt);
        sec.check_keys(TARGET_KEYS, issues);
        let name = named(
            issues,
            sec,
            out.iter().map(|t| t.name.as_str()),
            "first_passage target",
        );
        let absorb = match sec.get("absorb") {
            None => Some(false),
            Some(Value::Boolean(b)) => Some(*b),
            Some(v) => {
                issues.add(&sec.key("absorb"), Some(v), "true or false");
                None
            }
        };
        let bridge = match sec.get("bridge") {
            None => Some(false),
            Some(Value::Boolean(b)) => Some(*b),
            Some(v) => {
                issues.add(
                    &sec.key("bridge"),
                    Some(v),
                    "true (also detect passages between step ends with the Brownian-bridge \
                     crossing probability) or false",
                );
                None
            }
        };
        let region = match sec.get("region") {
            Some(v) => region(issues, &sec.key("region"), v, dim),
            None => {
                issues.missing(
                    &sec.key("region"),
                    "a box { x = [a, b], ... } or a half-space { normal = [...], offset = c }",
                );
                None
            }
        };
        if let (Some(name), Some(region), Some(absorb), Some(bridge)) =
            (name, region, absorb, bridge)
        {
            out.push(PassageTarget {
                name,
                region,
                absorb,
                bridge,
            });
        }
    }
    out
}

/// `[[observe.basins]]`: at least two named regions.
pub(crate) fn basins(issues: &mut Issues, v: Option<&Value>, dim: Option<usize>) -> Vec<Basin> {
    let Some(Value::Table(t)) = v else {
        return Vec::new();
    };
    let Some(items) = observe_list(issues, t, "basins") else {
        return Vec::new();
    };
    if !(2..=MAX_BASINS).contains(&items.len()) {
        issues.add(
            "observe.basins",
            None,
            format!(
                "2 to {MAX_BASINS} basins (transitions go from one to another); got {}",
                items.len()
            ),
        );
        return Vec::new();
    }
    let mut out: Vec<Basin> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("observe.basins[{i}]");
        let Some(tt) = table(issues, &key, item) else {
            continue;
        };
        let sec = Section::new(&key, tt);
        sec.check_keys(BASIN_KEYS, issues);
        let name = named(issues, sec, out.iter().map(|b| b.name.as_str()), "basin");
        let region = match sec.get("region") {
            Some(v) => region(issues, &sec.key("region"), v, dim),
            None => {
                issues.missing(
                    &sec.key("region"),
                    "a box { x = [a, b], ... } or a half-space { normal = [...], offset = c }",
                );
                None
            }
        };
        if let (Some(name), Some(region)) = (name, region) {
            out.push(Basin { name, region });
        }
    }
    out
}

/// The `name` of a target or basin: valid and unlike the names before it.
fn named<'n>(
    issues: &mut Issues,
    sec: Section<'_>,
    mut before: impl Iterator<Item = &'n str>,
    what: &str,
) -> Option<String> {
    let name = match sec.get("name") {
        Some(Value::String(s)) if valid_name(s) => Some(s.clone()),
        Some(v) => {
            issues.add(
                &sec.key("name"),
                Some(v),
                "a name of 1 to 64 letters, digits, '_' or '-' (it names files and metrics \
                 columns)",
            );
            None
        }
        None => {
            issues.missing(&sec.key("name"), "a name (letters, digits, '_' or '-')");
            None
        }
    };
    if let Some(n) = &name
        && before.any(|b| b == n)
    {
        issues.add(
            &sec.key("name"),
            sec.get("name"),
            format!("a name no other {what} has"),
        );
        return None;
    }
    name
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A box `{ x = [a, b], ... }` or a half-space `{ normal = [...], offset = c }`.
fn region(issues: &mut Issues, key: &str, v: &Value, dim: Option<usize>) -> Option<Region> {
    let t = table(issues, key, v)?;
    let sec = Section::new(key, t);
    if t.contains_key("normal") || t.contains_key("offset") {
        sec.check_keys(&["normal", "offset"], issues);
        let normal = match sec.get("normal") {
            Some(v) => numbers(
                issues,
                &sec.key("normal"),
                v,
                "numbers",
                dim.map(|d| (d, "one per dimension")),
                |_| true,
            ),
            None => {
                issues.missing(&sec.key("normal"), "a list of numbers, one per dimension");
                None
            }
        };
        let offset = match sec.get("offset") {
            Some(v) => number(issues, &sec.key("offset"), v, "a finite number", |_| true),
            None => {
                issues.missing(&sec.key("offset"), "a finite number");
                None
            }
        };
        let normal = normal?;
        if normal.iter().all(|n| *n == 0.0) {
            issues.add(
                &sec.key("normal"),
                sec.get("normal"),
                "a non-zero normal (the half-space normal . x >= offset)",
            );
            return None;
        }
        return Some(Region::HalfSpace {
            normal,
            offset: offset?,
        });
    }
    if t.is_empty() {
        issues.add(
            key,
            Some(v),
            "a box naming at least one axis ({ x = [a, b] }) or a half-space \
             { normal = [...], offset = c }",
        );
        return None;
    }
    let mut intervals: Vec<Option<[f64; 2]>> = vec![None; dim.unwrap_or(super::MAX_DIM)];
    let mut ok = true;
    for (name, range) in t {
        let k_key = format!("{key}.{name}");
        let Some(k) = axis(issues, &k_key, name, dim) else {
            ok = false;
            continue;
        };
        if intervals[k].is_some() {
            issues.add(
                &k_key,
                Some(range),
                format!("axis {k} is already constrained: one interval per axis"),
            );
            ok = false;
            continue;
        }
        let Some(ab) = numbers(
            issues,
            &k_key,
            range,
            "numbers",
            Some((2, "[a, b]")),
            |_| true,
        ) else {
            ok = false;
            continue;
        };
        if ab[0] > ab[1] {
            issues.add(
                &k_key,
                Some(range),
                "an interval [a, b] with a <= b (this one is empty)",
            );
            ok = false;
            continue;
        }
        intervals[k] = Some([ab[0], ab[1]]);
    }
    ok.then_some(Region::Box { intervals })
}

/// Checks that need the whole plan: the kind must apply boundaries, and first-passage
/// steps must fit a u32 below the "never" mark.
pub(crate) fn check_plan(plan: &super::Plan, issues: &mut Issues) {
    let b = &plan.boundary;
    if b.is_empty() {
        return;
    }
    // The walls' key, unless the kind refuses the targets or basins even without walls.
    let without_walls = Boundary {
        walls: Vec::new(),
        ..b.clone()
    };
    let key = if b.walls.iter().all(Wall::is_free)
        || (!without_walls.is_empty() && plan.dynamics.boundary_refusal(&without_walls).is_some())
    {
        if b.first_passage.is_empty() {
            "observe.basins"
        } else {
            "observe.first_passage"
        }
    } else {
        "boundary"
    };
    if let Some(why) = plan.dynamics.boundary_refusal(b) {
        issues.add(
            key,
            None,
            format!(
                "not supported with dynamics.kind = \"{}\": {why}; walls, periodic axes, \
                 targets and basins run with kind = \"langevin\", \"sde\" and \
                 \"interaction\" (there without absorbing targets), reflecting walls, \
                 targets and basins with mala = true, reflecting walls with kind = \
                 \"underdamped\"",
                plan.dynamics.kind_name()
            ),
        );
    }
    for (k, t) in b.first_passage.iter().enumerate().filter(|(_, t)| t.bridge) {
        if let Some(why) = plan.dynamics.bridge_refusal() {
            issues.add(
                &format!("observe.first_passage[{k}].bridge"),
                Some(&toml::Value::Boolean(true)),
                format!(
                    "false with dynamics.kind = \"{}\" (target \"{}\"): {why}",
                    plan.dynamics.kind_name(),
                    t.name
                ),
            );
        }
    }
    let steps = plan.dynamics.steps();
    if !b.first_passage.is_empty() && steps >= u64::from(NEVER) {
        issues.add(
            "observe.first_passage",
            None,
            format!(
                "a run of fewer than {NEVER} steps (first-passage steps are u32 with {NEVER} \
                 meaning never); this run has {steps}"
            ),
        );
    }
}

/// The first-passage step of a particle that never reached the target.
pub const NEVER: u32 = u32::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_contain_their_boundary() {
        let b = Region::Box {
            intervals: vec![Some([0.0, 1.0]), None],
        };
        assert!(b.contains(&[0.0, 50.0]) && b.contains(&[1.0, -3.0]));
        assert!(!b.contains(&[1.0 + 1e-12, 0.0]));
        let h = Region::HalfSpace {
            normal: vec![1.0, -1.0],
            offset: 0.5,
        };
        assert!(h.contains(&[1.0, 0.5]) && !h.contains(&[1.0, 0.6]));
    }
}
