//! Scenario text → [`Resolved`]: TOML parsing, `--set` overrides, `--seed`, validation and
//! resolution (in `resolve`), and the run hash.

use super::data::{ArrayInputs, SampleTable, hex};
use super::plan::{Init, Plan};
use super::resolve;
use super::walk::{Issues, show};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::Path;
use toml::{Table, Value};

/// A validated scenario: the plan with every default filled in, the sample table it refers
/// to (loaded once here, so the data the hash covers is the data the run uses), and the
/// run hash.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub plan: Plan,
    pub samples: Option<SampleTable>,
    /// The data set the dynamics read (an empirical score), loaded once like `samples`.
    pub data: Option<SampleTable>,
    /// See [`plan_hash`].
    pub hash: String,
    /// The scenario text as read, headed by a comment naming the `--set` overrides and
    /// `--seed` applied to it (none when the scenario did not come from text, as on
    /// resume or from a Python dict): what a run stores as `scenario.toml`.
    pub text: Option<String>,
    /// In-memory arrays the plan reads (`data` keys): the path the plan records for each
    /// (inside the run directory) and its table. The run writes them there as it starts.
    pub arrays: Vec<(std::path::PathBuf, SampleTable)>,
}

/// Reads, validates and resolves the scenario file at `path`. Relative input paths in it are
/// relative to the file's directory. An unreadable file is an I/O error (exit 74); anything
/// wrong inside it is [`Error::Scenario`] listing every problem (exit 65).
pub fn load(path: &Path, overrides: &[String], seed: Option<u64>) -> Result<Resolved> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let source_name = path.display().to_string();
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Err(Error::Data {
            path: path.to_path_buf(),
            reason: "not UTF-8 text; a scenario is a TOML file".into(),
        });
    };
    let base_dir = path.parent().unwrap_or_else(|| Path::new(""));
    resolve_str(text, &source_name, base_dir, overrides, seed)
}

/// The scenario text as a run stores it: `text`, after a comment naming the overrides and
/// seed given on the command line (each written as a quoted string, so that no character of
/// it can end the comment).
fn stored_text(text: &str, overrides: &[String], seed: Option<u64>) -> String {
    let mut given: Vec<String> = overrides.iter().map(|o| format!("--set {o:?}")).collect();
    given.extend(seed.map(|s| format!("--seed {s}")));
    if given.is_empty() {
        return text.to_string();
    }
    format!(
        "# fokker applied {} to this scenario (manifest.json's plan has the result)\n{text}",
        given.join(" ")
    )
}

/// Validates and resolves scenario `text`. `source_name` names it in messages, `base_dir`
/// anchors relative input paths, `overrides` are `--set KEY=VALUE` strings applied in order
/// (VALUE is parsed as a TOML value, or taken as a string if it does not parse), and `seed`
/// (`--seed`) replaces the file's seed.
pub fn resolve_str(
    text: &str,
    source_name: &str,
    base_dir: &Path,
    overrides: &[String],
    seed: Option<u64>,
) -> Result<Resolved> {
    let mut issues = Issues::default();
    let stored = stored_text(text, overrides, seed);
    let parsed = text.parse::<Table>();
    let overrides = parse_overrides(overrides, &mut issues);
    let root = match parsed {
        Ok(t) => t,
        Err(e) => {
            let key = match e.span() {
                Some(span) => line_col(text, span.start),
                None => "TOML".to_string(),
            };
            issues.add(
                &key,
                None,
                format!("TOML syntax error: {}", e.message().trim()),
            );
            return Err(scenario_error(source_name, issues));
        }
    };
    resolve_overridden(
        root,
        Some(stored),
        source_name,
        base_dir,
        overrides,
        seed,
        issues,
        ArrayInputs::default(),
    )
}

/// [`resolve_str`] for a scenario already in table form (the Python package's dicts), whose
/// `data` keys may stand for the in-memory `arrays`.
pub fn resolve_table(
    root: Table,
    source_name: &str,
    base_dir: &Path,
    overrides: &[String],
    seed: Option<u64>,
    arrays: ArrayInputs,
) -> Result<Resolved> {
    let mut issues = Issues::default();
    let overrides = parse_overrides(overrides, &mut issues);
    resolve_overridden(
        root,
        None,
        source_name,
        base_dir,
        overrides,
        seed,
        issues,
        arrays,
    )
}

fn parse_overrides(overrides: &[String], issues: &mut Issues) -> Vec<Override> {
    overrides
        .iter()
        .filter_map(|o| parse_override(o, issues))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn resolve_overridden(
    mut root: Table,
    text: Option<String>,
    source_name: &str,
    base_dir: &Path,
    overrides: Vec<Override>,
    seed: Option<u64>,
    mut issues: Issues,
    arrays: ArrayInputs,
) -> Result<Resolved> {
    for o in overrides {
        o.apply(&mut root, &mut issues);
    }
    let (built, arrays) = super::data::with_arrays(arrays, || {
        resolve::resolve(&root, base_dir, seed, &mut issues)
    });
    if built.is_none() && issues.is_empty() {
        // Every reader records an issue before giving up; this guards the contract that an
        // invalid scenario never comes back with an empty, unexplained list.
        issues.add(
            "",
            None,
            "internal error: the scenario was rejected without a reason; please report this",
        );
    }
    match built {
        Some(b) if issues.is_empty() => {
            let hash = plan_hash(&b.plan)?;
            Ok(Resolved {
                plan: b.plan,
                samples: b.samples,
                data: b.data,
                hash,
                text,
                arrays,
            })
        }
        _ => Err(scenario_error(source_name, issues)),
    }
}

/// What [`plan_hash`] covers, by version; checkpoints record it so that a run whose hash was
/// computed otherwise is refused by name instead of as a mismatch. Format 1 hashed input
/// files' bytes and the plan with their paths; format 2 hashes input data by canonical
/// content ([`super::data::canonical_sha256`]) and leaves paths out.
pub const PLAN_HASH_FORMAT: u32 = 2;

/// The run hash: hex sha256 over `fokker plan hash 2\0`, the plan as JSON (keys sorted) with
/// the path of every input data file left out (an object holding `path` and `sha256` keeps
/// only the digest), then the hex sha256 of every input (as ASCII, in plan order:
/// `particles.init` samples, then the dynamics' data set). So the same data from a .npy, a
/// .csv or an array, wherever it lies, gives the same hash. It is computed from the plan alone
/// so `merge` and `resume` can recompute it from a manifest.
pub fn plan_hash(plan: &Plan) -> Result<String> {
    let cannot =
        |e: serde_json::Error| Error::Output(format!("cannot serialise the plan for hashing: {e}"));
    let mut value = serde_json::to_value(plan).map_err(cannot)?;
    forget_input_paths(&mut value);
    let json = serde_json::to_vec(&value).map_err(cannot)?;
    let mut h = Sha256::new();
    h.update(format!("fokker plan hash {PLAN_HASH_FORMAT}\0").as_bytes());
    h.update(&json);
    for digest in input_digests(plan) {
        h.update(digest.as_bytes());
    }
    Ok(hex(&h.finalize()))
}

/// Removes `path` from every object that also holds `sha256` (an input file's reference).
fn forget_input_paths(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.contains_key("sha256") {
                map.remove("path");
            }
            map.values_mut().for_each(forget_input_paths);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(forget_input_paths),
        _ => {}
    }
}

/// The sha256 of every input file the plan reads, in a fixed order.
pub fn input_digests(plan: &Plan) -> Vec<&str> {
    let mut out = Vec::new();
    if let Init::Samples { sha256, .. } = &plan.particles.init {
        out.push(sha256.as_str());
    }
    let dynamics_files = plan.dynamics.input_file().into_iter();
    for (_, sha256) in dynamics_files.chain(plan.dynamics.image_file()) {
        out.push(sha256);
    }
    out
}

fn scenario_error(source_name: &str, issues: Issues) -> Error {
    Error::Scenario {
        source_name: source_name.to_string(),
        issues: issues.0,
    }
}

/// "line L, column C" (1-based) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> String {
    let at = (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {col}")
}

/// One `--set a.b.c=VALUE`, parsed.
struct Override {
    text: String,
    path: Vec<String>,
    value: Value,
}

const OVERRIDE_HELP: &str = "KEY=VALUE, KEY a dotted path of bare keys (letters, digits, _ and -), e.g. dynamics.temperature=0.5";

fn parse_override(text: &str, issues: &mut Issues) -> Option<Override> {
    let as_value = Value::String(text.to_string());
    let Some((key, value)) = text.split_once('=') else {
        issues.add("--set", Some(&as_value), OVERRIDE_HELP);
        return None;
    };
    let path: Vec<String> = key
        .trim()
        .split('.')
        .map(|p| p.trim().to_string())
        .collect();
    let bare = |p: &String| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !path.iter().all(bare) {
        issues.add("--set", Some(&as_value), OVERRIDE_HELP);
        return None;
    }
    // "0.3" → float, "[1, 2]" → array, "{ kind = \"point\" }" → table, "nan" → NaN (which
    // validation then rejects); words that are not TOML values ("double well") stay strings.
    let value = value
        .trim()
        .parse::<Value>()
        .unwrap_or_else(|_| Value::String(value.trim().to_string()));
    Some(Override {
        text: text.to_string(),
        path,
        value,
    })
}

impl Override {
    /// Sets the value, creating missing intermediate tables. A path through a non-table
    /// value (`particles.count.x` when count is a number) is an issue, not a silent replace.
    fn apply(self, root: &mut Table, issues: &mut Issues) {
        let Some((last, parents)) = self.path.split_last() else {
            return;
        };
        let mut table = root;
        let mut walked = String::new();
        for p in parents {
            walked = super::walk::join(&walked, p);
            let entry = table
                .entry(p.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            match entry {
                Value::Table(t) => table = t,
                other => {
                    issues.add(
                        "--set",
                        Some(&Value::String(self.text.clone())),
                        format!(
                            "{walked} is {} in the scenario, not a table, so it has no key {}",
                            show(other),
                            self.path.join(".")
                        ),
                    );
                    return;
                }
            }
        }
        table.insert(last.clone(), self.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScenarioIssue;
    use crate::model::Potential;
    use crate::scenario::plan::*;

    const FULL: &str = r#"
name = "double-well relaxation"
seed = 7

[particles]
count = 1_000_000
dim = 2
init = { kind = "point", at = [0.5, -1] }

[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.5
dt = 1e-3
t_end = 5.0

[output]
every = 0.5
histogram = { axes = [1, 0], bins = [64, 32], range = [[-3, 3], [-2.5, 2.5]] }
heatmap = { colormap = "magma", scale = "linear" }
particles = "final"
gif = false
"#;

    const MINIMAL: &str = r#"
[particles]
count = 10
dim = 2
init = { kind = "point", at = [0, 0] }

[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
dt = 0.01
steps = 100
"#;

    fn ok(text: &str) -> Resolved {
        ok_with(text, &[], None)
    }

    fn ok_with(text: &str, overrides: &[&str], seed: Option<u64>) -> Resolved {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        match resolve_str(text, "test.toml", Path::new(""), &o, seed) {
            Ok(r) => r,
            Err(e) => panic!("expected success, got {e}"),
        }
    }

    fn issues(text: &str, overrides: &[&str]) -> Vec<ScenarioIssue> {
        issues_in(text, overrides, Path::new(""))
    }

    fn issues_in(text: &str, overrides: &[&str], base: &Path) -> Vec<ScenarioIssue> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        match resolve_str(text, "test.toml", base, &o, None) {
            Err(Error::Scenario {
                issues,
                source_name,
            }) => {
                assert_eq!(source_name, "test.toml");
                issues
            }
            other => panic!("expected scenario issues, got {other:?}"),
        }
    }

    /// The issue for `key`, which must be there.
    fn issue<'a>(all: &'a [ScenarioIssue], key: &str) -> &'a ScenarioIssue {
        all.iter()
            .find(|i| i.key == key)
            .unwrap_or_else(|| panic!("no issue for {key}; got {all:#?}"))
    }

    fn langevin(plan: &Plan) -> (&Potential, f64, f64, u64, f64) {
        use crate::model::Temperature;
        let DynamicsPlan::Langevin(crate::dynamics::langevin::LangevinPlan {
            potential,
            temperature,
            dt,
            steps,
            t_end,
            ..
        }) = &plan.dynamics
        else {
            panic!("not langevin: {:?}", plan.dynamics)
        };
        let Temperature::Constant(temperature) = temperature else {
            panic!("not a constant temperature: {temperature:?}")
        };
        (
            potential,
            *temperature,
            dt.constant().expect("a constant dt"),
            *steps,
            *t_end,
        )
    }

    #[test]
    fn full_scenario_resolves() {
        let r = ok(FULL);
        let p = &r.plan;
        assert_eq!(p.name.as_deref(), Some("double-well relaxation"));
        assert_eq!(p.seed, 7);
        assert_eq!(p.particles.count, 1_000_000);
        assert_eq!(p.particles.dim, 2);
        assert_eq!(
            p.particles.init,
            Init::Point {
                at: vec![0.5, -1.0]
            }
        );
        let (pot, t, dt, steps, t_end) = langevin(p);
        assert_eq!(*pot, Potential::DoubleWell);
        assert_eq!((t, dt, steps), (0.5, 1e-3, 5000));
        assert!((t_end - 5.0).abs() < 1e-12);
        assert_eq!(p.output.every_steps, Some(500));
        assert_eq!(
            p.output.histogram,
            HistogramSpec {
                axes: vec![1, 0],
                bins: vec![64, 32],
                range: vec![[-3.0, 3.0], [-2.5, 2.5]],
            }
        );
        assert_eq!(p.output.heatmap.colormap, "magma");
        assert_eq!(p.output.heatmap.scale, Scale::Linear);
        assert_eq!(p.output.particles, ParticlesOutput::Final);
        assert!(!p.output.gif);
        assert!(r.samples.is_none());
        assert_eq!(r.hash.len(), 64);
        assert_eq!(r.hash, plan_hash(p).expect("hash"));
    }

    #[test]
    fn defaults_are_filled() {
        let r = ok(MINIMAL);
        let p = &r.plan;
        assert_eq!(p.name, None);
        assert_eq!(p.seed, 0);
        let (_, t, dt, steps, t_end) = langevin(p);
        assert_eq!((t, dt, steps), (1.0, 0.01, 100));
        assert!((t_end - 1.0).abs() < 1e-12);
        let o = &p.output;
        assert_eq!(o.every_steps, None);
        assert_eq!(o.histogram.axes, vec![0, 1]);
        assert_eq!(o.histogram.bins, vec![128, 128]);
        // Point at 0 (±0.5) joined with the double well at T = 1: [-2.5, 2.5] x ±4.
        assert_eq!(o.histogram.range, vec![[-2.5, 2.5], [-4.0, 4.0]]);
        assert_eq!(o.heatmap.colormap, "viridis");
        assert_eq!(o.heatmap.scale, Scale::Log);
        assert_eq!(o.particles, ParticlesOutput::None);
        assert!(o.gif);
    }

    #[test]
    fn one_dimensional_defaults_and_single_bins() {
        let text = MINIMAL
            .replace("dim = 2", "dim = 1")
            .replace("at = [0, 0]", "at = [0]");
        let r = ok_with(&text, &["output.histogram.bins=50"], None);
        assert_eq!(r.plan.output.histogram.axes, vec![0]);
        assert_eq!(r.plan.output.histogram.bins, vec![50]);
    }

    #[test]
    fn t_end_rounds_to_steps() {
        let text = MINIMAL.replace("steps = 100", "t_end = 0.0149");
        let (_, _, _, steps, t_end) = langevin(&ok(&text).plan);
        assert_eq!(steps, 1);
        assert!((t_end - 0.01).abs() < 1e-15);
        let text = MINIMAL.replace("steps = 100", "t_end = 1e-9");
        assert_eq!(langevin(&ok(&text).plan).3, 1);
    }

    #[test]
    fn huge_dt_is_accepted() {
        let r = ok_with(MINIMAL, &["dynamics.dt=1e3"], None);
        assert_eq!(langevin(&r.plan).2, 1e3);
        let text = MINIMAL.replace("steps = 100", "t_end = 5.0");
        let r = ok_with(&text, &["dynamics.dt=1e3", "output.every=0.1"], None);
        assert_eq!(langevin(&r.plan).3, 1);
        assert_eq!(r.plan.output.every_steps, Some(1));
    }

    #[test]
    fn overrides_and_seed_take_effect() {
        let r = ok_with(FULL, &["dynamics.temperature=0.3"], Some(42));
        assert_eq!(langevin(&r.plan).1, 0.3);
        assert_eq!(r.plan.seed, 42);
        // --seed beats both the file and --set, and may exceed i64::MAX.
        let r = ok_with(FULL, &["seed=3"], Some(u64::MAX));
        assert_eq!(r.plan.seed, u64::MAX);
        let r = ok_with(FULL, &["seed=3"], None);
        assert_eq!(r.plan.seed, 3);
        // Whole tables, new intermediate tables, bare-string fallback.
        let r = ok_with(
            MINIMAL,
            &[
                "particles.init={ kind = \"gaussian\", mean = [1, 2], std = 0.5 }",
                "output.heatmap.colormap=turbo",
                "name=my run",
            ],
            None,
        );
        assert_eq!(
            r.plan.particles.init,
            Init::Gaussian {
                mean: vec![1.0, 2.0],
                std: vec![0.5, 0.5]
            }
        );
        assert_eq!(r.plan.output.heatmap.colormap, "turbo");
        assert_eq!(r.plan.name.as_deref(), Some("my run"));
        assert_ne!(ok(MINIMAL).hash, r.hash);
    }

    #[test]
    fn hash_depends_on_the_plan_only() {
        let a = ok(MINIMAL);
        let b = ok(&format!("# a comment\n{MINIMAL}"));
        assert_eq!(a.hash, b.hash);
        let c = ok_with(MINIMAL, &[], Some(1));
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn wrong_types() {
        let all = issues(
            MINIMAL,
            &[
                "particles.count=\"ten\"",
                "dynamics.dt=[1]",
                "output.gif=1",
                "name=3",
            ],
        );
        assert_eq!(issue(&all, "particles.count").value, "\"ten\"");
        assert_eq!(issue(&all, "dynamics.dt").value, "[1]");
        assert!(issue(&all, "output.gif").allowed.contains("true or false"));
        issue(&all, "name");
        assert_eq!(all.len(), 4, "{all:#?}");
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let text = MINIMAL.replace("dt = 0.01", "dt = 0.01\ntemprature = 2");
        let all = issues(&text, &["particles.cuont=3", "zzz=1"]);
        let i = issue(&all, "dynamics.temprature");
        assert_eq!(i.value, "2");
        assert_eq!(i.allowed, "unknown key; did you mean \"temperature\"?");
        assert!(issue(&all, "particles.cuont").allowed.contains("\"count\""));
        assert!(
            issue(&all, "zzz")
                .allowed
                .contains("valid keys here: name, seed, particles, dynamics, output")
        );
        // Unknown keys inside kind-dependent tables are checked against that kind.
        let all = issues(MINIMAL, &["particles.init.mean=[0, 0]"]);
        issue(&all, "particles.init.mean");
        let all = issues(MINIMAL, &["dynamics.potential.kind=double_wel"]);
        assert!(
            issue(&all, "dynamics.potential.kind")
                .allowed
                .contains("did you mean \"double_well\"?")
        );
    }

    #[test]
    fn dim_out_of_range() {
        for bad in ["0", "9", "-1", "2.0"] {
            let all = issues(MINIMAL, &[&format!("particles.dim={bad}")]);
            assert_eq!(
                issue(&all, "particles.dim").allowed.split(" (").next(),
                Some("an integer from 1 to 8")
            );
            // The lengths that depend on dim are not also reported.
            assert_eq!(all.len(), 1, "{all:#?}");
        }
    }

    #[test]
    fn length_mismatch_names_the_key_and_length() {
        let all = issues(MINIMAL, &["particles.init.at=[1, 2, 3]"]);
        let i = issue(&all, "particles.init.at");
        assert!(i.allowed.contains("a list of 2 finite numbers"), "{i:?}");
        assert!(i.allowed.contains("got 3"), "{i:?}");
        let all = issues(
            MINIMAL,
            &[
                "particles.init={kind=\"mixture\", weights=[1, 1], means=[[0, 0]], stds=[1, [1, 1, 1]]}",
            ],
        );
        assert!(
            issue(&all, "particles.init.means")
                .allowed
                .contains("a list of 2 mean vectors")
        );
        assert!(issue(&all, "particles.init.stds").allowed.contains("got 3"));
    }

    #[test]
    fn matrix_must_be_symmetric_and_square() {
        let pot = |m: &str| format!("dynamics.potential={{kind=\"quadratic\", matrix={m}}}");
        let all = issues(MINIMAL, &[&pot("[[1, 0.5], [0.4, 1]]")]);
        let i = issue(&all, "dynamics.potential.matrix");
        assert!(i.allowed.contains("entry [1][0] = 0.4 differs"), "{i:?}");
        let all = issues(MINIMAL, &[&pot("[[1, 0], [0]]")]);
        assert!(
            issue(&all, "dynamics.potential.matrix")
                .allowed
                .contains("row 1")
        );
        let all = issues(MINIMAL, &[&pot("[[1]]")]);
        assert!(
            issue(&all, "dynamics.potential.matrix")
                .allowed
                .contains("got 1 rows")
        );
        // Symmetric to rounding is fine; an indefinite matrix is allowed.
        let r = ok_with(
            MINIMAL,
            &[&pot("[[1, 0.1], [0.10000000000000001, -1]]")],
            None,
        );
        assert!(
            matches!(langevin(&r.plan).0, Potential::Quadratic { center, .. } if center == &vec![0.0, 0.0])
        );
    }

    #[test]
    fn negative_count_and_both_durations() {
        let text = MINIMAL.replace("steps = 100", "steps = 100\nt_end = 1.0");
        let all = issues(&text, &["particles.count=-5"]);
        assert_eq!(issue(&all, "particles.count").value, "-5");
        assert!(issue(&all, "dynamics.t_end").allowed.contains("not both"));
        let text = MINIMAL.replace("steps = 100", "");
        let all = issues(&text, &[]);
        assert!(issue(&all, "dynamics.t_end").allowed.starts_with("missing"));
    }

    #[test]
    fn nan_and_inf_are_rejected() {
        let all = issues(
            MINIMAL,
            &[
                "dynamics.temperature=nan",
                "dynamics.dt=inf",
                "particles.init.at=[0, -inf]",
            ],
        );
        assert_eq!(issue(&all, "dynamics.temperature").value, "nan");
        assert_eq!(issue(&all, "dynamics.dt").value, "inf");
        assert!(
            issue(&all, "particles.init.at")
                .allowed
                .contains("entry 1 is -inf")
        );
    }

    #[test]
    fn bad_override_syntax() {
        let all = issues(
            MINIMAL,
            &[
                "dynamics.temperature",
                "a..b=1",
                "=3",
                "particles.count.x=1",
            ],
        );
        assert_eq!(
            all.iter().filter(|i| i.key == "--set").count(),
            4,
            "{all:#?}"
        );
        assert!(all[3].allowed.contains("particles.count is 10"), "{all:#?}");
    }

    #[test]
    fn many_errors_are_all_reported() {
        let text = r#"
seed = -1
[particles]
count = 0
dim = 2
init = { kind = "gaussian", mean = [0, 0, 0], std = -1 }
colour = "red"
[dynamics]
kind = "langevin"
potential = { kind = "mueller_brown", scale = 0 }
temperature = -1
dt = 0
t_end = 1
[output]
every = -1
histogram = { axes = [0, 5], bins = 5000 }
heatmap = { colormap = "jet", scale = "sqrt" }
particles = "all"
"#;
        let all = issues(text, &[]);
        for key in [
            "seed",
            "particles.count",
            "particles.init.mean",
            "particles.init.std",
            "particles.colour",
            "dynamics.potential.scale",
            "dynamics.temperature",
            "dynamics.dt",
            "output.every",
            "output.histogram.axes",
            "output.histogram.bins",
            "output.heatmap.colormap",
            "output.heatmap.scale",
            "output.particles",
        ] {
            issue(&all, key);
        }
        assert_eq!(all.len(), 14, "{all:#?}");
        let shown = scenario_error("x", Issues(all)).to_string();
        assert!(
            shown.contains("  - particles.count = 0: an integer >= 1"),
            "{shown}"
        );
    }

    #[test]
    fn missing_sections_and_syntax_errors() {
        let all = issues("", &[]);
        issue(&all, "particles");
        issue(&all, "dynamics");
        let all = issues("[particles]\ncount = \n", &["oops"]);
        assert!(
            all.iter()
                .any(|i| i.key == "line 2, column 9" && i.allowed.starts_with("TOML syntax error")),
            "{all:#?}"
        );
        issue(&all, "--set");
        let all = issues("particles = 3\ndynamics = {}\noutput = []", &[]);
        issue(&all, "particles");
        assert!(issue(&all, "dynamics.kind").allowed.starts_with("missing"));
        issue(&all, "output");
    }

    #[test]
    fn mueller_brown_needs_two_dimensions() {
        let text = MINIMAL
            .replace("dim = 2", "dim = 1")
            .replace("at = [0, 0]", "at = [0]")
            .replace("double_well", "mueller_brown");
        let all = issues(&text, &[]);
        assert!(
            issue(&all, "dynamics.potential.kind")
                .allowed
                .contains("dim >= 2")
        );
        let r = ok_with(
            MINIMAL,
            &["dynamics.potential={kind=\"mueller_brown\"}"],
            None,
        );
        assert_eq!(*langevin(&r.plan).0, Potential::MuellerBrown { scale: 1.0 });
        assert_eq!(
            r.plan.output.histogram.range,
            vec![[-1.5, 1.2], [-0.5, 2.0]]
        );
    }

    #[test]
    fn every_init_kind_resolves() {
        let r = ok_with(
            MINIMAL,
            &["particles.init={kind=\"uniform\", low=[0, -1], high=[1, 1]}"],
            None,
        );
        assert_eq!(
            r.plan.output.histogram.range,
            vec![[-2.5, 2.5], [-4.0, 4.0]]
        );
        let all = issues(
            MINIMAL,
            &["particles.init={kind=\"uniform\", low=[0, 1], high=[1, 1]}"],
        );
        assert!(
            issue(&all, "particles.init.high")
                .allowed
                .contains("entry 1")
        );
        let r = ok_with(
            MINIMAL,
            &[
                "particles.init={kind=\"mixture\", weights=[1, 3], means=[[-5, 0], [5, 0]], stds=[1, [0.5, 2]]}",
            ],
            None,
        );
        let Init::Mixture(m) = &r.plan.particles.init else {
            panic!("not a mixture")
        };
        assert_eq!(m.weights, vec![0.25, 0.75]);
        assert_eq!(m.stds, vec![vec![1.0, 1.0], vec![0.5, 2.0]]);
        assert_eq!(
            r.plan.output.histogram.range,
            vec![[-9.0, 7.0], [-8.0, 8.0]]
        );
        let r = ok_with(
            MINIMAL,
            &["dynamics.potential={kind=\"mixture\", weights=[2], means=[[1, 1]], stds=[0.5]}"],
            None,
        );
        assert!(matches!(langevin(&r.plan).0, Potential::Mixture(m) if m.weights == vec![1.0]));
    }

    /// The plan hash covers input data by content: the same table as a float64 .npy, a .csv
    /// (elsewhere, under another name) and an in-memory array gives one hash; other data
    /// another.
    #[test]
    fn the_same_data_from_npy_csv_or_an_array_has_one_plan_hash() {
        use crate::scenario::data::{ArrayInput, ArrayInputs, table_from_values};
        let dir = tempfile::tempdir().expect("tempdir");
        // Binary fractions: exact in f32, so every reader gets the same values.
        let values = [1.0f64, 2.0, 3.0, -4.5];
        let npy = crate::output::npy_f64(&[2, 2], &values).expect("npy");
        std::fs::write(dir.path().join("a.npy"), &npy).expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/b.csv"), "x,y\n1,2\n3,-4.5\n").expect("write");
        let with = |path: &str| {
            let text = MINIMAL.replace(
                "init = { kind = \"point\", at = [0, 0] }",
                &format!("init = {{ kind = \"samples\", path = \"{path}\" }}"),
            );
            resolve_str(&text, "t.toml", dir.path(), &[], None).expect("resolves")
        };
        let from_npy = with("a.npy");
        let from_csv = with("sub/b.csv");
        assert_eq!(from_npy.hash, from_csv.hash);
        assert_eq!(from_npy.samples, from_csv.samples);
        let mut root: Table = MINIMAL.parse().expect("toml");
        if let Some(Value::Table(p)) = root.get_mut("particles") {
            p.insert(
                "init".into(),
                Value::Table(Table::from_iter([
                    ("kind".to_string(), Value::String("samples".into())),
                    ("data".to_string(), Value::String(ArrayInputs::token(0))),
                ])),
            );
        }
        let arrays = ArrayInputs {
            dir: dir.path().join("run/inputs"),
            entries: vec![ArrayInput {
                description: "float64 array of shape (2, 2)".into(),
                table: table_from_values(2, 2, values.iter().copied()),
            }],
        };
        let from_array =
            resolve_table(root, "<dict>", Path::new(""), &[], None, arrays).expect("resolves");
        assert_eq!(from_array.hash, from_npy.hash);
        assert_eq!(from_array.arrays.len(), 1);
        assert_eq!(
            from_array.arrays[0].0,
            dir.path().join("run/inputs/particles.init.data.npy")
        );
        // One value changed: another hash.
        std::fs::write(dir.path().join("c.csv"), "1,2\n3,-4.25\n").expect("write");
        assert_ne!(with("c.csv").hash, from_npy.hash);
    }

    #[test]
    fn samples_init_reads_the_table_relative_to_the_scenario() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pts.csv"), "x,y\n1,2\n3,-4\n").expect("write");
        let scenario = dir.path().join("s.toml");
        let text = MINIMAL.replace(
            "init = { kind = \"point\", at = [0, 0] }",
            "init = { kind = \"samples\", path = \"pts.csv\" }",
        );
        std::fs::write(&scenario, &text).expect("write");
        let r = load(&scenario, &[], None).expect("load");
        let Init::Samples { path, rows, sha256 } = &r.plan.particles.init else {
            panic!("not samples")
        };
        assert_eq!(path, &dir.path().join("pts.csv"));
        assert_eq!(*rows, 2);
        assert_eq!(
            sha256,
            &crate::scenario::data::canonical_sha256(r.samples.as_ref().expect("table"))
        );
        assert_eq!(
            r.samples.as_ref().map(|s| s.values.clone()),
            Some(vec![1.0, 2.0, 3.0, -4.0])
        );
        // [1, 3] ± 5% of 2 joined with [-2.5, 2.5]; [-4, 2] ± 0.3 joined with ±4.
        let range = &r.plan.output.histogram.range;
        assert_eq!(range[0], [-2.5, 3.1]);
        assert_eq!(range[1], [-4.3, 4.0]);
        // The data is part of the hash.
        let before = r.hash.clone();
        std::fs::write(dir.path().join("pts.csv"), "x,y\n1,2\n3,-4.5\n").expect("write");
        assert_ne!(load(&scenario, &[], None).expect("load").hash, before);

        // Wrong column count, missing file, and data errors are issues of the path key.
        let all = issues_in(&text, &["particles.dim=3"], dir.path());
        assert!(
            issue(&all, "particles.init.path")
                .allowed
                .contains("3 columns")
        );
        let all = issues_in(&text, &["particles.init.path=\"nope.npy\""], dir.path());
        assert!(
            issue(&all, "particles.init.path")
                .allowed
                .contains("cannot read")
        );
        std::fs::write(dir.path().join("bad.csv"), "1,2\n3\n").expect("write");
        let all = issues_in(&text, &["particles.init.path=bad.csv"], dir.path());
        assert!(
            issue(&all, "particles.init.path")
                .allowed
                .contains("ragged: line 2")
        );
    }

    #[test]
    fn load_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("none.toml");
        assert!(matches!(load(&missing, &[], None), Err(Error::Io { .. })));
        let bin = dir.path().join("bin.toml");
        std::fs::write(&bin, [0xff, 0xfe, 0x00]).expect("write");
        match load(&bin, &[], None) {
            Err(Error::Data { path, reason }) => {
                assert_eq!(path, bin);
                assert!(reason.contains("UTF-8"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn histogram_checks() {
        let all = issues(
            MINIMAL,
            &["output.histogram={axes=[0, 0], bins=[1, 2, 3], range=[[1, 0]]}"],
        );
        issue(&all, "output.histogram.axes");
        issue(&all, "output.histogram.range");
        assert_eq!(
            all.len(),
            2,
            "bins length is unknowable with bad axes: {all:#?}"
        );
        let all = issues(
            MINIMAL,
            &["output.histogram={axes=[1], bins=[1, 2], range=[[0, 1], [0, 1]]}"],
        );
        assert!(
            issue(&all, "output.histogram.bins")
                .allowed
                .contains("axes has 1")
        );
        assert!(
            issue(&all, "output.histogram.range")
                .allowed
                .contains("1 [lo, hi] pair")
        );
        let all = issues(
            MINIMAL,
            &["output.histogram.bins=0", "output.histogram.axes=[2]"],
        );
        assert_eq!(all.len(), 2, "{all:#?}");
    }

    #[test]
    fn too_many_steps_is_an_issue_not_a_wrap() {
        let text = MINIMAL.replace("steps = 100", "t_end = 1e300");
        assert!(
            issue(&issues(&text, &[]), "dynamics.t_end")
                .allowed
                .contains("at most")
        );
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Keys a scenario can have, so random overrides reach deep into the resolver.
        const KEYS: &[&str] = &[
            "name",
            "seed",
            "particles",
            "particles.count",
            "particles.dim",
            "particles.init",
            "particles.init.kind",
            "particles.init.at",
            "particles.init.mean",
            "particles.init.std",
            "particles.init.low",
            "particles.init.high",
            "particles.init.weights",
            "particles.init.means",
            "particles.init.stds",
            "particles.init.path",
            "dynamics",
            "dynamics.kind",
            "dynamics.potential",
            "dynamics.potential.kind",
            "dynamics.potential.matrix",
            "dynamics.potential.center",
            "dynamics.potential.scale",
            "dynamics.potential.weights",
            "dynamics.potential.means",
            "dynamics.potential.stds",
            "dynamics.temperature",
            "dynamics.dt",
            "dynamics.t_end",
            "dynamics.steps",
            "output",
            "output.every",
            "output.histogram",
            "output.histogram.axes",
            "output.histogram.bins",
            "output.histogram.range",
            "output.heatmap.colormap",
            "output.heatmap.scale",
            "output.particles",
            "output.gif",
        ];

        const VALUES: &[&str] = &[
            "0",
            "1",
            "2",
            "-1",
            "8",
            "9",
            "4096",
            "9223372036854775807",
            "-9223372036854775808",
            "0.0",
            "1e-300",
            "1e300",
            "1.7976931348623157e308",
            "nan",
            "inf",
            "-inf",
            "true",
            "\"point\"",
            "\"gaussian\"",
            "\"uniform\"",
            "\"mixture\"",
            "\"samples\"",
            "\"quadratic\"",
            "\"double_well\"",
            "\"mueller_brown\"",
            "\"langevin\"",
            "\"x.npy\"",
            "[]",
            "[0]",
            "[0, 1]",
            "[1, 0]",
            "[0, 0]",
            "[1, 2, 3]",
            "[[1, 0], [0, 1]]",
            "[[0, 1], [1, 0]]",
            "[[1e308, 0], [0, 1e308]]",
            "[[-1, 1], [1, 1]]",
            "[1, [1, 1]]",
            "[[0, 0], [1, 1]]",
            "[[0]]",
            "[[]]",
            "[\"a\"]",
            "{}",
            "{ kind = \"point\" }",
            "{ kind = \"quadratic\", matrix = [[2]] }",
            "1979-05-27",
            "abc",
        ];

        fn overrides() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::vec(
                (prop::sample::select(KEYS), prop::sample::select(VALUES))
                    .prop_map(|(k, v)| format!("{k}={v}")),
                0..6,
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn random_overrides_never_panic(o in overrides(), seed in any::<Option<u64>>()) {
                for base in [MINIMAL, FULL] {
                    match resolve_str(base, "fuzz", Path::new("/nonexistent"), &o, seed) {
                        Ok(r) => {
                            // Whatever got through is internally consistent.
                            let p = &r.plan;
                            let d = p.particles.dim as usize;
                            prop_assert!((1..=8).contains(&d));
                            prop_assert!(p.dynamics.steps() >= 1);
                            let h = &p.output.histogram;
                            prop_assert!(h.axes.iter().all(|&a| (a as usize) < d));
                            prop_assert_eq!(h.axes.len(), h.bins.len());
                            prop_assert_eq!(h.axes.len(), h.range.len());
                            prop_assert!(h.range.iter().all(|r| r[0] < r[1] && r[1].is_finite() && r[0].is_finite()));
                            if let Potential::Quadratic { matrix, center } = langevin(p).0 {
                                prop_assert_eq!(matrix.len(), d);
                                prop_assert_eq!(center.len(), d);
                            }
                        }
                        Err(Error::Scenario { issues, .. }) => {
                            prop_assert!(!issues.is_empty());
                            prop_assert!(issues.iter().all(|i| !i.key.is_empty()), "{:?}", issues);
                        }
                        Err(e) => prop_assert!(false, "unexpected error kind: {}", e),
                    }
                }
            }

            #[test]
            fn random_text_never_panics(text in "\\PC{0,300}", o in proptest::collection::vec("\\PC{0,30}", 0..3)) {
                let _ = resolve_str(&text, "fuzz", Path::new("/nonexistent"), &o, None);
            }

            #[test]
            fn toml_like_text_never_panics(text in "[\\[\\]{}a-z_.=,\"0-9 \n\\-+e]{0,300}") {
                let _ = resolve_str(&text, "fuzz", Path::new("/nonexistent"), &[], None);
            }

            #[test]
            fn byte_soup_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let text = String::from_utf8_lossy(&bytes);
                let _ = resolve_str(&text, "fuzz", Path::new("/nonexistent"), &[], None);
            }
        }
    }
}
