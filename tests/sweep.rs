//! `fokker sweep`, `sweep-summary` and `status` through the binary: every point of a sweep is
//! the plain run with the same --set / --seed, byte for byte; the summary holds the points'
//! last metrics rows; bad input writes nothing; status reads complete and interrupted runs.

use std::path::Path;
use std::process::{Command, Output};

fn fokker_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fokker"));
    c.args(args).current_dir(cwd);
    for (k, v) in env {
        c.env(k, v);
    }
    // A sweep reads its array task from Slurm's variables: keep the test's own out of it.
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_COUNT",
    ] {
        if !env.iter().any(|(e, _)| e == &k) {
            c.env_remove(k);
        }
    }
    c.output().expect("the fokker binary runs")
}

fn fokker(args: &[&str], cwd: &Path) -> Output {
    fokker_env(args, cwd, &[])
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("json")
}

/// 3000 particles, 20 steps, a Boltzmann reference (so metrics.csv has tv and friends).
const SCENARIO: &str = r#"
seed = 3
[particles]
count = 3000
dim = 2
init = { kind = "gaussian", mean = [0.0, 0.0], std = 0.3 }
[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.8
dt = 1e-2
steps = 20
[output]
every = 0.1
histogram = { bins = [16, 16], range = [[-2.0, 2.0], [-2.0, 2.0]] }
particles = "final"
gif = false
reference = "boltzmann"
"#;

/// Every file of run `a` other than the manifest (which records timings and the adapter) and
/// report.html (which shows them), relative to it, sorted.
fn files(a: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![a.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !["manifest.json", "report.html"]
                .contains(&p.file_name().unwrap().to_str().unwrap())
            {
                out.push(p.strip_prefix(a).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn assert_same_run(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(
        fa,
        fb,
        "{} and {} hold different files",
        a.display(),
        b.display()
    );
    // density (npy, png) x 3 snapshots, reference x 3, compare x 3, particles, metrics, plots
    assert!(fa.len() >= 12, "{fa:?}");
    for f in &fa {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    let (ma, mb) = (
        json(&a.join("manifest.json")),
        json(&b.join("manifest.json")),
    );
    assert_eq!(ma["plan_hash"], mb["plan_hash"]);
    assert_eq!(ma["status"], "complete");
}

/// Splits a CSV line written by sweep-summary (fields quoted when they hold a comma).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[test]
fn a_3x2_sweep_equals_plain_runs_and_its_summary_holds_their_last_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("s.toml"), SCENARIO).unwrap();
    let sweep = [
        "sweep",
        "s.toml",
        "--grid",
        "dynamics.temperature=0.3,0.6,1.0",
        "--grid",
        "seed=1,2",
        "--out",
        "t",
        "--progress",
        "none",
        // Many small submissions (results do not change), so that the test hook below lands
        // inside the first point's second segment.
        "--slice-particles",
        "500",
    ];
    // Interrupted in its first point (the test hook, as a signal would): exit 75, and the
    // same command again resumes that point and runs the others.
    let o = fokker_env(&sweep, dir, &[("FOKKER_TEST_STOP_AT", "8")]);
    assert_eq!(o.status.code(), Some(75), "{}", text(&o));
    assert!(
        text(&o).contains("sweep point p000 (dynamics.temperature = 0.3, seed = 1) stopped"),
        "{}",
        text(&o)
    );
    assert_eq!(
        json(&dir.join("t/p000/manifest.json"))["status"],
        "interrupted"
    );
    assert!(!dir.join("t/p001").exists());
    // A summary of the sweep so far: the interrupted point's last metrics row, the others
    // missing with empty metrics.
    let o = fokker(&["sweep-summary", "t"], dir);
    assert!(o.status.success(), "{}", text(&o));
    let partial = std::fs::read_to_string(dir.join("t/summary.csv")).unwrap();
    let rows: Vec<Vec<String>> = partial.lines().skip(1).map(csv_fields).collect();
    assert_eq!(rows.len(), 6, "{partial}");
    let metrics = std::fs::read_to_string(dir.join("t/p000/metrics.csv")).unwrap();
    let last = metrics.lines().last().unwrap();
    assert_eq!(rows[0][4], "interrupted");
    assert_eq!(rows[0][5..].join(","), last, "{partial}");
    for row in &rows[1..] {
        assert_eq!(row[4], "missing");
        assert!(row[5..].iter().all(String::is_empty), "{row:?}");
    }
    let o = fokker(&sweep, dir);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed, wrote t/p000"), "{}", text(&o));

    // The index: the product, the first --grid varying slowest.
    let index = json(&dir.join("t/sweep.json"));
    let points = index["points"].as_array().unwrap();
    let expected = [
        ("0.3", 1),
        ("0.3", 2),
        ("0.6", 1),
        ("0.6", 2),
        ("1.0", 1),
        ("1.0", 2),
    ];
    assert_eq!(points.len(), expected.len());
    assert_eq!(index["scenario"], "s.toml");
    for (i, (p, (t, seed))) in points.iter().zip(expected).enumerate() {
        assert_eq!(p["index"], i);
        assert_eq!(p["dir"], format!("p{i:03}"));
        assert_eq!(p["params"]["seed"], seed);
        assert_eq!(
            p["params"]["dynamics.temperature"].as_f64().unwrap(),
            t.parse::<f64>().unwrap()
        );
        assert_eq!(
            p["set"],
            serde_json::json!([format!("dynamics.temperature={t}")])
        );
        assert_eq!(p["seed"], seed);
        // Each point is exactly the plain run with the same --set and --seed.
        let plain = format!("plain-{i}");
        let seed = seed.to_string();
        let set = format!("dynamics.temperature={t}");
        let o = fokker(
            &[
                "run",
                "s.toml",
                "--set",
                &set,
                "--seed",
                &seed,
                "--out",
                &plain,
                "--progress",
                "none",
            ],
            dir,
        );
        assert!(o.status.success(), "{}", text(&o));
        assert_same_run(&dir.join(format!("t/p{i:03}")), &dir.join(&plain));
        assert_eq!(
            p["plan_hash"],
            json(&dir.join(&plain).join("manifest.json"))["plan_hash"]
        );
    }

    // The same command again continues the sweep: every point is already complete.
    let o = fokker(&sweep, dir);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        text(&o).matches("is already complete").count(),
        6,
        "{}",
        text(&o)
    );

    // summary.csv: one row per point, its parameters, and its metrics.csv's last row.
    let o = fokker(
        &[
            "sweep-summary",
            "t",
            "--plot",
            "tv",
            "--against",
            "dynamics.temperature",
        ],
        dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let summary = std::fs::read_to_string(dir.join("t/summary.csv")).unwrap();
    let mut lines = summary.lines();
    let header = csv_fields(lines.next().unwrap());
    assert_eq!(
        header[..5],
        ["point", "dir", "dynamics.temperature", "seed", "status"].map(String::from)
    );
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(rows.len(), 6);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[0], i.to_string());
        assert_eq!(row[2], expected[i].0);
        assert_eq!(row[3], expected[i].1.to_string());
        assert_eq!(row[4], "complete");
        let metrics = std::fs::read_to_string(dir.join(format!("t/p{i:03}/metrics.csv"))).unwrap();
        let mut m = metrics.lines();
        let names: Vec<&str> = m.next().unwrap().split(',').collect();
        let last: Vec<&str> = m.last().unwrap().split(',').collect();
        // Every metrics column is in the summary, with the last row's value as written.
        assert_eq!(
            header[5..],
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        for (name, value) in names.iter().zip(&last) {
            let at = header.iter().position(|h| h == name).unwrap();
            assert_eq!(&row[at], value, "point {i}, column {name}");
        }
        for must in ["step", "time", "mean_0", "cov_1_1", "tv", "tv_floor"] {
            assert!(names.contains(&must), "{names:?}");
        }
    }
    let png = std::fs::read(dir.join("t/tv_vs_dynamics.temperature.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // A plot of a column that does not exist: exit 2, with the nearest one.
    let o = fokker(
        &["sweep-summary", "t", "--plot", "tvv", "--against", "seed"],
        dir,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("did you mean \"tv\""), "{}", text(&o));

    // fokker status on the sweep directory: one line per point, all complete.
    let o = fokker(&["status", "t"], dir);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(out.lines().count(), 6, "{out}");
    for (i, line) in out.lines().enumerate() {
        assert!(line.starts_with(&format!("t/p{i:03} ")), "{line}");
        assert!(
            line.contains("complete") && line.contains("step 20/20 (100%)"),
            "{line}"
        );
        assert!(
            line.contains("t = 0.2000") && line.contains("particle-steps/s"),
            "{line}"
        );
        assert!(!line.contains("resume"), "{line}");
    }
}

/// Bad input: exit 65 for a key or value a point's scenario refuses, exit 2 for an empty grid,
/// a point or array task out of range, unequal --zip lists; nothing is written in any case.
#[test]
fn bad_sweep_input_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("s.toml"), SCENARIO).unwrap();
    let grid = [
        "--grid",
        "dynamics.temperature=0.3,0.6,1.0",
        "--grid",
        "seed=1,2",
    ];
    // (extra flags, environment, exit code, message)
    type Case<'a> = (Vec<&'a str>, &'a [(&'a str, &'a str)], i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--grid", "dynamics.temprature=0.3,0.6"],
            &[],
            65,
            "dynamics.temprature = 0.3: unknown key; did you mean \"temperature\"?",
        ),
        (
            vec!["--grid", "dynamics.temperature=0.3,hot"],
            &[],
            65,
            "dynamics.temperature = \"hot\": a finite number >= 0",
        ),
        (
            vec!["--grid", "particles.count=1000,many"],
            &[],
            65,
            "particles.count = \"many\": an integer >= 1",
        ),
        (
            vec!["--grid", "seed=1,-2"],
            &[],
            65,
            "--grid seed = -2: a seed: an integer from 0 to 2^64 - 1",
        ),
        (vec![], &[], 2, "the grid is empty"),
        (
            vec!["--grid", "dynamics.temperature="],
            &[],
            2,
            "a value is empty",
        ),
        (
            [&grid[..], &["--point", "6"]].concat(),
            &[],
            2,
            "--point 6 is out of range: the sweep has 6 points, 0 to 5",
        ),
        (
            grid.to_vec(),
            &[("SLURM_ARRAY_TASK_ID", "12"), ("SLURM_ARRAY_TASK_MIN", "0")],
            2,
            "array task 12 is out of range: 6 points x 1 shards are tasks 0 to 5",
        ),
        (
            [&grid[..], &["--zip"]].concat(),
            &[],
            2,
            "dynamics.temperature has 3 values and seed has 2",
        ),
        (
            [&grid[..], &["--shard-count", "2"]].concat(),
            &[],
            2,
            "--shard-count 2 splits each point over the tasks of a job array",
        ),
    ];
    for (extra, env, code, message) in cases {
        let args = [
            &["sweep", "s.toml", "--out", "bad", "--progress", "none"][..],
            &extra,
        ]
        .concat();
        let o = fokker_env(&args, dir, env);
        assert_eq!(o.status.code(), Some(code), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(message), "{extra:?}: {}", text(&o));
        assert!(!dir.join("bad").exists(), "{extra:?} wrote bad/");
    }
    // A directory that holds something else is not taken over.
    std::fs::create_dir(dir.join("mine")).unwrap();
    std::fs::write(dir.join("mine/notes.txt"), "keep").unwrap();
    let o = fokker(
        &[
            &["sweep", "s.toml", "--out", "mine", "--dry-run"][..],
            &grid,
        ]
        .concat(),
        dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("p005  dynamics.temperature = 1.0, seed = 2"),
        "{}",
        text(&o)
    );
    let o = fokker(
        &[&["sweep", "s.toml", "--out", "mine"][..], &grid].concat(),
        dir,
    );
    assert_eq!(o.status.code(), Some(74), "{}", text(&o));
    assert!(
        text(&o).contains("holds notes.txt and no sweep.json"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_dir(dir.join("mine")).unwrap().count(), 1);
}

/// `fokker status` on a complete run and an interrupted one (stopped by the test hook after
/// its second submission): progress from the manifest and the checkpoint, the resume command,
/// and the same in JSON; the printed command then finishes the run.
#[test]
fn status_reports_complete_and_interrupted_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("s.toml"), SCENARIO).unwrap();
    let o = fokker(
        &["run", "s.toml", "--out", "done", "--progress", "none"],
        dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = fokker_env(
        &[
            "run",
            "s.toml",
            "--out",
            "cut",
            "--progress",
            "none",
            "--slice-particles",
            "500",
        ],
        dir,
        &[("FOKKER_TEST_STOP_AT", "8")],
    );
    assert_eq!(o.status.code(), Some(75), "{}", text(&o));

    let o = fokker(&["status", "done", "cut"], dir);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("done ") && lines[0].contains("complete"),
        "{out}"
    );
    assert!(lines[0].contains("step 20/20 (100%)  t = 0.2000"), "{out}");
    assert!(
        lines[1].starts_with("cut ") && lines[1].contains("interrupted"),
        "{out}"
    );
    assert!(lines[1].ends_with("resume: fokker resume cut"), "{out}");

    let o = fokker(&["status", "--json", "done", "cut"], dir);
    assert!(o.status.success(), "{}", text(&o));
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (done, cut) = (&runs[0], &runs[1]);
    let md = json(&dir.join("done/manifest.json"));
    assert_eq!(done["status"], "complete");
    assert_eq!(
        (done["step"].as_u64(), done["steps"].as_u64()),
        (Some(20), Some(20))
    );
    assert_eq!(done["snapshots"], 3);
    assert_eq!(done["time"], md["snapshots"][2]["time"]);
    assert_eq!(
        done["particle_steps_per_second"],
        md["timings"]["particle_steps_per_second"]
    );
    assert!(done["resume"].is_null() && done["checkpoint"] == false);
    // The interrupted run: its step is the checkpoint's, its time the last snapshot's.
    let mc = json(&dir.join("cut/manifest.json"));
    let point = json(&dir.join("cut/checkpoint/point.json"));
    assert_eq!(cut["status"], "interrupted");
    assert_eq!(cut["step"], point["point"]["step"]);
    assert_eq!(cut["steps"], 20);
    let snapshots = mc["snapshots"].as_array().unwrap();
    assert_eq!(cut["snapshots"], snapshots.len());
    assert_eq!(
        cut["time"],
        snapshots
            .last()
            .map_or(serde_json::Value::Null, |s| s["time"].clone())
    );
    assert_eq!(cut["checkpoint"], true);
    assert_eq!(cut["resume"], "fokker resume cut");

    // The printed command finishes the run.
    let cmd = cut["resume"].as_str().unwrap();
    let words: Vec<&str> = cmd.split(' ').skip(1).collect();
    let o = fokker(&[&words[..], &["--progress", "none"]].concat(), dir);
    assert!(o.status.success(), "{}", text(&o));
    let o = fokker(&["status", "cut"], dir);
    assert!(String::from_utf8_lossy(&o.stdout).contains("complete     step 20/20 (100%)"));

    // Not a run and no run below it: exit 74, naming the path.
    std::fs::create_dir(dir.join("empty")).unwrap();
    let o = fokker(&["status", "empty"], dir);
    assert_eq!(o.status.code(), Some(74), "{}", text(&o));
    assert!(text(&o).contains("empty/manifest.json"), "{}", text(&o));
}

/// `--point I` runs that point alone; an array task T of P points x S shards runs shard
/// T mod S of point T / S into shards/pNNN/shard-NN, with the point's plan.
#[test]
fn one_point_or_one_array_task_runs_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("s.toml"), SCENARIO).unwrap();
    let base = [
        "sweep",
        "s.toml",
        "--grid",
        "dynamics.temperature=0.3,0.6",
        "--progress",
        "none",
    ];
    let o = fokker(
        &[&base[..], &["--out", "one", "--point", "1"]].concat(),
        dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.join("one/p001/manifest.json").is_file() && !dir.join("one/p000").exists());
    let index = json(&dir.join("one/sweep.json"));
    assert_eq!(
        json(&dir.join("one/p001/manifest.json"))["plan_hash"],
        index["points"][1]["plan_hash"]
    );

    // Task 3 of 2 points x 2 shards: point 1, shard 1 (task ids counted from the array's min).
    let o = fokker_env(
        &[&base[..], &["--out", "arr", "--shard-count", "2"]].concat(),
        dir,
        &[
            ("SLURM_ARRAY_TASK_ID", "13"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let shard = dir.join("arr/shards/p001/shard-01");
    let m = json(&shard.join("manifest.json"));
    assert_eq!(
        (m["shard"]["index"].as_u64(), m["shard"]["count"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(m["plan_hash"], index["points"][1]["plan_hash"]);
    let index = json(&dir.join("arr/sweep.json"));
    assert_eq!(index["shards"], 2);
    let made: Vec<_> = std::fs::read_dir(dir.join("arr"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(made.len(), 2, "{made:?}"); // shards/ and sweep.json
    let o = fokker(&["status", "arr"], dir);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.starts_with("arr/shards/p001/shard-01  complete") && out.contains("shard 1/2"),
        "{out}"
    );
}
