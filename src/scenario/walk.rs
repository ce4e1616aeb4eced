//! Reading a `toml::Table` by hand, collecting every problem instead of stopping at the first.
//!
//! serde's derive would stop at the first error and word it in Rust types; a scenario author
//! needs all problems at once, each naming the dotted key, the value as written and what is
//! allowed there. Every reader below returns `None` after recording an issue, so callers can
//! carry on and skip only the checks that depend on the bad value.

use crate::error::ScenarioIssue;
use toml::{Table, Value};

/// Longest value rendering kept in an issue; a 4096-entry list would drown the message.
const MAX_VALUE_CHARS: usize = 160;

/// The issues found so far.
#[derive(Debug, Default)]
pub(crate) struct Issues(pub Vec<ScenarioIssue>);

impl Issues {
    /// Records a problem with `key`, whose value (if any) is shown as TOML.
    pub fn add(&mut self, key: &str, value: Option<&Value>, allowed: impl Into<String>) {
        self.0.push(ScenarioIssue {
            key: key.to_string(),
            value: value.map(show).unwrap_or_default(),
            allowed: allowed.into(),
        });
    }

    /// Records a missing required key.
    pub fn missing(&mut self, key: &str, allowed: &str) {
        self.add(key, None, format!("missing; required: {allowed}"));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A value as TOML, shortened if long; very large or small floats in scientific notation
/// (TOML's own display writes 1e300 out in 301 digits).
pub(crate) fn show(v: &Value) -> String {
    let s = match v {
        Value::Float(f) if f.is_finite() && *f != 0.0 && !(1e-6..1e16).contains(&f.abs()) => {
            format!("{f:e}")
        }
        _ => v.to_string(),
    };
    if s.chars().count() > MAX_VALUE_CHARS {
        let cut: String = s.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// `path.key`, or `key` at the top level.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A table being read, with its dotted path for messages.
#[derive(Clone, Copy)]
pub(crate) struct Section<'a> {
    pub path: &'a str,
    pub table: &'a Table,
}

impl<'a> Section<'a> {
    pub fn new(path: &'a str, table: &'a Table) -> Self {
        Section { path, table }
    }

    pub fn key(&self, k: &str) -> String {
        join(self.path, k)
    }

    pub fn get(&self, k: &str) -> Option<&'a Value> {
        self.table.get(k)
    }

    /// Reports every key not in `known`, suggesting the nearest known key when one is close.
    pub fn check_keys(&self, known: &[&str], issues: &mut Issues) {
        for (k, v) in self.table {
            if !known.contains(&k.as_str()) {
                issues.add(&self.key(k), Some(v), unknown_key_help(k, known));
            }
        }
    }
}

/// `unknown key; did you mean "temperature"?`, or the list of valid keys when none is close.
pub(crate) fn unknown_key_help(key: &str, known: &[&str]) -> String {
    match suggest(key, known) {
        Some(s) => format!("unknown key; did you mean \"{s}\"?"),
        None if known.is_empty() => "unknown key; no keys are allowed here".to_string(),
        None => format!("unknown key; valid keys here: {}", known.join(", ")),
    }
}

/// The candidate nearest to `word`, if it is close enough to be a plausible typo.
///
/// Jaro–Winkler favours shared prefixes, which suits typos in identifiers (`temprature`,
/// `tend`); 0.8 keeps unrelated words out. Comparison ignores case and `-`/`_`.
pub(crate) fn suggest<'k>(word: &str, candidates: &[&'k str]) -> Option<&'k str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let w = norm(word);
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&w, &norm(c)), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A TOML number as f64 (integers are accepted where floats are expected).
pub(crate) fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Reads a finite number satisfying `ok`; otherwise records `allowed`.
pub(crate) fn number(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    allowed: &str,
    ok: impl Fn(f64) -> bool,
) -> Option<f64> {
    match as_number(v) {
        Some(x) if x.is_finite() && ok(x) => Some(x),
        _ => {
            issues.add(key, Some(v), allowed);
            None
        }
    }
}

/// Reads an integer satisfying `ok`; a float with an integral value gets a hint, since
/// `1e6` is a float in TOML and users write it for counts.
pub(crate) fn integer(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    allowed: &str,
    ok: impl Fn(i64) -> bool,
) -> Option<i64> {
    match v {
        Value::Integer(i) if ok(*i) => Some(*i),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 => {
            issues.add(
                key,
                Some(v),
                format!(
                    "{allowed} (TOML reads {} as a float; write it as {} or with underscores)",
                    show(v),
                    *f as i64
                ),
            );
            None
        }
        _ => {
            issues.add(key, Some(v), allowed);
            None
        }
    }
}

/// Reads a string that must be one of `choices`.
pub(crate) fn choice<'v>(
    issues: &mut Issues,
    key: &str,
    v: &'v Value,
    choices: &[&str],
) -> Option<&'v str> {
    let list = one_of(choices);
    match v {
        Value::String(s) if choices.contains(&s.as_str()) => Some(s.as_str()),
        Value::String(s) => {
            let hint = suggest(s, choices)
                .filter(|_| choices.len() > 1)
                .map(|c| format!("; did you mean \"{c}\"?"))
                .unwrap_or_default();
            issues.add(key, Some(v), format!("{list}{hint}"));
            None
        }
        _ => {
            issues.add(key, Some(v), format!("a string: {list}"));
            None
        }
    }
}

/// `must be "a"` for one choice, `one of "a", "b"` for several.
pub(crate) fn one_of(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    match quoted.as_slice() {
        [one] => format!("must be {one} (the only choice)"),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

pub(crate) fn table<'v>(issues: &mut Issues, key: &str, v: &'v Value) -> Option<&'v Table> {
    match v {
        Value::Table(t) => Some(t),
        _ => {
            issues.add(key, Some(v), format!("a table ([{key}] or {{ ... }})"));
            None
        }
    }
}

/// Reads a list of finite numbers, each satisfying `ok`, of length `len` when that is known.
/// `what` describes one element ("numbers", "positive numbers"); `len_why` says where the
/// length comes from ("one per dimension, dim = 2").
pub(crate) fn numbers(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    what: &str,
    len: Option<(usize, &str)>,
    ok: impl Fn(f64) -> bool,
) -> Option<Vec<f64>> {
    let describe = || match len {
        Some((n, why)) => format!("a list of {n} finite {what} ({why})"),
        None => format!("a list of finite {what}"),
    };
    let Value::Array(items) = v else {
        issues.add(key, Some(v), describe());
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match as_number(item) {
            Some(x) if x.is_finite() && ok(x) => out.push(x),
            _ => {
                issues.add(
                    key,
                    Some(v),
                    format!("{}; entry {i} is {}", describe(), show(item)),
                );
                return None;
            }
        }
    }
    if let Some((n, _)) = len
        && out.len() != n
    {
        issues.add(key, Some(v), format!("{}; got {}", describe(), out.len()));
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["kind", "temperature", "dt", "t_end", "steps", "potential"];
        assert_eq!(suggest("temprature", &keys), Some("temperature"));
        assert_eq!(suggest("Temperature", &keys), Some("temperature"));
        assert_eq!(suggest("step", &keys), Some("steps"));
        assert_eq!(suggest("t-end", &keys), Some("t_end"));
        assert_eq!(suggest("potental", &keys), Some("potential"));
        assert_eq!(suggest("zzzzzz", &keys), None);
        assert!(unknown_key_help("zzzzzz", &keys).contains("valid keys here: kind, temperature"));
    }

    #[test]
    fn integer_hint_for_float() {
        let mut i = Issues::default();
        assert_eq!(
            integer(&mut i, "k", &Value::Float(1e6), "an integer >= 1", |n| n
                >= 1),
            None
        );
        assert!(i.0[0].allowed.contains("1000000"), "{:?}", i.0);
    }
}
