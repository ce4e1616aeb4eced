//! `report.html`: one page per run directory that shows what the run wrote (README, "Output
//! contract"): the scenario text and resolved plan, adapter, timings and status, every
//! snapshot's pictures behind a slider, the plots, and links to the arrays. Several runs can
//! share one page, side by side (`fokker report DIR... --out FILE`).
//!
//! The page is self-contained: images are `<img src>` paths relative to the page (a run's own
//! page uses paths inside the run directory, so the directory can be moved or copied), with no
//! network, CDN or font. Every string that comes from the user or the file system (scenario
//! name and text, paths, keys, values, error messages) is HTML-escaped, and a
//! Content-Security-Policy allows only the page's own inline script and style (by their
//! sha256), so even an escaping mistake could not run injected script. No absolute path of
//! the machine is written: input files and merged shards are named by their file names, and
//! absolute paths in the plan and error message are shortened the same way.

use super::manifest::{Manifest, ReferenceRecord, SnapshotRecord, Status};
use super::read_manifest;
use crate::error::{Error, Result};
use crate::output;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

/// The report's file name in a run directory.
pub const FILE: &str = "report.html";

/// The page's only script: each run's slider shows one snapshot's pictures (its `.frame`) and
/// hides the others; an image that fails to load (its `error` event, or already failed when
/// the script runs) is marked `broken` and labelled, so a missing picture is visible as such.
/// (Testing `naturalWidth` at the window's `load` raced with decoding under load: a picture
/// that rendered was once marked broken.)
const SCRIPT: &str = r#"
for (const slider of document.querySelectorAll("input.snapshots")) {
  const frames = document.getElementById(slider.dataset.frames).children;
  const label = document.getElementById(slider.dataset.label);
  const show = () => {
    const k = Number(slider.value);
    for (let i = 0; i < frames.length; i++) frames[i].hidden = i !== k;
    label.textContent = frames[k].dataset.caption;
  };
  slider.addEventListener("input", show);
  show();
}
const broken = (img) => {
  if (img.classList.contains("broken")) return;
  img.classList.add("broken");
  const note = document.createElement("span");
  note.className = "missing";
  note.textContent = "missing: " + img.getAttribute("src");
  img.after(note);
};
for (const img of document.images) {
  img.addEventListener("error", () => broken(img));
  // Failed before this script ran: complete, yet nothing decoded.
  if (img.complete && img.naturalWidth === 0) broken(img);
}
"#;

const STYLE: &str = r#"
body { font-family: sans-serif; margin: 1em; color: #222; }
.runs { display: flex; gap: 2em; align-items: flex-start; }
.run { flex: 1 1 0; min-width: 0; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.15em 0.5em; text-align: left; vertical-align: top; }
pre { background: #f6f6f6; padding: 0.5em; overflow: auto; max-height: 30em; }
img { max-width: 100%; height: auto; }
.frame { display: flex; flex-wrap: wrap; gap: 0.5em; align-items: flex-start; }
.frame[hidden] { display: none; }
.frame img { max-width: calc(50% - 0.5em); }
.frame img.wide { max-width: 100%; }
.status { font-weight: bold; }
.status-complete { color: #060; }
.status-running, .status-interrupted { color: #850; }
.status-diverged, .status-failed { color: #a00; }
.missing { color: #a00; }
.slider input { width: 100%; }
"#;

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

/// A relative path as a URL path (each segment percent-encoded, `/` between), escaped for an
/// attribute.
fn href(rel: &Path) -> String {
    let segments: Vec<String> = rel
        .components()
        .map(|c| match c {
            Component::ParentDir => "..".to_string(),
            Component::CurDir => ".".to_string(),
            c => c
                .as_os_str()
                .to_string_lossy()
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    b => format!("%{b:02X}"),
                })
                .collect(),
        })
        .collect();
    escape(&segments.join("/"))
}

/// `to` relative to the directory `from` (both made absolute first).
fn relative(from: &Path, to: &Path) -> Result<PathBuf> {
    let abs = |p: &Path| p.canonicalize().map_err(|e| Error::io(p, e));
    let (from, to) = (abs(from)?, abs(to)?);
    let (f, t): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..f.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    Ok(rel)
}

/// The last component of a path as written (a file or directory name).
fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The plan as pretty JSON with every absolute path shortened to its file name.
fn plan_json(m: &Manifest) -> String {
    fn shorten(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if Path::new(s.as_str()).is_absolute() => {
                *s = file_name(s);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(shorten),
            serde_json::Value::Object(o) => o.values_mut().for_each(shorten),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(&m.plan).unwrap_or(serde_json::Value::Null);
    shorten(&mut v);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// Text with every absolute path to `dir` replaced by the directory's name.
fn without_dir(text: &str, dir: &Path) -> String {
    let name = dir
        .file_name()
        .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned());
    let mut forms = vec![dir.display().to_string()];
    if let Ok(c) = dir.canonicalize() {
        forms.push(c.display().to_string());
    }
    forms
        .iter()
        .filter(|f| Path::new(f).is_absolute())
        .fold(text.to_string(), |t, f| t.replace(f.as_str(), &name))
}

/// Text with every absolute path in it (a word starting with `/`, after any opening quote or
/// bracket, up to closing punctuation) replaced by its last component.
fn shorten_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (k, word) in text.split(' ').enumerate() {
        if k > 0 {
            out.push(' ');
        }
        let start = word.trim_start_matches(['`', '\'', '"', '(', '[', '<']);
        let lead = &word[..word.len() - start.len()];
        let path = start.trim_end_matches(['`', '\'', '"', ')', ']', '>', ':', ',', ';', '.']);
        let tail = &start[path.len()..];
        match Path::new(path).file_name() {
            Some(name) if path.starts_with('/') => {
                out.push_str(lead);
                out.push_str(&name.to_string_lossy());
                out.push_str(tail);
            }
            _ => out.push_str(word),
        }
    }
    out
}

fn sha256_source(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// One run as it appears on a page: its directory and the page's path to it.
struct RunView<'a> {
    dir: &'a Path,
    /// The run directory relative to the page's directory ("" for the run's own page).
    base: PathBuf,
    manifest: Manifest,
    /// Position on the page, for element ids.
    index: usize,
}

impl RunView<'_> {
    fn exists(&self, rel: &str) -> bool {
        self.dir.join(rel).is_file()
    }

    fn src(&self, rel: &str) -> String {
        href(&self.base.join(rel))
    }

    /// A picture, or a note that it is not there.
    fn img(&self, rel: &str, alt: &str) -> String {
        self.img_class(rel, alt, "")
    }

    /// [`Self::img`] with a class attribute (none when empty).
    fn img_class(&self, rel: &str, alt: &str, class: &str) -> String {
        let class = if class.is_empty() {
            String::new()
        } else {
            format!(" class=\"{class}\"")
        };
        if self.exists(rel) {
            format!(
                "<img src=\"{}\" alt=\"{}\"{class}>",
                self.src(rel),
                escape(alt)
            )
        } else {
            format!("<p class=\"missing\">not written: {}</p>", escape(rel))
        }
    }

    /// A link to a file of the run, when it exists.
    fn link(&self, rel: &str) -> String {
        if self.exists(rel) {
            format!("<a href=\"{}\">{}</a>", self.src(rel), escape(rel))
        } else {
            String::new()
        }
    }

    fn name(&self) -> String {
        self.dir
            .file_name()
            .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())
    }
}

fn row(html: &mut String, key: &str, value: &str) {
    let _ = writeln!(
        html,
        "<tr><th>{}</th><td>{}</td></tr>",
        escape(key),
        escape(value)
    );
}

fn summary(html: &mut String, v: &RunView<'_>) {
    let m = &v.manifest;
    let status = m.status.name();
    let _ = writeln!(
        html,
        "<p>status: <span class=\"status status-{status}\">{status}</span></p>"
    );
    if let Some(e) = &m.error {
        let _ = writeln!(
            html,
            "<pre>{}</pre>",
            escape(&shorten_paths(&without_dir(e, v.dir)))
        );
    }
    if m.status == Status::Interrupted {
        let _ = writeln!(
            html,
            "<p>continue it with <code>fokker resume {}</code></p>",
            escape(&v.name())
        );
    }
    let plan = &m.plan;
    let steps = plan.dynamics.steps();
    html.push_str("<table>\n");
    row(html, "dynamics", plan.dynamics.kind_name());
    row(
        html,
        "particles",
        &format!("{} in dim {}", plan.particles.count, plan.particles.dim),
    );
    row(html, "steps", &steps.to_string());
    let last = m.snapshots.last();
    row(
        html,
        "snapshots",
        &format!(
            "{} written, the last at step {} of {steps}",
            m.snapshots.len(),
            last.map_or(0, |s| s.step),
        ),
    );
    row(html, "seed", &m.seed.to_string());
    row(html, "plan hash", &m.plan_hash);
    row(
        html,
        "fokker",
        &format!("{} ({})", m.fokker_version, m.git_revision),
    );
    let a = &m.adapter;
    row(
        html,
        "adapter",
        &format!(
            "{} ({}, {:?}; {} {})",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        ),
    );
    if !m.devices.is_empty() {
        let ranges: Vec<String> = m
            .devices
            .iter()
            .map(|d| {
                format!(
                    "{} .. {} on {} (index {})",
                    d.first,
                    d.first + d.particles,
                    d.adapter.name,
                    d.adapter.index
                )
            })
            .collect();
        row(html, "devices", &ranges.join("; "));
    }
    if let Some(s) = &m.shard {
        row(
            html,
            "shard",
            &format!(
                "{} of {}: particles {} .. {}",
                s.index,
                s.count,
                s.first,
                s.first + s.particles
            ),
        );
    }
    if !m.merged_from.is_empty() {
        let names: Vec<String> = m.merged_from.iter().map(|d| file_name(d)).collect();
        row(html, "merged from", &names.join(", "));
    }
    for input in &m.inputs {
        row(
            html,
            "input",
            &format!("{} (sha256 {})", file_name(&input.path), input.sha256),
        );
    }
    // Its own class: the one part of a page that differs between identical runs (tests
    // comparing runs leave it out).
    html.push_str("</table>\n<h3>Timings</h3>\n<table class=\"timings\">\n");
    let t = &m.timings;
    for (k, s) in [
        ("wall", t.wall_seconds),
        ("initialisation", t.init_seconds),
        ("stepping", t.stepping_seconds),
        ("observing", t.observe_seconds),
        ("writing", t.write_seconds),
        ("references", t.reference_seconds),
    ] {
        row(html, k, &format!("{s:.3} s"));
    }
    row(
        html,
        "throughput",
        &format!("{:.4e} particle-steps/s", t.particle_steps_per_second),
    );
    if let Some(i) = t.interactions_per_second {
        row(html, "kernel evaluations", &format!("{i:.4e} /s"));
    }
    for (k, s) in [
        ("GPU stepping", t.gpu_stepping_seconds),
        ("GPU observing", t.gpu_observe_seconds),
    ] {
        if let Some(s) = s {
            row(html, k, &format!("{s:.3} s"));
        }
    }
    html.push_str("</table>\n");
}

/// The pictures of one snapshot: heatmap, reference and comparison, marginals.
fn frame(html: &mut String, v: &RunView<'_>, s: &SnapshotRecord) {
    let caption = format!("t = {}, step {}", s.time, s.step);
    let _ = writeln!(
        html,
        "<div class=\"frame\" data-step=\"{}\" data-caption=\"{}\">",
        s.step,
        escape(&caption)
    );
    html.push_str(&v.img(&s.heatmap, &format!("density at {caption}")));
    let reference = |html: &mut String, r: &ReferenceRecord| {
        html.push_str(&v.img(&r.heatmap, &format!("reference at {caption}")));
        html.push_str(&v.img_class(
            &r.compare,
            &format!("particles, reference, difference at {caption}"),
            "wide",
        ));
    };
    if let Some(r) = &s.reference {
        reference(html, r);
    }
    for m in &s.marginals {
        html.push_str(&v.img(&m.heatmap, &format!("marginal at {caption}")));
        if let Some(r) = &m.reference {
            reference(html, r);
        }
    }
    html.push_str("</div>\n");
}

fn snapshots(html: &mut String, v: &RunView<'_>) {
    let m = &v.manifest;
    html.push_str("<h3>Snapshots</h3>\n");
    if m.snapshots.is_empty() {
        html.push_str("<p>none written</p>\n");
        return;
    }
    let (frames, label) = (format!("frames-{}", v.index), format!("label-{}", v.index));
    let last = m.snapshots.len() - 1;
    let _ = writeln!(
        html,
        "<div class=\"slider\"><input type=\"range\" class=\"snapshots\" min=\"0\" max=\"{last}\" \
         value=\"{last}\" step=\"1\" data-frames=\"{frames}\" data-label=\"{label}\" \
         aria-label=\"snapshot\"> <span id=\"{label}\"></span></div>\n<div id=\"{frames}\">"
    );
    for s in &m.snapshots {
        frame(html, v, s);
    }
    html.push_str("</div>\n");
    if let Some(gif) = &m.gif {
        let _ = writeln!(
            html,
            "<details><summary>animation</summary>{}</details>",
            v.img(gif, "the heatmaps as an animation")
        );
    }
    html.push_str(
        "<table>\n<tr><th>step</th><th>time</th><th>in range</th><th>outside</th>\
         <th>non-finite</th><th>mean</th><th>tv to reference</th><th>files</th></tr>\n",
    );
    for s in &m.snapshots {
        let h = &s.histogram;
        let mean: Vec<String> = s.moments.mean.iter().map(|x| format!("{x:.4}")).collect();
        let tv = s
            .reference
            .as_ref()
            .and_then(|r| r.tv)
            .map_or_else(String::new, |tv| format!("{tv:.4}"));
        let mut files = vec![v.link(&s.density)];
        files.extend(s.particles.iter().map(|p| v.link(p)));
        files.extend(s.velocities.iter().map(|p| v.link(p)));
        files.extend(s.reference.iter().map(|r| v.link(&r.density)));
        files.extend(s.marginals.iter().map(|m| v.link(&m.density)));
        files.retain(|f| !f.is_empty());
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            s.step,
            s.time,
            h.in_range,
            h.outside,
            h.nonfinite,
            escape(&mean.join(", ")),
            tv,
            files.join(" ")
        );
    }
    html.push_str("</table>\n");
}

fn plots(html: &mut String, v: &RunView<'_>) {
    let m = &v.manifest;
    let mut pictures: Vec<String> = m.plots.clone();
    pictures.extend(m.mmd_plot.clone());
    if m.trajectories.is_some() {
        pictures.push("trajectories.png".into());
    }
    // `fokker compare` writes vs_<run>.png (and .csv) into compare/.
    let mut compared: Vec<String> = std::fs::read_dir(v.dir.join("compare"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vs_") && n.ends_with(".png"))
        .map(|n| format!("compare/{n}"))
        .collect();
    compared.sort();
    pictures.extend(compared);
    if pictures.is_empty() {
        return;
    }
    html.push_str("<h3>Plots</h3>\n");
    for p in &pictures {
        let _ = writeln!(
            html,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            v.img(p, p),
            escape(p)
        );
    }
}

fn files(html: &mut String, v: &RunView<'_>) {
    let m = &v.manifest;
    html.push_str("<h3>Files</h3>\n<ul>\n");
    let mut names = vec![
        "manifest.json".to_string(),
        m.metrics.clone(),
        "scenario.toml".into(),
    ];
    names.extend(m.trajectories.clone());
    names.extend(m.gif.clone());
    for n in names {
        let link = v.link(&n);
        if !link.is_empty() {
            let _ = writeln!(html, "<li>{link}</li>");
        }
    }
    html.push_str("</ul>\n");
}

fn run_section(html: &mut String, v: &RunView<'_>) {
    let m = &v.manifest;
    let _ = writeln!(html, "<section class=\"run\" id=\"run-{}\">", v.index);
    let heading = match &m.plan.name {
        Some(n) => format!("{} ({})", n, v.name()),
        None => v.name(),
    };
    let _ = writeln!(html, "<h2>{}</h2>", escape(&heading));
    summary(html, v);
    snapshots(html, v);
    plots(html, v);
    files(html, v);
    html.push_str("<h3>Scenario</h3>\n");
    match std::fs::read_to_string(v.dir.join("scenario.toml")) {
        Ok(text) => {
            let _ = writeln!(html, "<pre>{}</pre>", escape(&text));
        }
        Err(_) => html.push_str("<p>the scenario text was not stored with this run</p>\n"),
    }
    let _ = writeln!(
        html,
        "<details><summary>resolved plan (every default filled in)</summary><pre>{}</pre></details>",
        escape(&plan_json(m))
    );
    html.push_str("</section>\n");
}

/// The page for `runs` (directory, path from the page's directory to it).
fn page(runs: &[RunView<'_>]) -> String {
    let title = match runs {
        [one] => match &one.manifest.plan.name {
            Some(n) => format!("fokker report: {n}"),
            None => format!("fokker report: {}", one.name()),
        },
        _ => format!("fokker report: {} runs", runs.len()),
    };
    let csp = format!(
        "default-src 'none'; img-src 'self' file: data:; style-src {}; script-src {}; \
         base-uri 'none'; form-action 'none'",
        sha256_source(STYLE),
        sha256_source(SCRIPT)
    );
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n\
         <div class=\"runs\">\n",
        escape(&csp),
        escape(&title),
        escape(&title)
    );
    for v in runs {
        run_section(&mut html, v);
    }
    let _ = write!(
        html,
        "</div>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    html
}

/// Writes `dir/report.html` for the run in `dir`; returns its path.
pub fn write_report(dir: &Path) -> Result<PathBuf> {
    let view = RunView {
        dir,
        base: PathBuf::new(),
        manifest: read_manifest(dir)?,
        index: 0,
    };
    let path = dir.join(FILE);
    output::write_atomic(&path, page(&[view]).as_bytes())?;
    Ok(path)
}

/// `fokker report DIR... [--out FILE]`: without `out`, rewrites each run's own report.html;
/// with it, writes one page at `out` with the runs side by side (pictures linked relative
/// to `out`'s directory). Returns the pages written.
pub fn report(dirs: &[PathBuf], out: Option<&Path>) -> Result<Vec<PathBuf>> {
    let Some(out) = out else {
        return dirs.iter().map(|d| write_report(d)).collect();
    };
    if out.is_dir() {
        return Err(Error::Usage(format!(
            "--out {}: a directory; name the page to write, e.g. {}",
            out.display(),
            out.join(FILE).display()
        )));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Every run is read before anything is made or written.
    let manifests = dirs
        .iter()
        .map(|dir| read_manifest(dir))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let views = dirs
        .iter()
        .zip(manifests)
        .enumerate()
        .map(|(index, (dir, manifest))| {
            Ok(RunView {
                dir,
                base: relative(&parent, dir)?,
                manifest,
                index,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    output::write_atomic(out, page(&views).as_bytes())?;
    Ok(vec![out.to_path_buf()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('1')</script> & \"x\""),
            "&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt; &amp; &quot;x&quot;"
        );
    }

    #[test]
    fn hrefs_are_percent_encoded_relative_paths() {
        assert_eq!(
            href(Path::new("density/00000000.png")),
            "density/00000000.png"
        );
        assert_eq!(
            href(Path::new("../my runs/a#1/x\"y.png")),
            "../my%20runs/a%231/x%22y.png"
        );
    }

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("x/page"), tmp.path().join("runs/b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        assert_eq!(relative(&a, &b).unwrap(), Path::new("../../runs/b"));
        assert_eq!(relative(&b, &b).unwrap(), Path::new(""));
    }

    #[test]
    fn absolute_directories_are_named_not_spelled_out() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run-1");
        std::fs::create_dir(&dir).unwrap();
        let text = format!("interrupted; run `fokker resume {}`", dir.display());
        assert_eq!(
            without_dir(&text, &dir),
            "interrupted; run `fokker resume run-1`"
        );
        assert_eq!(
            shorten_paths("cannot read /data/my runs/x.npy: (/home/u/s.toml), x/2 / y"),
            "cannot read my runs/x.npy: (s.toml), x/2 / y"
        );
    }
}
