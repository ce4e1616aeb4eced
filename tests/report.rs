//! report.html end to end: a finished run's page parsed as HTML and loaded in headless
//! chromium (pictures decoded, the slider switching snapshots, user strings shown as text
//! and never run), pages of interrupted and side-by-side runs, and `fokker compare` pairing
//! the snapshots of runs whose dt differ.
//!
//! Chromium is required (Debian: `apt-get install chromium`; `.ci/run` installs it), or the
//! browser named by FOKKER_CHROMIUM: without it the browser test fails, never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fokker(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .env("FOKKER_TEST", "1")
        .output()
        .expect("the fokker binary runs")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A 2D double well with a stationary reference and a GIF: four snapshots, each with a
/// heatmap, a reference picture and a comparison, and the distance plots. Its name and a
/// comment try to inject markup; the comment's script would mark the page if it ran.
const RUN: &str = r#"# <script>document.documentElement.dataset.pwned = "comment"</script>
# <img src="nothing.png" onerror="document.documentElement.dataset.pwned = 'img'">
name = "<script>alert(1)</script>"
seed = 3

[particles]
count = 4000
dim = 2
init = { kind = "point", at = [-1.0, 0.1] }

[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.6
dt = 0.01
t_end = 0.3

[output]
every = 0.1
gif = true
histogram = { axes = [0, 1], bins = [24, 24], range = [[-2.4, 2.4], [-2.4, 2.4]] }
reference = "boltzmann"
"#;

const NAME: &str = "<script>alert(1)</script>";

/// The page parsed by html5ever (the HTML5 parsing algorithm browsers use): it must parse
/// without a single parse error.
fn parse(page: &str) -> scraper::Html {
    let doc = scraper::Html::parse_document(page);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    doc
}

fn select<'a>(doc: &'a scraper::Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&scraper::Selector::parse(css).unwrap())
        .collect()
}

/// Neither the temporary directory nor the working directory is named on the page.
fn names_no_absolute_path(page: &str, tmp: &Path) {
    let mut forms = vec![tmp.display().to_string()];
    forms.extend(tmp.canonicalize().ok().map(|c| c.display().to_string()));
    forms.extend(
        std::env::current_dir()
            .ok()
            .map(|c| c.display().to_string()),
    );
    for f in forms {
        assert!(!page.contains(&f), "the page names {f}");
    }
}

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("FOKKER_CHROMIUM") {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!(
        "no chromium found: the report's browser test needs it (Debian: apt-get install \
         chromium; or set FOKKER_CHROMIUM to a Chrome binary)"
    );
}

/// Headless chromium on a file URL with `args`; scripts get 5 s of virtual time (timers and
/// loads run as fast as they can) before the DOM is dumped or the screenshot taken.
fn browse(page: &Path, args: &[&str], profile: &Path) -> Output {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        o.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A page beside the report that loads it (and a sabotaged copy) in frames, reads what the
/// browser made of them and writes it as JSON into `<pre id="out">` for --dump-dom.
const HARNESS: &str = r#"<!DOCTYPE html><html><body>
<iframe id="good" src="run/report.html" width="1200" height="1600"></iframe>
<iframe id="bad" src="run/sabotaged.html" width="1200" height="1600"></iframe>
<pre id="out">pending</pre>
<script>
const look = (id) => new Promise((done) => {
  const frame = document.getElementById(id);
  const read = () => {
    const out = {};
    try {
      const d = frame.contentDocument;
      out.images = [...d.images].map(i => [i.getAttribute("src"), i.complete, i.naturalWidth,
                                           i.classList.contains("broken")]);
      out.missing = [...d.querySelectorAll("span.missing")].map(s => s.textContent);
      const shown = () => [...d.querySelectorAll(".frame")].filter(f => !f.hidden)
                                                            .map(f => f.dataset.step);
      const slider = d.querySelector("input.snapshots");
      out.before = shown();
      out.label_before = d.getElementById(slider.dataset.label).textContent;
      slider.value = "1";
      slider.dispatchEvent(new Event("input"));
      out.after = shown();
      out.label_after = d.getElementById(slider.dataset.label).textContent;
      out.scripts = d.querySelectorAll("script").length;
      out.h1 = d.querySelector("h1").textContent;
      out.pwned = d.documentElement.dataset.pwned || null;
    } catch (e) { out.error = String(e); }
    done(out);
  };
  if (frame.contentDocument && frame.contentDocument.readyState === "complete") read();
  else frame.addEventListener("load", read);
});
window.addEventListener("load", async () => {
  const out = { good: await look("good"), bad: await look("bad") };
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>
"#;

/// The JSON the harness wrote, from chromium's dump of its DOM.
fn harness_result(dom: &str) -> serde_json::Value {
    let start = dom.find("<pre id=\"out\">").expect("the harness's output") + 14;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn the_report_of_a_finished_run_renders_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), RUN).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    ));
    let run = tmp.path().join("run");
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    names_no_absolute_path(&page, tmp.path());
    let doc = parse(&page);
    // The page's own script is its only script; the name is text in the heading.
    assert_eq!(select(&doc, "script").len(), 1);
    let h1: String = select(&doc, "h1")[0].text().collect();
    assert_eq!(h1, format!("fokker report: {NAME}"));
    let pre: Vec<String> = select(&doc, "pre")
        .iter()
        .map(|p| p.text().collect())
        .collect();
    assert!(
        pre.iter().any(|p| p == RUN),
        "the scenario text is shown as written"
    );
    // Every snapshot's heatmap, reference and comparison, the GIF and both plots, each
    // pointing at a file of the run; links to every density array.
    let srcs: Vec<&str> = select(&doc, "img")
        .iter()
        .map(|i| i.value().attr("src").unwrap())
        .collect();
    let mut expected = Vec::new();
    for step in ["00000000", "00000010", "00000020", "00000030"] {
        for folder in ["density", "reference", "compare"] {
            expected.push(format!("{folder}/{step}.png"));
        }
    }
    expected.extend(["density.gif", "distances.png", "free_energy.png"].map(String::from));
    assert_eq!(srcs, expected);
    for src in &srcs {
        assert!(run.join(src).is_file(), "{src}");
    }
    let hrefs: Vec<&str> = select(&doc, "a")
        .iter()
        .map(|a| a.value().attr("href").unwrap())
        .collect();
    for step in ["00000000", "00000010", "00000020", "00000030"] {
        assert!(hrefs.contains(&format!("density/{step}.npy").as_str()));
        assert!(hrefs.contains(&format!("reference/{step}.npy").as_str()));
    }
    assert!(hrefs.contains(&"scenario.toml") && hrefs.contains(&"metrics.csv"));

    // A sabotaged copy: one picture points at a file that is not there (the browser check
    // must see it broken), and a script the CSP does not allow (it must not run).
    let sabotaged = page
        .replacen("density/00000010.png", "density/gone.png", 1)
        .replacen(
            "</body>",
            "<script>document.documentElement.dataset.pwned = \"csp\"</script></body>",
            1,
        );
    std::fs::write(run.join("sabotaged.html"), sabotaged).unwrap();
    std::fs::write(tmp.path().join("harness.html"), HARNESS).unwrap();
    let profile = tmp.path().join("profile");
    let dom = browse(&tmp.path().join("harness.html"), &["--dump-dom"], &profile);
    let result = harness_result(&String::from_utf8_lossy(&dom.stdout));
    println!("{result:#}");
    let good = &result["good"];
    assert_eq!(good["error"], serde_json::Value::Null, "{good}");
    let images = good["images"].as_array().unwrap();
    assert_eq!(images.len(), expected.len());
    for img in images {
        // Decoded: complete, with the picture's width, not marked broken.
        assert_eq!(img[1], true, "{img}");
        assert!(img[2].as_u64().unwrap() >= 700, "not decoded: {img}");
        assert_eq!(img[3], false, "{img}");
    }
    assert!(good["missing"].as_array().unwrap().is_empty());
    // The last snapshot shows first; the slider at 1 shows the second, and only it.
    assert_eq!(good["before"], serde_json::json!(["30"]));
    assert_eq!(good["label_before"], "t = 0.3, step 30");
    assert_eq!(good["after"], serde_json::json!(["10"]));
    assert_eq!(good["label_after"], "t = 0.1, step 10");
    assert_eq!(good["scripts"], 1);
    assert_eq!(good["h1"], format!("fokker report: {NAME}"));
    assert_eq!(good["pwned"], serde_json::Value::Null);
    let bad = &result["bad"];
    let broken: Vec<&serde_json::Value> = bad["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i[2] == 0)
        .collect();
    assert_eq!(
        broken,
        [&serde_json::json!(["density/gone.png", true, 0, true])]
    );
    assert_eq!(
        bad["missing"],
        serde_json::json!(["missing: density/gone.png"])
    );
    assert_eq!(
        bad["pwned"],
        serde_json::Value::Null,
        "the CSP let a script run"
    );

    // A screenshot, kept for a person to look at.
    let shots = std::env::temp_dir().join("fokker-report-test");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("report.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &run.join("report.html"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600",
        ],
        &profile,
    );
    let image = image::open(&shot)
        .expect("the screenshot is a PNG")
        .to_rgb8();
    assert_eq!(image.dimensions(), (1280, 1600));
    // Not blank: the heatmap's colours are on it (more than a few distinct colours).
    let colours: std::collections::HashSet<[u8; 3]> = image.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 100, "{} colours", colours.len());
    println!("screenshot: {}", shot.display());
}

#[test]
fn interrupted_and_side_by_side_runs_get_reports() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), RUN).unwrap();
    // Stopped at the first stop check, after the first of four slices of particles (a
    // layout flag: results do not change): exit 75, and a page that says so and how to go
    // on.
    let o = Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(["run", "s.toml", "--out", "cut", "--progress", "none"])
        .args(["--slice-particles", "1000"])
        .current_dir(tmp.path())
        .env("FOKKER_TEST_STOP_AT", "1")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = std::fs::read_to_string(tmp.path().join("cut/report.html")).unwrap();
    names_no_absolute_path(&page, tmp.path());
    let doc = parse(&page);
    let status: String = select(&doc, "span.status")[0].text().collect();
    assert_eq!(status, "interrupted");
    let code: Vec<String> = select(&doc, "code")
        .iter()
        .map(|c| c.text().collect())
        .collect();
    assert!(code.contains(&"fokker resume cut".to_string()), "{code:?}");

    ok(&fokker(
        &["resume", "cut", "--progress", "none"],
        tmp.path(),
    ));
    let page = std::fs::read_to_string(tmp.path().join("cut/report.html")).unwrap();
    let status: String = select(&parse(&page), "span.status")[0].text().collect();
    assert_eq!(status, "complete");

    // Regenerated in place: the same bytes; two runs side by side on one page elsewhere,
    // every picture found from the page's folder.
    std::fs::remove_file(tmp.path().join("cut/report.html")).unwrap();
    ok(&fokker(&["report", "cut"], tmp.path()));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("cut/report.html")).unwrap(),
        page
    );
    ok(&fokker(
        &[
            "run",
            "s.toml",
            "--out",
            "other",
            "--progress",
            "none",
            "--seed",
            "4",
        ],
        tmp.path(),
    ));
    let out = ok(&fokker(
        &["report", "cut", "other", "--out", "pages/both.html"],
        tmp.path(),
    ));
    assert!(out.contains("pages/both.html"), "{out}");
    let page = std::fs::read_to_string(tmp.path().join("pages/both.html")).unwrap();
    names_no_absolute_path(&page, tmp.path());
    let doc = parse(&page);
    assert_eq!(select(&doc, "section.run").len(), 2);
    assert_eq!(select(&doc, "input.snapshots").len(), 2);
    let srcs: Vec<String> = select(&doc, "img")
        .iter()
        .map(|i| i.value().attr("src").unwrap().to_string())
        .collect();
    assert_eq!(srcs.len(), 2 * 15);
    for src in &srcs {
        assert!(
            src.starts_with("../cut/") || src.starts_with("../other/"),
            "{src}"
        );
        assert!(tmp.path().join("pages").join(src).is_file(), "{src}");
    }
    // The second run's stored scenario names the seed given on the command line.
    let pre: Vec<String> = select(&doc, "pre")
        .iter()
        .map(|p| p.text().collect())
        .collect();
    assert!(
        pre.iter()
            .any(|p| p.starts_with("# fokker applied --seed 4 to this scenario"))
    );

    // Bad input: a directory that is not a run (exit 74, nothing written), --out a folder.
    let o = fokker(
        &["report", "cut", "nope", "--out", "new/x.html"],
        tmp.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(74),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!tmp.path().join("new").exists());
    let o = fokker(&["report", "cut", "--out", "pages"], tmp.path());
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The double well from a point, on a histogram wide enough to hold every particle: at
/// t = 0 the two runs' histograms are equal (one bin), so tv = 0 there.
const DW: &str = r#"
name = "dw"
seed = 1

[particles]
count = 2000
dim = 2
init = { kind = "point", at = [-1.0, 0.1] }

[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.6
dt = 0.002
t_end = 1.0

[output]
every = 0.25
histogram = { axes = [0, 1], bins = [24, 24], range = [[-3.0, 3.0], [-3.0, 3.0]] }
"#;

#[test]
fn compare_pairs_snapshots_of_runs_whose_dt_differ() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("dw.toml"), DW).unwrap();
    // Twice the dt: every = 0.25 is 62.5 steps of 0.004, rounded to 63, so B's snapshots are
    // at 0, 0.252, 0.504, 0.756 and the end, 1.0.
    std::fs::write(
        tmp.path().join("dw2.toml"),
        DW.replace("dt = 0.002", "dt = 0.004"),
    )
    .unwrap();
    // Snapshots only at 0 and the end.
    std::fs::write(
        tmp.path().join("ends.toml"),
        DW.replace("every = 0.25\n", ""),
    )
    .unwrap();
    for (s, out) in [
        ("dw.toml", "dw"),
        ("dw2.toml", "dw2"),
        ("ends.toml", "ends"),
    ] {
        ok(&fokker(
            &["run", s, "--out", out, "--progress", "none"],
            tmp.path(),
        ));
    }
    let out = ok(&fokker(&["compare", "dw", "dw2"], tmp.path()));
    println!("{out}");
    assert!(
        out.contains(
            "paired 5 of A's 5 and B's 5 snapshots by time (a pair's times differ by \
                      less than half a snapshot interval)"
        ),
        "{out}"
    );
    assert!(
        out.contains("time offsets t_B - t_A: 0, 0.002, 0.004, 0.006, 0\n"),
        "{out}"
    );
    assert!(!out.contains("not paired"), "{out}");
    let csv = std::fs::read_to_string(tmp.path().join("dw2/compare/vs_dw.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "time,step_a,step_b,tv,hellinger,tv_floor,time_b,offset"
    );
    assert_eq!(lines.len(), 6);
    assert!(lines[2].starts_with("0.25,125,63,"), "{csv}");
    let b_times: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(6).unwrap().parse().unwrap())
        .collect();
    let expected = [0.0, 0.252, 0.504, 0.756, 1.0];
    for (t, e) in b_times.iter().zip(expected) {
        // k * 0.004 in f64: within a few ulps of the decimal.
        assert!((t - e).abs() <= 4.0 * f64::EPSILON, "{t} vs {e}");
    }

    // Only 0 and the end pair; B's three middle snapshots are listed with the reason.
    let out = ok(&fokker(
        &["compare", "ends", "dw2", "--out", "c"],
        tmp.path(),
    ));
    println!("{out}");
    assert!(
        out.contains("paired 2 of A's 2 and B's 5 snapshots"),
        "{out}"
    );
    assert!(out.contains("every pair is at the same time"), "{out}");
    for t in ["0.252", "0.504", "0.756"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("not paired: B's snapshot at t = {t}")))
            .unwrap_or_else(|| panic!("t = {t} is not explained: {out}"));
        assert!(
            line.contains("no snapshot of A within half a snapshot interval"),
            "{line}"
        );
    }
    // The t = 0 pair has tv = 0, which the log-scale plot leaves out: each curve is one
    // point, drawn as a marker. The plot area spans x = 96 .. 884 (margin 16 and the y
    // labels' 80 pixels on the left, margin 16 on the right of 900), so a single x sits at
    // its middle, x = 490; the legend is at the upper right, right of x = 600. The total
    // variation curve's colour (0, 114, 178) in the middle band is its marker.
    let png = image::open(tmp.path().join("c/vs_ends.png"))
        .unwrap()
        .to_rgb8();
    let marker = png
        .enumerate_pixels()
        .filter(|(x, _, p)| (440..540).contains(x) && p.0 == [0, 114, 178])
        .count();
    // A filled circle of radius 3: at least its 3 x 3 core.
    assert!(marker >= 9, "{marker} marker pixels");
}

#[test]
fn diverged_and_merged_runs_get_reports() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), RUN).unwrap();
    // dt = 0.5 in the double well: x -> x - dt U'(x) has slope 1 - 0.5 U''(-1) = -3 at the
    // well, so the particles blow up within a few steps: exit 3, a page that says diverged.
    let o = fokker(
        &[
            "run",
            "s.toml",
            "--out",
            "bad",
            "--progress",
            "none",
            "--set",
            "dynamics.dt=0.5",
            "--set",
            "dynamics.t_end=50",
            "--set",
            "output.every=10",
        ],
        tmp.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = std::fs::read_to_string(tmp.path().join("bad/report.html")).unwrap();
    let doc = parse(&page);
    let status: String = select(&doc, "span.status")[0].text().collect();
    assert_eq!(status, "diverged");

    // Two shards merged by their absolute paths: the page names them by their names only.
    for i in ["0", "1"] {
        ok(&fokker(
            &[
                "run",
                "s.toml",
                "--out",
                &format!("s{i}"),
                "--progress",
                "none",
                "--shard-index",
                i,
                "--shard-count",
                "2",
            ],
            tmp.path(),
        ));
    }
    let abs = |d: &str| tmp.path().join(d).display().to_string();
    ok(&fokker(
        &["merge", "merged", &abs("s0"), &abs("s1")],
        tmp.path(),
    ));
    let page = std::fs::read_to_string(tmp.path().join("merged/report.html")).unwrap();
    names_no_absolute_path(&page, tmp.path());
    let doc = parse(&page);
    let rows: Vec<String> = select(&doc, "tr")
        .iter()
        .map(|r| r.text().collect())
        .collect();
    assert!(rows.contains(&"merged froms0, s1".to_string()), "{rows:?}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("merged/scenario.toml")).unwrap(),
        RUN
    );
    assert_eq!(select(&doc, "img").len(), 15);
}
