//! `fokker sweep`: a grid of scenario overrides expanded into one ordinary run directory per
//! point, indexed by `sweep.json`; `fokker sweep-summary`: one CSV row per point with its
//! final metrics, and a plot of a metric against a parameter.
//!
//! A point is the base scenario with `--set KEY=VALUE` for each grid key (`seed` means
//! `--seed`), so it is exactly the run `fokker run SCENARIO --set .. --seed ..` would make.
//! Every point is resolved before anything is written: a bad key or value in any point is
//! exit 65 with nothing on disk.

use super::manifest::{Manifest, Status, VERSION};
use super::{RunOptions, RunReport, Shard, read_manifest};
use crate::error::{Error, Result, ScenarioIssue};
use crate::output::{self, plot};
use crate::scenario::{self, Resolved};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The index file of a sweep directory.
pub const INDEX: &str = "sweep.json";
/// The table `fokker sweep-summary` writes.
pub const SUMMARY: &str = "summary.csv";
/// The grid key that stands for `--seed`.
pub const SEED: &str = "seed";

/// One `--grid KEY=V1,V2,...`: the key and its values as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub key: String,
    pub values: Vec<String>,
}

impl std::str::FromStr for Grid {
    type Err = Error;

    /// `KEY=V1,V2,...`, split at the commas outside brackets, braces and quotes, so that
    /// `particles.init.at=[0.0,1.0],[1.0,0.0]` has two values.
    fn from_str(text: &str) -> Result<Grid> {
        let usage = |why: &str| {
            Error::Usage(format!(
                "--grid {text}: {why}; write KEY=V1,V2,... (KEY a scenario key as for --set, or seed)"
            ))
        };
        let (key, list) = text.split_once('=').ok_or_else(|| usage("no '='"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(usage("the key is empty"));
        }
        let values = split_top_level(list);
        if values.iter().any(String::is_empty) {
            return Err(usage("a value is empty (an empty grid has no points)"));
        }
        Ok(Grid {
            key: key.to_string(),
            values,
        })
    }
}

/// Splits at commas that are not inside `[]`, `{}` or quotes; trims each part.
fn split_top_level(list: &str) -> Vec<String> {
    let (mut parts, mut current) = (Vec::new(), String::new());
    let (mut depth, mut quote) = (0i32, None::<char>);
    for c in list.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current.trim().to_string());
    parts
}

/// The points of a grid: with `zip`, the i-th values of every key together (the lists must
/// have equal lengths); otherwise the product, the first `--grid` varying slowest.
pub fn expand(grids: &[Grid], zip: bool) -> Result<Vec<Vec<(String, String)>>> {
    if grids.is_empty() {
        return Err(Error::Usage(
            "the grid is empty: give at least one --grid KEY=V1,V2,...".into(),
        ));
    }
    for (i, g) in grids.iter().enumerate() {
        if grids[..i].iter().any(|h| h.key == g.key) {
            return Err(Error::Usage(format!(
                "--grid {} is given twice; give each key once with all its values",
                g.key
            )));
        }
    }
    let pick = |choice: &[usize]| -> Vec<(String, String)> {
        grids
            .iter()
            .zip(choice)
            .map(|(g, &i)| (g.key.clone(), g.values[i].clone()))
            .collect()
    };
    if zip {
        let n = grids[0].values.len();
        if let Some(g) = grids.iter().find(|g| g.values.len() != n) {
            return Err(Error::Usage(format!(
                "--zip pairs the lists value by value, so they need equal lengths: {} has {n} \
                 values and {} has {}",
                grids[0].key,
                g.key,
                g.values.len()
            )));
        }
        return Ok((0..n).map(|i| pick(&vec![i; grids.len()])).collect());
    }
    let total: usize = grids.iter().map(|g| g.values.len()).product();
    Ok((0..total)
        .map(|mut p| {
            let mut choice = vec![0; grids.len()];
            for (k, g) in grids.iter().enumerate().rev() {
                choice[k] = p % g.values.len();
                p /= g.values.len();
            }
            pick(&choice)
        })
        .collect())
}

/// What `fokker sweep` was asked to do, before anything is resolved.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    pub scenario: PathBuf,
    /// `--set` for every point (applied before the grid's).
    pub set: Vec<String>,
    /// `--seed` for every point (a `seed` grid key replaces it).
    pub seed: Option<u64>,
    pub grids: Vec<Grid>,
    pub zip: bool,
    pub out: PathBuf,
    /// Shards per point (`--shard-count`).
    pub shards: u64,
}

/// One point of a sweep, as recorded in `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    pub index: u64,
    /// The point's run directory, relative to the sweep directory.
    pub dir: String,
    /// The grid values of this point, by key (TOML values as JSON: numbers stay numbers).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The overrides that make this point from the scenario: `fokker run SCENARIO --set ..
    /// --seed ..` gives the same run.
    pub set: Vec<String>,
    pub seed: Option<u64>,
    pub plan_hash: String,
}

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepIndex {
    pub fokker_version: String,
    /// The base scenario, as given on the command line.
    pub scenario: String,
    pub set: Vec<String>,
    pub seed: Option<u64>,
    pub grid: Vec<Grid>,
    pub zip: bool,
    /// Shards per point: array task `point * shards + shard`.
    pub shards: u64,
    pub points: Vec<PointRecord>,
}

/// A sweep with every point resolved.
pub struct Sweep {
    pub index: SweepIndex,
    pub resolved: Vec<Resolved>,
    pub out: PathBuf,
}

/// The directory name of point `i` of `n`: `p000`, `p001`, ... (at least three digits).
pub fn point_dir(i: u64, n: u64) -> String {
    let width = n.saturating_sub(1).to_string().len().max(3);
    format!("p{i:0width$}")
}

/// The directory of shard `shard` of a point: `shards/<point dir>/shard-NN` in the sweep
/// directory (merged into the point's own directory with `fokker merge`).
pub fn shard_dir(point: &str, shard: u64) -> String {
    format!("shards/{point}/shard-{shard:02}")
}

/// A grid value as TOML (as `--set` reads it: a word that is not a TOML value is a string).
fn toml_value(text: &str) -> toml::Value {
    text.parse::<toml::Value>()
        .unwrap_or_else(|_| toml::Value::String(text.to_string()))
}

/// Resolves every point (nothing is written): a problem in any point is exit 65, listing
/// each distinct problem once.
pub fn resolve(spec: &SweepSpec) -> Result<Sweep> {
    let points = expand(&spec.grids, spec.zip)?;
    let n = points.len() as u64;
    let mut issues: Vec<ScenarioIssue> = Vec::new();
    let mut records = Vec::new();
    let mut resolved = Vec::new();
    for (i, params) in points.iter().enumerate() {
        let mut set = spec.set.clone();
        let mut seed = spec.seed;
        let mut json = serde_json::Map::new();
        for (key, value) in params {
            let as_json = serde_json::to_value(toml_value(value))
                .unwrap_or_else(|_| serde_json::Value::String(value.clone()));
            json.insert(key.clone(), as_json);
            if key == SEED {
                match value.parse::<u64>() {
                    Ok(s) => seed = Some(s),
                    Err(_) => issues.push(ScenarioIssue {
                        key: format!("--grid {SEED}"),
                        value: value.clone(),
                        allowed: "a seed: an integer from 0 to 2^64 - 1".into(),
                    }),
                }
            } else {
                set.push(format!("{key}={value}"));
            }
        }
        match scenario::load(&spec.scenario, &set, seed) {
            Ok(r) => {
                records.push(PointRecord {
                    index: i as u64,
                    dir: point_dir(i as u64, n),
                    params: json,
                    set,
                    seed,
                    plan_hash: r.hash.clone(),
                });
                resolved.push(r);
            }
            Err(Error::Scenario { issues: found, .. }) => issues.extend(found),
            Err(e) => return Err(e),
        }
    }
    if !issues.is_empty() {
        let mut distinct: Vec<ScenarioIssue> = Vec::new();
        for i in issues {
            if !distinct.contains(&i) {
                distinct.push(i);
            }
        }
        return Err(Error::Scenario {
            source_name: format!("{} (sweep)", spec.scenario.display()),
            issues: distinct,
        });
    }
    Ok(Sweep {
        index: SweepIndex {
            fokker_version: VERSION.into(),
            scenario: spec.scenario.display().to_string(),
            set: spec.set.clone(),
            seed: spec.seed,
            grid: spec.grids.clone(),
            zip: spec.zip,
            shards: spec.shards,
            points: records,
        },
        resolved,
        out: spec.out.clone(),
    })
}

/// Which part of a sweep this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Every point in turn (unsharded).
    All,
    /// One shard of one point.
    One { point: u64, shard: u64 },
}

/// The part to run: `--point I` (with `--shard-index J` when points are sharded), else the
/// job-array task `T = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` as point `T / S`, shard
/// `T % S` for S shards per point, else every point. Out of range: exit 2.
pub fn select(
    points: u64,
    shards: u64,
    point: Option<u64>,
    shard_index: Option<u64>,
    task: Option<u64>,
) -> Result<Select> {
    if shards == 0 {
        return Err(Error::Usage("--shard-count must be at least 1".into()));
    }
    let selected = match (point, task) {
        (Some(p), _) => {
            if p >= points {
                return Err(Error::Usage(format!(
                    "--point {p} is out of range: the sweep has {points} points, 0 to {}",
                    points - 1
                )));
            }
            let shard = match shard_index {
                Some(j) => j,
                None if shards == 1 => 0,
                None => {
                    return Err(Error::Usage(format!(
                        "--point {p} with --shard-count {shards}: give --shard-index too"
                    )));
                }
            };
            Select::One { point: p, shard }
        }
        (None, Some(t)) => {
            let tasks = points * shards;
            if t >= tasks {
                return Err(Error::Usage(format!(
                    "array task {t} is out of range: {points} points x {shards} shards are \
                     tasks 0 to {} (--array=0-{})",
                    tasks - 1,
                    tasks - 1
                )));
            }
            Select::One {
                point: t / shards,
                shard: t % shards,
            }
        }
        (None, None) if shards > 1 => {
            return Err(Error::Usage(format!(
                "--shard-count {shards} splits each point over the tasks of a job array: give \
                 --point I --shard-index J, or run as array task point * {shards} + shard"
            )));
        }
        (None, None) => Select::All,
    };
    match selected {
        Select::One { shard, .. } if shard >= shards => Err(Error::Usage(format!(
            "--shard-index {shard} must be below --shard-count {shards}"
        ))),
        _ => Ok(selected),
    }
}

/// Checks the grid and the choice of point (exit 2) and then resolves every point (exit 65):
/// nothing is written.
pub fn plan(
    spec: &SweepSpec,
    point: Option<u64>,
    shard_index: Option<u64>,
    task: Option<u64>,
) -> Result<(Sweep, Select)> {
    let points = expand(&spec.grids, spec.zip)?.len() as u64;
    let selected = select(points, spec.shards, point, shard_index, task)?;
    Ok((resolve(spec)?, selected))
}

/// What happened to one point (or one shard of it).
pub enum Outcome {
    Ran(RunReport),
    Resumed(RunReport),
    AlreadyComplete(PathBuf),
}

/// Writes `sweep.json` (refusing a directory that holds something else) and runs the selected
/// points: a point whose directory holds the same plan complete is skipped, one interrupted
/// (or killed after a checkpoint) is resumed, so running the same command again continues a
/// sweep. `report` is told about each point as it finishes, with its parameters as text.
pub fn run(
    sweep: &Sweep,
    selected: Select,
    opts: &RunOptions,
    report: &mut dyn FnMut(&str, Outcome),
) -> Result<()> {
    write_index(&sweep.out, &sweep.index, opts.force)?;
    let jobs: Vec<(usize, Shard)> = match selected {
        Select::All => (0..sweep.index.points.len())
            .map(|i| (i, Shard::WHOLE))
            .collect(),
        Select::One { point, shard } => vec![(
            point as usize,
            Shard {
                index: shard,
                count: sweep.index.shards,
            },
        )],
    };
    for (i, shard) in jobs {
        let record = &sweep.index.points[i];
        let dir = if shard.count > 1 {
            sweep.out.join(shard_dir(&record.dir, shard.index))
        } else {
            sweep.out.join(&record.dir)
        };
        let opts = RunOptions {
            out: dir.clone(),
            shard,
            ..opts.clone()
        };
        let outcome = match existing(&dir, &record.plan_hash, shard, opts.force) {
            Some(Status::Complete) => Ok(Outcome::AlreadyComplete(dir)),
            Some(_) => super::resume(&dir, &opts).map(Outcome::Resumed),
            None => super::run(&sweep.resolved[i], &opts).map(Outcome::Ran),
        };
        match outcome {
            Ok(o) => report(&sweep.index.params_text(record), o),
            Err(e) => {
                eprintln!(
                    "sweep point {} ({}) stopped: run the same command again to continue the sweep",
                    record.dir,
                    sweep.index.params_text(record)
                );
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The status of a previous run of this very point in `dir` that can be continued: complete,
/// or interrupted / killed with a checkpoint. None for anything else (then `fokker run`
/// decides: an empty or missing directory is used, anything else needs `--force`).
fn existing(dir: &Path, plan_hash: &str, shard: Shard, force: bool) -> Option<Status> {
    if force {
        return None;
    }
    let m: Manifest = read_manifest(dir).ok()?;
    let same_shard = match m.shard {
        Some(s) => s.index == shard.index && s.count == shard.count,
        None => shard.count == 1,
    };
    if m.plan_hash != plan_hash || !same_shard {
        return None;
    }
    match m.status {
        Status::Complete => Some(Status::Complete),
        Status::Interrupted | Status::Running if super::checkpoint::saved_step(dir).is_some() => {
            Some(m.status)
        }
        _ => None,
    }
}

impl SweepIndex {
    /// `key = value, ...` of a point, in the order of the `--grid` flags.
    pub fn params_text(&self, point: &PointRecord) -> String {
        self.grid
            .iter()
            .filter_map(|g| {
                let v = point.params.get(&g.key)?;
                Some(format!("{} = {}", g.key, value_text(v)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A parameter as text: numbers and strings bare, anything else as JSON.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes `out/sweep.json`. A directory that already holds the same sweep (another task of
/// the same array, or a second run of the command) is fine; one that holds another sweep
/// needs `force`; one without a sweep index that holds anything but this sweep's own
/// directories is refused.
fn write_index(out: &Path, index: &SweepIndex, force: bool) -> Result<()> {
    let json = serde_json::to_vec_pretty(index)
        .map_err(|e| Error::Output(format!("cannot serialise {INDEX}: {e}")))?;
    let path = out.join(INDEX);
    match std::fs::read(&path) {
        Ok(old) if old == json || force => {}
        Ok(_) => {
            return Err(Error::Output(format!(
                "{} holds another sweep (its {INDEX} differs from this one's: scenario, \
                 overrides, grid, shards or fokker version); pick another --out, or --force to \
                 replace its points",
                out.display()
            )));
        }
        Err(_) => {
            // Tasks of one array start together: another may have made the directory, its
            // point or shard directories, or be writing sweep.json (a `.tmp-` file) just now.
            let ours = |name: &str| {
                name == "shards"
                    || name.starts_with(".tmp-")
                    || index.points.iter().any(|p| p.dir == name)
            };
            let foreign = std::fs::read_dir(out).ok().and_then(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| !ours(n))
            });
            if let Some(name) = foreign {
                return Err(Error::Output(format!(
                    "{} holds {name} and no {INDEX}; a sweep needs its own directory: pick \
                     another --out",
                    out.display()
                )));
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    output::write_atomic(&path, &json)
}

/// Reads `dir/sweep.json`.
pub fn read_index(dir: &Path) -> Result<SweepIndex> {
    let path = dir.join(INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Data {
        path,
        reason: format!("not a fokker sweep index: {e}"),
    })
}

/// What `--dry-run` prints: every point, its directory, parameters and plan hash.
pub fn dry_run_report(sweep: &Sweep) -> String {
    let i = &sweep.index;
    let mut text = format!(
        "sweep of {} ({} points{}) into {}\n",
        i.scenario,
        i.points.len(),
        if i.shards > 1 {
            format!(
                " x {} shards = array tasks 0-{}",
                i.shards,
                i.points.len() as u64 * i.shards - 1
            )
        } else {
            String::new()
        },
        sweep.out.display()
    );
    for p in &i.points {
        text += &format!(
            "  {}  {}  (plan {})\n",
            p.dir,
            i.params_text(p),
            &p.plan_hash[..12.min(p.plan_hash.len())]
        );
    }
    text
}

/// The last row of a point's metrics.csv: (header, values), as text.
fn last_metrics(dir: &Path) -> Option<(Vec<String>, Vec<String>)> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).ok()?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines.next()?.split(',').map(str::to_string).collect();
    let last: Vec<String> = lines.next_back()?.split(',').map(str::to_string).collect();
    Some((header, last))
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `summary.csv` as a table: the column names and one row per point.
#[derive(Debug, Clone)]
pub struct Summary {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// How many leading columns describe the point (`point`, `dir`, the grid keys,
    /// `status`); the metrics follow.
    pub point_columns: usize,
}

/// Builds the summary of the sweep in `dir`: `point,dir,<grid keys>,status` and then the
/// union of the points' metrics.csv columns (in order of first appearance) with the values
/// of each point's last row, as written there; empty where a point has no such column or no
/// metrics yet.
pub fn summarize(dir: &Path, index: &SweepIndex) -> Result<Summary> {
    let mut columns: Vec<String> = ["point", "dir"].map(String::from).to_vec();
    columns.extend(index.grid.iter().map(|g| g.key.clone()));
    columns.push("status".into());
    let point_columns = columns.len();
    let mut points = Vec::new();
    for p in &index.points {
        let run = dir.join(&p.dir);
        let status = match read_manifest(&run) {
            Ok(m) => serde_json::to_value(m.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            Err(_) => "missing".into(),
        };
        let metrics = last_metrics(&run);
        if let Some((header, _)) = &metrics {
            for h in header {
                if !columns[point_columns..].contains(h) {
                    columns.push(h.clone());
                }
            }
        }
        points.push((p, status, metrics));
    }
    let rows = points
        .into_iter()
        .map(|(p, status, metrics)| {
            let mut row = vec![p.index.to_string(), p.dir.clone()];
            row.extend(
                index
                    .grid
                    .iter()
                    .map(|g| p.params.get(&g.key).map(value_text).unwrap_or_default()),
            );
            row.push(status);
            for c in &columns[point_columns..] {
                let value = metrics.as_ref().and_then(|(h, v)| {
                    let at = h.iter().position(|x| x == c)?;
                    v.get(at).cloned()
                });
                row.push(value.unwrap_or_default());
            }
            row
        })
        .collect();
    Ok(Summary {
        columns,
        rows,
        point_columns,
    })
}

impl Summary {
    pub fn csv(&self) -> String {
        let line = |fields: &[String]| {
            fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        };
        let mut text = line(&self.columns);
        for r in &self.rows {
            text += &line(r);
        }
        text
    }

    /// Draws `metric` against the grid key `against`: one line per combination of the other grid keys' values, points sorted along x.
    pub fn plot(&self, metric: &str, against: &str, grid: &[Grid]) -> Result<image::RgbImage> {
        let metrics: Vec<&str> = self.columns[self.point_columns..]
            .iter()
            .map(String::as_str)
            .collect();
        let keys: Vec<&str> = grid.iter().map(|g| g.key.as_str()).collect();
        let column = |name: &str, among: &[&str], what: &str, flag: &str| -> Result<usize> {
            if among.contains(&name) {
                return Ok(self.columns.iter().position(|c| c == name).unwrap_or(0));
            }
            let hint = match crate::scenario::walk::suggest(name, among) {
                Some(s) => format!("did you mean {s:?}?"),
                None => format!("{what}: {}", among.join(", ")),
            };
            Err(Error::Usage(format!(
                "{flag} {name}: no such {what}; {hint}"
            )))
        };
        let y = column(metric, &metrics, "metric", "--plot")?;
        let x = column(against, &keys, "grid key", "--against")?;
        let others: Vec<usize> = keys
            .iter()
            .filter(|k| **k != against)
            .filter_map(|k| self.columns.iter().position(|c| c == k))
            .collect();
        let mut series: Vec<plot::Series> = Vec::new();
        for row in &self.rows {
            let xv: f64 = row[x].parse().map_err(|_| {
                Error::Usage(format!(
                    "--against {against}: its value {:?} at point {} is not a number",
                    row[x], row[0]
                ))
            })?;
            let Ok(yv) = row[y].parse::<f64>() else {
                continue; // no final metrics yet
            };
            let name = if others.is_empty() {
                metric.to_string()
            } else {
                others
                    .iter()
                    .map(|&o| format!("{} = {}", self.columns[o], row[o]))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((xv, yv)),
                None => series.push(plot::Series {
                    name,
                    points: vec![(xv, yv)],
                    dashed: false,
                }),
            }
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        plot::line_chart(
            &format!("{metric} against {against}"),
            against,
            metric,
            &series,
            false,
        )
    }
}

/// `fokker sweep-summary DIR [--plot METRIC --against PARAM [--out FILE]]`: writes
/// `DIR/summary.csv` and, when asked, the plot (default `DIR/<METRIC>_vs_<PARAM>.png`).
/// Returns the files written.
pub fn summary(dir: &Path, plot: Option<(&str, &str, Option<&Path>)>) -> Result<Vec<PathBuf>> {
    let index = read_index(dir)?;
    let table = summarize(dir, &index)?;
    let mut written = Vec::new();
    // The plot's arguments are checked before anything is written.
    let image = match plot {
        Some((metric, against, out)) => {
            let image = table.plot(metric, against, &index.grid)?;
            let path = out.map_or_else(
                || dir.join(format!("{metric}_vs_{against}.png")),
                Path::to_path_buf,
            );
            Some((path, image))
        }
        None => None,
    };
    let csv = dir.join(SUMMARY);
    output::write_atomic(&csv, table.csv().as_bytes())?;
    written.push(csv);
    if let Some((path, image)) = image {
        output::write_atomic(&path, &output::png_bytes(&image)?)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(text: &str) -> Grid {
        text.parse().unwrap()
    }

    #[test]
    fn grid_values_split_at_top_level_commas_only() {
        let g = grid(r#"particles.init.at=[0.0, 1.0],[1.0,0.0], "a,b" ,{ k = [1,2] }"#);
        assert_eq!(g.key, "particles.init.at");
        assert_eq!(
            g.values,
            ["[0.0, 1.0]", "[1.0,0.0]", "\"a,b\"", "{ k = [1,2] }"]
        );
        for bad in ["novalue", "=1,2", "k=", "k=1,,2"] {
            let e = bad.parse::<Grid>().unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE, "{bad}");
        }
    }

    #[test]
    fn product_varies_the_last_key_fastest_and_zip_pairs() {
        let grids = [grid("a=1,2"), grid("b=x,y,z")];
        let p = expand(&grids, false).unwrap();
        let flat: Vec<String> = p
            .iter()
            .map(|pt| {
                pt.iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join("")
            })
            .collect();
        assert_eq!(flat, ["1x", "1y", "1z", "2x", "2y", "2z"]);
        assert_eq!(p[4][0], ("a".to_string(), "2".to_string()));
        let z = expand(&[grid("a=1,2"), grid("b=x,y")], true).unwrap();
        assert_eq!(z.len(), 2);
        assert_eq!(z[1][1].1, "y");
        assert!(expand(&grids, true).is_err());
        assert!(expand(&[], false).is_err());
        assert!(expand(&[grid("a=1"), grid("a=2")], false).is_err());
    }

    #[test]
    fn array_tasks_are_point_times_shards_plus_shard() {
        // 3 points x 2 shards: tasks 0..6.
        let one = |point, shard| Select::One { point, shard };
        assert_eq!(select(3, 2, None, None, Some(0)).unwrap(), one(0, 0));
        assert_eq!(select(3, 2, None, None, Some(1)).unwrap(), one(0, 1));
        assert_eq!(select(3, 2, None, None, Some(5)).unwrap(), one(2, 1));
        assert!(select(3, 2, None, None, Some(6)).is_err());
        assert_eq!(select(3, 1, None, None, None).unwrap(), Select::All);
        assert!(select(3, 2, None, None, None).is_err());
        // --point wins over the array task; with shards it needs --shard-index.
        assert_eq!(select(3, 1, Some(2), None, Some(0)).unwrap(), one(2, 0));
        assert_eq!(select(3, 2, Some(1), Some(1), None).unwrap(), one(1, 1));
        assert!(select(3, 2, Some(1), None, None).is_err());
        assert!(select(3, 2, Some(1), Some(2), None).is_err());
        assert!(select(3, 1, Some(3), None, None).is_err());
    }

    #[test]
    fn point_and_shard_directories() {
        assert_eq!(point_dir(7, 6), "p007");
        assert_eq!(point_dir(7, 1001), "p0007");
        assert_eq!(shard_dir("p003", 1), "shards/p003/shard-01");
        assert_eq!(csv_field("[1,2]"), "\"[1,2]\"");
        assert_eq!(csv_field(r#"a"b"#), r#""a""b""#);
        assert_eq!(csv_field("0.3"), "0.3");
    }
}
