//! The bad-input catalogue (issue 7, part 5): invalid scenarios, data files and command lines,
//! each run through the real binary as `fokker run s.toml --out run --progress none` in a fresh
//! directory, with the exit code and the message fragments it must produce.
//!
//! Every case also checks that nothing was written: the working directory holds exactly the
//! same files with the same bytes after the run as before it (so no output directory was
//! created and no foreign directory was touched), stdout is empty, and stderr shows no panic.
//!
//! Cases are independent, run a few at a time, and all failures are reported together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The valid scenario each case mutates: small enough to run in well under a second.
const BASE: &str = r#"[particles]
count = 1000
dim = 2
init = { kind = "point", at = [0.0, 0.0] }

[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 1.0
dt = 1e-3
steps = 5
"#;

const INVALID: i32 = 65;
const USAGE: i32 = 2;
const NO_ADAPTER: i32 = 69;
const IO: i32 = 74;

/// What to put in the working directory before the run.
enum Entry {
    File(Vec<u8>),
    Dir,
}

struct Case {
    name: &'static str,
    /// Written to `s.toml`; `None` writes nothing (the file is missing, or `setup` makes it).
    scenario: Option<Vec<u8>>,
    /// Other files and directories, relative to the working directory.
    files: Vec<(&'static str, Entry)>,
    /// The `--out` argument.
    out: &'static str,
    args: Vec<&'static str>,
    code: i32,
    /// Substrings stderr must contain.
    stderr: Vec<&'static str>,
    /// If set, the number of `  - ` issue lines the scenario error must list.
    issue_lines: Option<usize>,
}

/// A case built from [`BASE`].
fn case(name: &'static str) -> Case {
    Case {
        name,
        scenario: Some(BASE.as_bytes().to_vec()),
        files: Vec::new(),
        out: "run",
        args: Vec::new(),
        code: INVALID,
        stderr: Vec::new(),
        issue_lines: None,
    }
}

impl Case {
    /// Replaces `from` (which must occur exactly once in the current scenario) by `to`.
    fn edit(mut self, from: &str, to: &str) -> Self {
        let text = String::from_utf8(self.scenario.take().expect("a scenario to edit")).unwrap();
        assert_eq!(
            text.matches(from).count(),
            1,
            "case {}: {from:?} must occur exactly once in\n{text}",
            self.name
        );
        self.scenario = Some(text.replacen(from, to, 1).into_bytes());
        self
    }

    /// Appends text to the scenario (a new section, usually `[output]`).
    fn append(mut self, more: &str) -> Self {
        let mut text = self.scenario.take().expect("a scenario to append to");
        text.extend_from_slice(more.as_bytes());
        self.scenario = Some(text);
        self
    }

    /// Prepends text (top-level keys must come before the first table header).
    fn prepend(mut self, more: &str) -> Self {
        let mut text = more.as_bytes().to_vec();
        text.extend(self.scenario.take().expect("a scenario to prepend to"));
        self.scenario = Some(text);
        self
    }

    fn raw_scenario(mut self, bytes: Option<&[u8]>) -> Self {
        self.scenario = bytes.map(<[u8]>::to_vec);
        self
    }

    /// Initial particles from the sample file `name` (written with `bytes`, unless `None`).
    fn samples(self, name: &'static str, bytes: Option<Vec<u8>>) -> Self {
        let c = self.edit(
            r#"kind = "point", at = [0.0, 0.0]"#,
            &format!(r#"kind = "samples", path = "{name}""#),
        );
        match bytes {
            Some(b) => c.file(name, b),
            None => c,
        }
    }

    fn file(mut self, name: &'static str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.push((name, Entry::File(bytes.into())));
        self
    }

    fn dir(mut self, name: &'static str) -> Self {
        self.files.push((name, Entry::Dir));
        self
    }

    fn out(mut self, out: &'static str) -> Self {
        self.out = out;
        self
    }

    fn args(mut self, args: &[&'static str]) -> Self {
        self.args.extend_from_slice(args);
        self
    }

    fn issues(mut self, n: usize) -> Self {
        self.issue_lines = Some(n);
        self
    }

    fn expect(mut self, code: i32, fragments: &[&'static str]) -> Self {
        self.code = code;
        self.stderr = fragments.to_vec();
        self
    }
}

const LANGEVIN_DYNAMICS: &str = r#"kind = "langevin"
potential = { kind = "double_well" }
temperature = 1.0
dt = 1e-3
steps = 5"#;

const TARGET: &str = r#"target = { kind = "mixture", weights = [1.0], means = [[1.0, 0.0]], stds = [0.5], count = 64 }"#;

/// A valid SD-flow scenario (mixture target) the kernel-flow cases mutate.
fn sd_flow_case(name: &'static str) -> Case {
    case(name).edit(
        LANGEVIN_DYNAMICS,
        &format!("kind = \"sd_flow\"\n{TARGET}\nsigma = 0.3\neta = 0.5\nsteps = 3"),
    )
}

/// A valid reverse-SDE scenario (prior init, mixture score) the diffusion cases mutate.
fn reverse_case(name: &'static str) -> Case {
    case(name)
        .edit(
            r#"init = { kind = "point", at = [0.0, 0.0] }"#,
            r#"init = { kind = "prior" }"#,
        )
        .edit(
            LANGEVIN_DYNAMICS,
            r#"kind = "reverse_sde"
process = { kind = "vp", beta_min = 0.1, beta_max = 20.0 }
score = { kind = "mixture", weights = [1.0], means = [[1.0, 0.0]], stds = [0.5] }
t_end = 1.0
t_min = 1e-3
steps = 5"#,
        )
}

// ------------------------------------------------------------------------------------------
// Data files built by hand, so malformed ones are as easy as good ones.

/// A version 1.0 `.npy` with the given header fields, padded as numpy pads it.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    npy_raw_header(&dict, data)
}

/// A version 1.0 `.npy` whose header text is `dict` verbatim (plus padding and newline).
fn npy_raw_header(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f8(xs: &[f64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f4(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

// ------------------------------------------------------------------------------------------
// The catalogue.

const MIXTURE_INIT: &str = r#"kind = "mixture", weights = [0.5, 0.5], means = [[-1.0, 0.0], [1.0, 0.0]], stds = [0.3, 0.3]"#;
const POINT_INIT: &str = r#"kind = "point", at = [0.0, 0.0]"#;
const HISTOGRAM: &str = "\n[output]\nhistogram = { axes = [0, 1], bins = [16, 16], range = [[-2.0, 2.0], [-2.0, 2.0]] }\n";

fn histogram(from: &str, to: &str) -> String {
    assert!(
        HISTOGRAM.contains(from),
        "{from:?} not in the histogram line"
    );
    HISTOGRAM.replacen(from, to, 1)
}

fn quadratic(matrix: &str) -> String {
    format!(r#"kind = "quadratic", matrix = {matrix} }}"#)
}

fn catalogue() -> Vec<Case> {
    let dw = r#"kind = "double_well" }"#;
    let good_xy = f8(&[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
    vec![
        // --- wrong types -------------------------------------------------------------------
        case("count is a string")
            .edit("count = 1000", r#"count = "1000""#)
            .expect(INVALID, &["particles.count", r#""1000""#, "an integer >= 1"]),
        case("dim is a float")
            .edit("dim = 2", "dim = 2.0")
            .expect(INVALID, &["particles.dim = 2.0", "from 1 to 8", "as a float"]),
        case("dt is a table")
            .edit("dt = 1e-3", "dt = { value = 1e-3 }")
            .expect(INVALID, &["dynamics.dt", "value", "a finite number > 0"]),
        // --- step-size schedules (src/model/step_size.rs) ---------------------------------
        case("dt schedule start is zero")
            .edit("dt = 1e-3", r#"dt = { start = 0.0, end = 1e-3, kind = "geometric" }"#)
            .expect(INVALID, &["dynamics.dt.start = 0.0", "a finite number > 0"]),
        case("dt schedule end is negative")
            .edit("dt = 1e-3", r#"dt = { start = 0.1, end = -1e-3, kind = "linear" }"#)
            .expect(INVALID, &["dynamics.dt.end = -0.001", "a finite number > 0"]),
        case("dt schedule of an unknown kind")
            .edit("dt = 1e-3", r#"dt = { start = 0.1, end = 1e-3, kind = "cosine" }"#)
            .expect(INVALID, &[r#"dynamics.dt.kind = "cosine""#, r#""geometric", "linear""#]),
        case("dt schedule without its kind")
            .edit("dt = 1e-3", "dt = { start = 0.1, end = 1e-3 }")
            .expect(INVALID, &["dynamics.dt.kind: missing"]),
        case("dt schedule with t_end")
            .edit("dt = 1e-3", r#"dt = { start = 0.1, end = 1e-3, kind = "geometric" }"#)
            .edit("steps = 5", "t_end = 1.0")
            .expect(INVALID, &["dynamics.t_end = 1.0", "with a step-size schedule"]),
        case("dt schedule on a kind without schedules")
            .edit(r#"kind = "langevin""#, r#"kind = "gradient_flow""#)
            .edit("temperature = 1.0\n", "")
            .edit("dt = 1e-3", r#"dt = { start = 0.1, end = 1e-3, kind = "geometric" }"#)
            .expect(INVALID, &["dynamics.dt = {", r#"is for kind = "langevin" only"#]),
        case("temperature is a string via --set")
            .args(&["--set", "dynamics.temperature=hot"])
            .expect(INVALID, &[r#"dynamics.temperature = "hot""#, ">= 0"]),
        case("init is a string, not a table")
            .edit(r#"init = { kind = "point", at = [0.0, 0.0] }"#, r#"init = "point""#)
            .expect(INVALID, &[r#"particles.init = "point""#, "a table"]),
        case("particles is an array of tables")
            .edit("[particles]", "[[particles]]")
            .expect(INVALID, &["particles = [", "a table"]),
        case("gif is a string")
            .append("\n[output]\ngif = \"yes\"\n")
            .expect(INVALID, &[r#"output.gif = "yes""#, "true or false"]),
        case("output.particles is a boolean")
            .append("\n[output]\nparticles = true\n")
            .expect(INVALID, &["output.particles = true", "a string", r#""snapshots""#]),
        // --- unknown keys, with and without a suggestion, at every level --------------------
        case("unknown top-level key")
            .prepend("sed = 3\n")
            .expect(INVALID, &["sed = 3", "unknown key", r#"did you mean "seed"?"#]),
        case("unknown section")
            .edit("[particles]", "[particle]")
            .expect(
                INVALID,
                &[
                    "particle = {",
                    r#"did you mean "particles"?"#,
                    "particles: missing; required: a table [particles]",
                ],
            ),
        case("unknown key in dynamics")
            .edit("temperature = 1.0", "temprature = 1.0")
            .expect(INVALID, &["dynamics.temprature = 1.0", r#"did you mean "temperature"?"#]),
        case("unknown key in dynamics, no near match")
            .append("foo = 1\n")
            .expect(
                INVALID,
                &[
                    "dynamics.foo = 1",
                    "valid keys here: kind, potential, temperature, dt, t_end, steps",
                ],
            ),
        case("unknown key in particles.init")
            .edit("at = [0.0, 0.0]", "att = [0.0, 0.0]")
            .expect(
                INVALID,
                &["particles.init.att = [0.0, 0.0]", r#"did you mean "at"?"#, "particles.init.at: missing"],
            ),
        case("unknown key in dynamics.potential")
            .edit(dw, r#"kind = "mueller_brown", scael = 0.1 }"#)
            .expect(INVALID, &["dynamics.potential.scael = 0.1", r#"did you mean "scale"?"#]),
        case("unknown key in output.histogram")
            .append("\n[output]\nhistogram = { bin = 4 }\n")
            .expect(INVALID, &["output.histogram.bin = 4", r#"did you mean "bins"?"#]),
        // --- counts and dimensions ----------------------------------------------------------
        case("negative count")
            .edit("count = 1000", "count = -5")
            .expect(INVALID, &["particles.count = -5", "an integer >= 1"]),
        case("zero count")
            .edit("count = 1000", "count = 0")
            .expect(INVALID, &["particles.count = 0", "an integer >= 1"]),
        case("dim 0")
            .edit("dim = 2", "dim = 0")
            .expect(INVALID, &["particles.dim = 0", "an integer from 1 to 8"]),
        case("dim 9")
            .edit("dim = 2", "dim = 9")
            .expect(INVALID, &["particles.dim = 9", "an integer from 1 to 8"]),
        // --- missing required keys ----------------------------------------------------------
        case("dim missing")
            .edit("dim = 2\n", "")
            .expect(INVALID, &["particles.dim: missing", "an integer from 1 to 8"]),
        case("dt missing")
            .edit("dt = 1e-3\n", "")
            .expect(INVALID, &["dynamics.dt: missing", "a finite number > 0"]),
        case("init kind missing")
            .edit(r#"kind = "point", "#, "")
            .expect(
                INVALID,
                &["particles.init.kind: missing", r#""point", "gaussian", "uniform", "mixture", "samples""#],
            ),
        case("quadratic without matrix")
            .edit(dw, r#"kind = "quadratic" }"#)
            .expect(INVALID, &["dynamics.potential.matrix: missing", "symmetric dim x dim matrix"]),
        // --- time ---------------------------------------------------------------------------
        case("both t_end and steps")
            .edit("steps = 5", "steps = 5\nt_end = 1.0")
            .expect(
                INVALID,
                &["dynamics.t_end = 1.0", "exactly one of dynamics.t_end or dynamics.steps", "not both"],
            ),
        case("neither t_end nor steps")
            .edit("steps = 5\n", "")
            .expect(INVALID, &["dynamics.t_end: missing", "exactly one of dynamics.t_end", "dynamics.steps"]),
        case("zero steps")
            .edit("steps = 5", "steps = 0")
            .expect(INVALID, &["dynamics.steps = 0", "an integer from 1 to"]),
        case("negative t_end")
            .edit("steps = 5", "t_end = -1.0")
            .expect(INVALID, &["dynamics.t_end = -1.0", "a finite number > 0"]),
        case("negative snapshot period")
            .append("\n[output]\nevery = -1.0\n")
            .expect(INVALID, &["output.every = -1.0", "a finite number > 0"]),
        // --- temperature, NaN and Inf -------------------------------------------------------
        case("negative temperature")
            .edit("temperature = 1.0", "temperature = -0.5")
            .expect(INVALID, &["dynamics.temperature = -0.5", "a finite number >= 0"]),
        case("dt = nan via --set")
            .args(&["--set", "dynamics.dt=nan"])
            .expect(INVALID, &["dynamics.dt = nan", "a finite number > 0"]),
        case("dt = inf via --set")
            .args(&["--set", "dynamics.dt=inf"])
            .expect(INVALID, &["dynamics.dt = inf", "a finite number > 0"]),
        case("temperature = -inf via --set")
            .args(&["--set", "dynamics.temperature=-inf"])
            .expect(INVALID, &["dynamics.temperature = -inf", "a finite number >= 0"]),
        case("nan inside a vector via --set")
            .args(&["--set", "particles.init.at=[nan, 0.0]"])
            .expect(INVALID, &["particles.init.at = [nan, 0.0]", "finite numbers", "entry 0 is nan"]),
        // --- matrices -----------------------------------------------------------------------
        case("non-symmetric matrix")
            .edit(dw, &quadratic("[[1.0, 0.5], [0.0, 1.0]]"))
            .expect(
                INVALID,
                &["dynamics.potential.matrix = [[1.0, 0.5], [0.0, 1.0]]", "symmetric 2 x 2", "entry [1][0]"],
            ),
        case("non-square matrix (rows too long)")
            .edit(dw, &quadratic("[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]"))
            .expect(INVALID, &["dynamics.potential.matrix", "symmetric 2 x 2", "row 0 is [1.0, 0.0, 0.0]"]),
        case("non-square matrix (too many rows)")
            .edit(dw, &quadratic("[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]"))
            .expect(INVALID, &["dynamics.potential.matrix", "symmetric 2 x 2", "got 3 rows"]),
        // --- vectors of the wrong length ----------------------------------------------------
        case("point at has 3 entries in 2D")
            .edit("at = [0.0, 0.0]", "at = [0.0, 0.0, 0.0]")
            .expect(INVALID, &["particles.init.at = [0.0, 0.0, 0.0]", "a list of 2 finite numbers", "got 3"]),
        case("gaussian mean and std of wrong lengths (both reported)")
            .edit(POINT_INIT, r#"kind = "gaussian", mean = [0.0], std = [1.0, 1.0, 1.0]"#)
            .issues(2)
            .expect(
                INVALID,
                &[
                    "particles.init.mean = [0.0]: a list of 2 finite numbers",
                    "got 1",
                    "particles.init.std = [1.0, 1.0, 1.0]: a list of 2 finite positive numbers",
                    "got 3",
                ],
            ),
        case("gaussian std zero")
            .edit(POINT_INIT, r#"kind = "gaussian", mean = [0.0, 0.0], std = 0.0"#)
            .expect(INVALID, &["particles.init.std = 0.0", "a finite number > 0"]),
        case("quadratic center of wrong length")
            .edit(dw, r#"kind = "quadratic", matrix = [[1.0, 0.0], [0.0, 1.0]], center = [1.0] }"#)
            .expect(INVALID, &["dynamics.potential.center = [1.0]", "a list of 2 finite numbers", "got 1"]),
        case("uniform low == high in one entry")
            .edit(POINT_INIT, r#"kind = "uniform", low = [0.0, 1.0], high = [1.0, 1.0]"#)
            .expect(INVALID, &["particles.init.high = [1.0, 1.0]", "greater than the same entry of low", "entry 1"]),
        case("uniform low > high")
            .edit(POINT_INIT, r#"kind = "uniform", low = [2.0, 0.0], high = [1.0, 1.0]"#)
            .expect(INVALID, &["particles.init.high", "greater than the same entry of low", "entry 0"]),
        // --- mixtures -----------------------------------------------------------------------
        case("mixture: 3 weights, 2 means and 2 stds")
            .edit(POINT_INIT, &MIXTURE_INIT.replace("[0.5, 0.5]", "[0.5, 0.3, 0.2]"))
            .issues(2)
            .expect(
                INVALID,
                &["particles.init.means", "a list of 3 mean vectors, one per weight; got 2", "particles.init.stds"],
            ),
        case("mixture: zero weight")
            .edit(POINT_INIT, &MIXTURE_INIT.replace("[0.5, 0.5]", "[1.0, 0.0]"))
            .expect(INVALID, &["particles.init.weights = [1.0, 0.0]", "positive", "entry 1 is 0.0"]),
        case("mixture: negative weight")
            .edit(POINT_INIT, &MIXTURE_INIT.replace("[0.5, 0.5]", "[1.5, -0.5]"))
            .expect(INVALID, &["particles.init.weights", "positive", "entry 1 is -0.5"]),
        case("mixture: negative std")
            .edit(POINT_INIT, &MIXTURE_INIT.replace("stds = [0.3, 0.3]", "stds = [0.3, -0.3]"))
            .expect(INVALID, &["particles.init.stds", "component 1", "> 0"]),
        case("mixture: a mean of the wrong dimension")
            .edit(POINT_INIT, &MIXTURE_INIT.replace("[1.0, 0.0]]", "[1.0]]"))
            .expect(INVALID, &["particles.init.means", "component 1's mean", "got 1"]),
        case("mixture potential: no components")
            .edit(dw, r#"kind = "mixture", weights = [], means = [], stds = [] }"#)
            .expect(INVALID, &["dynamics.potential.weights = []", "a non-empty list of positive numbers"]),
        case("mixture potential: zero std")
            .edit(dw, r#"kind = "mixture", weights = [1.0], means = [[0.0, 0.0]], stds = [0.0] }"#)
            .expect(INVALID, &["dynamics.potential.stds", "component 0", "> 0"]),
        // --- potentials and kinds -----------------------------------------------------------
        case("mueller_brown in 1D")
            .edit("dim = 2", "dim = 1")
            .edit("at = [0.0, 0.0]", "at = [0.0]")
            .edit(dw, r#"kind = "mueller_brown" }"#)
            .expect(
                INVALID,
                &[r#"dynamics.potential.kind = "mueller_brown""#, "needs particles.dim >= 2", "dim = 1"],
            ),
        case("potential kind with a dash")
            .edit(dw, r#"kind = "double-well" }"#)
            .expect(INVALID, &[r#"dynamics.potential.kind = "double-well""#, r#"did you mean "double_well"?"#]),
        case("unknown init kind")
            .edit(r#""point""#, r#""normal""#)
            .expect(INVALID, &[r#"particles.init.kind = "normal""#, r#""gaussian""#]),
        case("unknown dynamics kind")
            .edit(r#"kind = "langevin""#, r#"kind = "langevine""#)
            .expect(INVALID, &[r#"dynamics.kind = "langevine""#, r#""langevin""#]),
        // --- histogram ----------------------------------------------------------------------
        case("histogram axis out of range")
            .append(&histogram("axes = [0, 1]", "axes = [0, 2]"))
            .expect(INVALID, &["output.histogram.axes = [0, 2]", "distinct axes, each from 0 to 1"]),
        case("histogram axis repeated")
            .append(&histogram("axes = [0, 1]", "axes = [1, 1]"))
            .expect(INVALID, &["output.histogram.axes = [1, 1]", "distinct axes"]),
        case("histogram axis negative")
            .append(&histogram("axes = [0, 1]", "axes = [-1, 0]"))
            .expect(INVALID, &["output.histogram.axes = [-1, 0]", "each from 0 to 1"]),
        case("histogram with three axes")
            .append(&histogram("axes = [0, 1]", "axes = [0, 1, 0]"))
            .expect(INVALID, &["output.histogram.axes = [0, 1, 0]", "a list of 1 or 2 distinct axes"]),
        case("zero bins")
            .append(&histogram("bins = [16, 16]", "bins = 0"))
            .expect(INVALID, &["output.histogram.bins = 0", "an integer from 1 to 4096"]),
        case("zero bins on one axis")
            .append(&histogram("bins = [16, 16]", "bins = [0, 16]"))
            .expect(INVALID, &["output.histogram.bins = [0, 16]", "an integer from 1 to 4096"]),
        case("too many bins")
            .append(&histogram("bins = [16, 16]", "bins = 5000"))
            .expect(INVALID, &["output.histogram.bins = 5000", "from 1 to 4096"]),
        case("bins for three axes, histogram has two")
            .append(&histogram("bins = [16, 16]", "bins = [16, 16, 16]"))
            .expect(INVALID, &["output.histogram.bins = [16, 16, 16]", "axes has 2, bins has 3"]),
        case("range lo >= hi")
            .append(&histogram("[[-2.0, 2.0], [-2.0, 2.0]]", "[[2.0, 2.0], [1.0, -1.0]]"))
            .expect(INVALID, &["output.histogram.range = [[2.0, 2.0], [1.0, -1.0]]", "lo < hi"]),
        case("range for one axis, histogram has two")
            .append(&histogram("[[-2.0, 2.0], [-2.0, 2.0]]", "[[-2.0, 2.0]]"))
            .expect(INVALID, &["output.histogram.range = [[-2.0, 2.0]]", "a list of 2 [lo, hi] pair(s)"]),
        case("range with nan")
            .append(&histogram("[[-2.0, 2.0], [-2.0, 2.0]]", "[[-2.0, 2.0], [-2.0, nan]]"))
            .expect(INVALID, &["output.histogram.range", "nan", "finite"]),
        // --- output enums -------------------------------------------------------------------
        case("colormap typo")
            .append("\n[output]\nheatmap = { colormap = \"viridus\" }\n")
            .expect(INVALID, &[r#"output.heatmap.colormap = "viridus""#, r#"did you mean "viridis"?"#]),
        case("unknown colormap")
            .append("\n[output]\nheatmap = { colormap = \"jet\" }\n")
            .expect(
                INVALID,
                &[r#"output.heatmap.colormap = "jet""#, r#"one of "viridis", "magma", "inferno", "plasma", "cividis", "turbo", "greys""#],
            ),
        case("unknown scale")
            .append("\n[output]\nheatmap = { scale = \"logarithmic\" }\n")
            .expect(INVALID, &[r#"output.heatmap.scale = "logarithmic""#, r#"one of "linear", "log""#]),
        case("unknown particles output")
            .append("\n[output]\nparticles = \"all\"\n")
            .expect(INVALID, &[r#"output.particles = "all""#, r#"one of "none", "final", "snapshots""#]),
        // --- TOML syntax, --set and --seed --------------------------------------------------
        case("TOML: value missing")
            .edit("dim = 2", "dim = ")
            .expect(INVALID, &["invalid scenario s.toml", "line 3, column 7", "TOML syntax error"]),
        case("TOML: unclosed table header")
            .edit("[dynamics]", "[dynamics")
            .expect(INVALID, &["line 6, column 10", "TOML syntax error", "unclosed table"]),
        case("TOML: duplicate key")
            .edit("dim = 2", "dim = 2\ndim = 3")
            .expect(INVALID, &["line 4", "TOML syntax error", "duplicate key"]),
        case("--set without =")
            .args(&["--set", "dynamics.dt"])
            .expect(INVALID, &[r#"--set = "dynamics.dt""#, "KEY=VALUE"]),
        case("--set with an empty key")
            .args(&["--set", "=1"])
            .expect(INVALID, &[r#"--set = "=1""#, "KEY=VALUE"]),
        case("--set into a number")
            .args(&["--set", "particles.count.x=1"])
            .expect(INVALID, &["particles.count.x", "particles.count is 1000 in the scenario, not a table"]),
        case("negative seed in the file")
            .prepend("seed = -1\n")
            .expect(INVALID, &["seed = -1", "a non-negative integer"]),
        // --- sample files: .npy -------------------------------------------------------------
        case("samples file missing")
            .samples("x.npy", None)
            .expect(INVALID, &[r#"particles.init.path = "x.npy""#, "x.npy", "No such file"]),
        case("samples path not a string")
            .samples("x.npy", Some(good_xy.clone()))
            .args(&["--set", "particles.init.path=7"])
            .expect(INVALID, &["particles.init.path = 7", "a string", ".npy or .csv"]),
        case(".npy: empty file")
            .samples("x.npy", Some(Vec::new()))
            .expect(INVALID, &[r#"particles.init.path = "x.npy""#, "x.npy: empty file"]),
        case(".npy: no rows")
            .samples("x.npy", Some(npy("<f8", "(0, 2)", &[])))
            .expect(INVALID, &["particles.init.path", "x.npy", "no rows"]),
        case(".npy: 3 columns in 2D")
            .samples("x.npy", Some(npy("<f8", "(2, 3)", &good_xy)))
            .expect(INVALID, &["particles.init.path", "a table with 2 columns (particles.dim = 2)", "x.npy has 3"]),
        case(".npy: 1D array in 2D")
            .samples("x.npy", Some(npy("<f8", "(3,)", &f8(&[0.0, 1.0, 2.0]))))
            .expect(INVALID, &["particles.init.path", "a table with 2 columns", "x.npy has 1"]),
        case(".npy: NaN")
            .samples("x.npy", Some(npy("<f8", "(3, 2)", &f8(&[0.0, 0.0, 1.0, f64::NAN, 2.0, 2.0]))))
            .expect(INVALID, &["x.npy", "NaN at row 1, column 1", "finite"]),
        case(".npy: float32 Inf")
            .samples("x.npy", Some(npy("<f4", "(3, 2)", &f4(&[0.0, 0.0, 1.0, f32::INFINITY, 2.0, 2.0]))))
            .expect(INVALID, &["x.npy", "inf at row 1, column 1", "finite"]),
        case(".npy: float64 beyond float32")
            .samples("x.npy", Some(npy("<f8", "(2, 2)", &f8(&[0.0, 0.0, 1.0, 1e300]))))
            .expect(INVALID, &["x.npy", "row 1, column 1", "outside the float32 range"]),
        case(".npy: malformed header")
            .samples("x.npy", Some(npy_raw_header("{descr: oops}", &f8(&[1.0, 2.0]))))
            .expect(INVALID, &["particles.init.path", "x.npy", "malformed .npy header"]),
        case(".npy: not a .npy at all")
            .samples("x.npy", Some(b"PK\x03\x04 this is a zip".to_vec()))
            .expect(INVALID, &["x.npy", "not a .npy file", "magic"]),
        case(".npy: truncated data")
            .samples("x.npy", Some(npy("<f8", "(3, 2)", &good_xy[..40])))
            .expect(INVALID, &["x.npy", "truncated or padded", "48 data bytes, the file has 40"]),
        case(".npy: integer dtype")
            .samples("x.npy", Some(npy("<i8", "(3, 2)", &good_xy)))
            .expect(INVALID, &["x.npy", "unsupported dtype '<i8'", "'<f4' or float64 '<f8'"]),
        // --- sample files: .csv and others --------------------------------------------------
        case(".csv: ragged")
            .samples("x.csv", Some(b"x,y\n0,0\n1,1,1\n2,2\n".to_vec()))
            .expect(INVALID, &["x.csv", "ragged: line 3 has 3 columns, expected 2"]),
        case(".csv: text in a data row")
            .samples("x.csv", Some(b"x,y\n0,0\n1,abc\n".to_vec()))
            .expect(INVALID, &["x.csv", "line 3, column 2", r#""abc" is not a number"#]),
        case(".csv: empty file")
            .samples("x.csv", Some(Vec::new()))
            .expect(INVALID, &[r#"particles.init.path = "x.csv""#, "x.csv: empty file"]),
        case(".csv: header only")
            .samples("x.csv", Some(b"x,y\n".to_vec()))
            .expect(INVALID, &["x.csv", "no data rows"]),
        case(".csv: NaN")
            .samples("x.csv", Some(b"0,0\n1,nan\n".to_vec()))
            .expect(INVALID, &["x.csv", "line 2, column 2", "finite"]),
        case(".csv: empty field")
            .samples("x.csv", Some(b"0,0\n1,\n".to_vec()))
            .expect(INVALID, &["x.csv", "line 2, column 2 is empty"]),
        case(".csv: 3 columns in 2D")
            .samples("x.csv", Some(b"0,0,0\n1,1,1\n".to_vec()))
            .expect(INVALID, &["a table with 2 columns (particles.dim = 2)", "x.csv has 3"]),
        case(".csv: not UTF-8")
            .samples("x.csv", Some(b"0,0\n\xff\xfe,1\n".to_vec()))
            .expect(INVALID, &["x.csv", "not UTF-8"]),
        case("samples with an unsupported extension")
            .samples("x.txt", Some(b"0,0\n1,1\n".to_vec()))
            .expect(INVALID, &["x.txt", "not a .npy or .csv file"]),
        // --- every problem at once ----------------------------------------------------------
        case("three problems in one file, all reported")
            .edit("count = 1000", "count = -1")
            .edit("temperature = 1.0", "temprature = 1.0")
            .append("\n[output]\nhistogram = { bins = 0 }\n")
            .issues(3)
            .expect(
                INVALID,
                &[
                    "particles.count = -1: an integer >= 1",
                    r#"dynamics.temprature = 1.0: unknown key; did you mean "temperature"?"#,
                    "output.histogram.bins = 0: an integer from 1 to 4096",
                ],
            ),
        case("file, data and --set problems together")
            .samples("x.npy", None)
            .edit("count = 1000", "count = -1")
            .args(&["--set", "dynamics.dt=0", "--set", "output.heatmap.colormap=jet"])
            .issues(4)
            .expect(
                INVALID,
                &["particles.count = -1", "x.npy", "dynamics.dt = 0", r#"output.heatmap.colormap = "jet""#],
            ),
        // --- files and the command line -----------------------------------------------------
        case("scenario file missing")
            .raw_scenario(None)
            .expect(IO, &["I/O error on s.toml", "No such file"]),
        case("scenario is a directory")
            .raw_scenario(None)
            .dir("s.toml")
            .expect(IO, &["s.toml", "Is a directory"]),
        case("scenario is not UTF-8")
            .raw_scenario(Some(b"\xff\xfe[particles]\n"))
            .expect(INVALID, &["s.toml", "not UTF-8"]),
        case("output under a regular file")
            .file("file", b"not a directory\n".to_vec())
            .out("file/run")
            .expect(IO, &["file/run", "Not a directory"]),
        case("non-empty foreign --out")
            .dir("foreign")
            .file("foreign/notes.txt", b"keep me\n".to_vec())
            .out("foreign")
            .expect(IO, &["foreign", "not empty", "--force"]),
        case("non-empty foreign --out with --force")
            .dir("foreign")
            .file("foreign/notes.txt", b"keep me\n".to_vec())
            .out("foreign")
            .args(&["--force"])
            .expect(IO, &["refusing to empty foreign", "no manifest.json", "previous fokker run"]),
        case("unknown flag")
            .args(&["--frobnicate"])
            .expect(USAGE, &["unexpected argument '--frobnicate'", "Usage:"]),
        case("--seed is not a number")
            .args(&["--seed", "many"])
            .expect(USAGE, &["--seed", "many"]),
        case("--set without its value")
            .args(&["--set"])
            .expect(USAGE, &["--set <KEY=VALUE>", "a value is required"]),
        // --- diffusion and gradient flows ------------------------------------------------------
        reverse_case("reverse: t_min above t_end")
            .edit("t_min = 1e-3", "t_min = 2.0")
            .expect(INVALID, &["dynamics.t_min = 2.0", "below t_end = 1"]),
        reverse_case("reverse: unknown process kind")
            .edit(r#"kind = "vp", beta_min"#, r#"kind = "vpp", beta_min"#)
            .expect(INVALID, &["dynamics.process.kind", r#"did you mean "vp"?"#]),
        reverse_case("reverse: beta_max below beta_min")
            .edit("beta_max = 20.0", "beta_max = 0.05")
            .expect(INVALID, &["dynamics.process.beta_max = 0.05", ">= beta_min = 0.1"]),
        reverse_case("reverse: ve sigma_max not above sigma_min")
            .edit(
                r#"{ kind = "vp", beta_min = 0.1, beta_max = 20.0 }"#,
                r#"{ kind = "ve", sigma_min = 1.0, sigma_max = 1.0 }"#,
            )
            .expect(INVALID, &["dynamics.process.sigma_max = 1.0", "> sigma_min = 1"]),
        reverse_case("reverse: missing score and steps")
            .edit(
                r#"score = { kind = "mixture", weights = [1.0], means = [[1.0, 0.0]], stds = [0.5] }"#,
                "",
            )
            .edit("steps = 5", "")
            .issues(2)
            .expect(INVALID, &["dynamics.score: missing", "dynamics.steps: missing"]),
        reverse_case("reverse: score mean of the wrong length")
            .edit("means = [[1.0, 0.0]]", "means = [[1.0, 0.0, 2.0]]")
            .expect(INVALID, &["dynamics.score.means", "particles.dim = 2"]),
        reverse_case("reverse: samples score with the wrong columns")
            .edit(
                r#"score = { kind = "mixture", weights = [1.0], means = [[1.0, 0.0]], stds = [0.5] }"#,
                r#"score = { kind = "samples", path = "data.npy" }"#,
            )
            .file("data.npy", npy("<f8", "(2, 3)", &f8(&[0.0; 6])))
            .expect(INVALID, &["dynamics.score.path", "2 columns", "has 3"]),
        reverse_case("reverse: samples score file missing")
            .edit(
                r#"score = { kind = "mixture", weights = [1.0], means = [[1.0, 0.0]], stds = [0.5] }"#,
                r#"score = { kind = "samples", path = "nowhere.npy" }"#,
            )
            .expect(INVALID, &["dynamics.score.path", "nowhere.npy"]),
        reverse_case("probability flow: unknown integrator")
            .edit(r#"kind = "reverse_sde""#, "kind = \"probability_flow\"\nintegrator = \"rk4\"")
            .expect(INVALID, &[r#"dynamics.integrator = "rk4""#, r#""euler""#, r#""heun""#]),
        reverse_case("reverse: unknown time grid")
            .edit("steps = 5", "steps = 5\ngrid = \"log\"")
            .expect(INVALID, &[r#"dynamics.grid = "log""#, r#""uniform""#, r#""geometric""#]),
        reverse_case("reverse SDE has no integrator key")
            .edit("steps = 5", "steps = 5\nintegrator = \"heun\"")
            .expect(INVALID, &["dynamics.integrator", "unknown key"]),
        sd_flow_case("sd_flow: sigma schedule increasing, eta negative, approximate a string")
            .edit("sigma = 0.3", "sigma = { start = 0.1, end = 0.5 }")
            .edit("eta = 0.5", "eta = -0.5\napproximate = \"yes\"")
            .issues(3)
            .expect(INVALID, &["dynamics.sigma.end = 0.5", "at most start = 0.1", "dynamics.eta = -0.5", "dynamics.approximate"]),
        sd_flow_case("sd_flow: missing target and steps")
            .edit(TARGET, "")
            .edit("steps = 3", "")
            .issues(2)
            .expect(INVALID, &["dynamics.target: missing", "dynamics.steps: missing"]),
        sd_flow_case("sd_flow: target of the wrong kind and an unknown key")
            .edit(TARGET, "target = { kind = \"picture\", path = \"a.png\" }\nsigmaa = 1.0")
            .issues(2)
            .expect(INVALID, &["dynamics.target.kind = \"picture\"", "\"image\"", "dynamics.sigmaa", "sigma"]),
        sd_flow_case("sd_flow: image target that is not an image, in 2D only")
            .edit(TARGET, "target = { kind = \"image\", path = \"t.png\", range = [[0.0, 1.0], [1.0, 0.0]] }")
            .file("t.png", b"not a png".to_vec())
            .issues(2)
            .expect(INVALID, &["dynamics.target.path", "not a readable image", "dynamics.target.range"]),
        sd_flow_case("sd_flow: samples target with the wrong columns")
            .edit(TARGET, "target = { kind = \"samples\", path = \"t.npy\" }")
            .file("t.npy", npy("<f8", "(2, 3)", &f8(&[0.0; 6])))
            .expect(INVALID, &["dynamics.target.path", "2 columns", "has 3"]),
        sd_flow_case("sd_flow: exact score of a samples target")
            .edit(TARGET, "target = { kind = \"samples\", path = \"t.npy\" }\nexact_score = true")
            .file("t.npy", npy("<f8", "(2, 2)", &f8(&[0.0; 4])))
            .expect(INVALID, &["dynamics.exact_score = true", "mixture targets only"]),
        sd_flow_case("sd_flow refuses shards")
            .args(&["--shard-count", "2", "--shard-index", "0"])
            .expect(INVALID, &["sd_flow couples every particle", "--shard-count 1"]),
        case("mmd_flow: negative noise and zero bandwidth")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"mmd_flow\"\ntarget = { kind = \"mixture\", weights = [1.0], means = [[1.0, 0.0]], stds = [0.5] }\nnoise = -0.1\nbandwidth = 0.0\nsteps = 3",
            )
            .issues(2)
            .expect(INVALID, &["dynamics.noise = -0.1", "dynamics.bandwidth = 0.0"]),
        case("svgd: target count out of range")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"svgd\"\ntarget = { kind = \"mixture\", weights = [1.0], means = [[1.0, 0.0]], stds = [0.5], count = 0 }\nsteps = 3",
            )
            .expect(INVALID, &["dynamics.target.count = 0", "an integer from 1"]),
        case("interaction: unknown pair potential and zero width")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"interaction\"\npotential = { kind = \"double_well\" }\ninteraction = { kind = \"gaussian\", strength = 1.0, width = 0.0 }\ndt = 1e-3\nsteps = 3",
            )
            .expect(INVALID, &["dynamics.interaction.width = 0.0", "> 0"]),
        case("interaction: pair expression that does not parse")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"interaction\"\npotential = { kind = \"double_well\" }\ninteraction = { expr = \"eps*exp(-r^2\", params = { eps = 1.0 } }\ndt = 1e-3\nsteps = 3",
            )
            .expect(INVALID, &["dynamics.interaction.expr", "eps*exp(-r^2"]),
        case("interaction: pair expression with a param nothing reads")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"interaction\"\npotential = { kind = \"double_well\" }\ninteraction = { expr = \"0.5*k*r^2\", params = { k = 1.0, q = 2.0 } }\ndt = 1e-3\nsteps = 3",
            )
            .expect(INVALID, &["dynamics.interaction.params.q", "no expression reads this one"]),
        sd_flow_case("sd_flow: sigma expression not positive at a step")
            .edit("sigma = 0.3", "sigma = { expr = \"0.5 - t\" }")
            .edit("steps = 3", "steps = 11")
            .expect(INVALID, &["dynamics.sigma.expr", "at step 5 (t = 0.5) sigma = 0"]),
        reverse_case("reverse: beta expression negative before t_end")
            .edit(
                r#"{ kind = "vp", beta_min = 0.1, beta_max = 20.0 }"#,
                r#"{ kind = "vp", beta = { expr = "1 - 2*t" } }"#,
            )
            .expect(INVALID, &["dynamics.process.beta.expr", "on [0, t_end = 1]"]),
        reverse_case("reverse: beta expression beside beta_min")
            .edit(
                r#"{ kind = "vp", beta_min = 0.1, beta_max = 20.0 }"#,
                r#"{ kind = "vp", beta_min = 0.1, beta = { expr = "1 + t" } }"#,
            )
            .expect(INVALID, &["dynamics.process.beta_min", "no beta_min beside"]),
        case("prior init without reverse dynamics")
            .edit(r#"init = { kind = "point", at = [0.0, 0.0] }"#, r#"init = { kind = "prior" }"#)
            .expect(INVALID, &["particles.init.kind", "reverse_sde, probability_flow", "langevin"]),
        case("forward: negative dt and unknown integrator")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"forward\"\nprocess = { kind = \"ou\" }\nintegrator = \"exactly\"\ndt = -1.0\nsteps = 5",
            )
            .issues(2)
            .expect(INVALID, &["dynamics.dt = -1.0", r#"dynamics.integrator = "exactly""#, r#"did you mean "exact"?"#]),
        case("gradient flow: negative friction")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"gradient_flow\"\npotential = { kind = \"double_well\" }\nfriction = -1.0\ndt = 1e-3\nsteps = 5",
            )
            .expect(INVALID, &["dynamics.friction = -1.0", ">= 0"]),
        case("gradient flow: temperature is not a key")
            .edit(LANGEVIN_DYNAMICS, "kind = \"gradient_flow\"\npotential = { kind = \"double_well\" }\ntemperature = 1.0\ndt = 1e-3\nsteps = 5")
            .expect(INVALID, &["dynamics.temperature", "unknown key"]),
        reverse_case("reverse: a grid reference")
            .append("\n[output]\nreference = \"fokker_planck\"\n")
            .expect(INVALID, &["output.reference", r#""analytic" for kind = reverse_sde"#]),
        case("forward: analytic reference from a point")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"forward\"\nprocess = { kind = \"vp\" }\ndt = 1e-3\nsteps = 5",
            )
            .append("\n[output]\nreference = \"analytic\"\n")
            .expect(INVALID, &["output.reference", "gaussian or mixture"]),
        case("gradient flow: no reference")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"gradient_flow\"\npotential = { kind = \"double_well\" }\ndt = 1e-3\nsteps = 5",
            )
            .append("\n[output]\nreference = \"boltzmann\"\n")
            .expect(INVALID, &["output.reference", "for kind = gradient_flow", "temperature > 0"]),
        case("too many trajectories")
            .append("\n[output]\ntrajectories = 65\n")
            .expect(INVALID, &["output.trajectories = 65", "from 0 to 64"]),
        case("no such adapter")
            .args(&["--adapter", "no-such-adapter"])
            .expect(NO_ADAPTER, &["no usable GPU adapter", "no-such-adapter", "mesa-vulkan-drivers"]),
        // --- references and marginals (issue 6) ----------------------------------------
        case("unknown reference kind")
            .append("\n[output]\nreference = \"exact\"\n")
            .expect(INVALID, &["output.reference", "exact", "fokker_planck", "boltzmann", "analytic"]),
        case("reference with mueller_brown on one of its coupled axes")
            .edit("dim = 2", "dim = 3")
            .edit(POINT_INIT, r#"kind = "point", at = [0.0, 0.0, 0.0]"#)
            .edit(r#"kind = "double_well" }"#, r#"kind = "mueller_brown", scale = 0.1 }"#)
            .append("\n[output]\nreference = \"fokker_planck\"\nhistogram = { axes = [0, 2] }\n")
            .expect(INVALID, &["output.reference", "mueller_brown couples axes 0 and 1", "axes [0, 2]"]),
        case("reference with a mixture potential on fewer axes than dim")
            .edit("dim = 2", "dim = 3")
            .edit(POINT_INIT, r#"kind = "point", at = [0.0, 0.0, 0.0]"#)
            .edit(
                r#"kind = "double_well" }"#,
                r#"kind = "mixture", weights = [1.0], means = [[0.0, 0.0, 0.0]], stds = [1.0] }"#,
            )
            .append("\n[output]\nreference = \"boltzmann\"\n")
            .expect(INVALID, &["output.reference", "mixture potential couples all 3 axes"]),
        case("reference with a coupled quadratic")
            .edit("dim = 2", "dim = 3")
            .edit(POINT_INIT, r#"kind = "point", at = [0.0, 0.0, 0.0]"#)
            .edit(
                r#"kind = "double_well" }"#,
                &quadratic("[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.5, 0.0, 1.0]]"),
            )
            .append("\n[output]\nreference = \"fokker_planck\"\n")
            .expect(INVALID, &["output.reference", "couples axis 0", "axis 2", "block-diagonal"]),
        case("analytic reference without a closed form")
            .append("\n[output]\nreference = \"analytic\"\n")
            .expect(INVALID, &["output.reference", "only for a quadratic potential"]),
        case("boltzmann reference at zero temperature")
            .edit("temperature = 1.0", "temperature = 0.0")
            .append("\n[output]\nreference = \"boltzmann\"\n")
            .expect(INVALID, &["output.reference", "temperature > 0"]),
        case("reference from a point outside the histogram")
            .edit(POINT_INIT, r#"kind = "point", at = [3.0, 0.0]"#)
            .append("\n[output]\nreference = \"fokker_planck\"\nhistogram = { range = [[-2.0, 2.0], [-2.0, 2.0]] }\n")
            .expect(INVALID, &["output.reference", "particles.init.at[0] = 3", "outside"]),
        case("marginal with one axis")
            .append("\n[output]\nmarginals = [[1]]\n")
            .expect(INVALID, &["output.marginals[0].axes", "two distinct axes"]),
        case("marginal with an axis beyond dim")
            .append("\n[output]\nmarginals = [[0, 5]]\n")
            .expect(INVALID, &["output.marginals[0].axes", "from 0 to 1"]),
        case("marginals is not a list")
            .append("\n[output]\nmarginals = 3\n")
            .expect(INVALID, &["output.marginals = 3", "axis pairs"]),
        // --- user models (expressions and WGSL files) ---------------------------------------
        case("expression with an unclosed parenthesis")
            .edit(dw, r#"expr = "exp(x * (y + 1)" }"#)
            .expect(INVALID, &["dynamics.potential.expr", "expected ')'", "at 16"]),
        case("expression with an unknown name")
            .edit(dw, r#"expr = "0.5*kk*x^2", params = { k = 2 } }"#)
            .expect(INVALID, &["unknown name 'kk' at 5", "did you mean 'k'?"]),
        case("expression uses an axis beyond dim")
            .edit(dw, r#"expr = "x^2 + y^2 + z^2" }"#)
            .expect(INVALID, &["dynamics.potential.expr", "'z' is axis 2 but dim = 2", "at 13"]),
        case("expression param nobody reads")
            .edit(dw, r#"expr = "x^2 + y^2", params = { k = 2 } }"#)
            .expect(INVALID, &["dynamics.potential.params.k", "no expression reads"]),
        case("expression param named like a coordinate")
            .edit(dw, r#"expr = "x^2", params = { x1 = 2 } }"#)
            .expect(INVALID, &["dynamics.potential.params.x1", "reserved"]),
        case("expression is a number, not a string")
            .edit(dw, r#"expr = 3 }"#)
            .expect(INVALID, &["dynamics.potential.expr = 3", "a string"]),
        case("temperature schedule negative during the run")
            .edit("temperature = 1.0", r#"temperature = { expr = "1 - 300*t" }"#)
            .expect(INVALID, &["dynamics.temperature.expr", "T(0.004) = -0.19999"]),
        case("temperature schedule reading a coordinate")
            .edit("temperature = 1.0", r#"temperature = { expr = "1 + x" }"#)
            .expect(INVALID, &["dynamics.temperature.expr", "'x' is a coordinate"]),
        case("sde drift of the wrong length")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\ndrift = [\"-x\"]\ndt = 1e-3\nsteps = 5")
            .expect(INVALID, &["dynamics.drift", "one expression per axis", "particles.dim = 2"]),
        case("sde diffusion negative on the histogram box")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"sde\"\ndrift = [\"-x\", \"-y\"]\ndiffusion = { expr = \"0.1 + 0.2*x\" }\ndt = 1e-3\nsteps = 5",
            )
            .append("\n[output]\nhistogram = { range = [[-2.0, 2.0], [-2.0, 2.0]] }\n")
            .expect(INVALID, &["dynamics.diffusion", "D(x, t) >= 0", "D = -0.3"]),
        case("sde drift with a syntax error")
            .edit(
                LANGEVIN_DYNAMICS,
                "kind = \"sde\"\ndrift = [\"-x\", \"-y +\"]\ndt = 1e-3\nsteps = 5",
            )
            .expect(INVALID, &["dynamics.drift[1]", "expected a number, a name or '('", "at 5"]),
        // --- references of user models -----------------------------------------------------
        case("boltzmann reference under a temperature schedule")
            .edit("temperature = 1.0", r#"temperature = { expr = "1 + exp(-t)" }"#)
            .append("\n[output]\nreference = \"boltzmann\"\n")
            .expect(INVALID, &["output.reference", "constant dynamics.temperature", "no stationary density"]),
        case("analytic reference under a temperature schedule")
            .edit(dw, &quadratic("[[1.0, 0.0], [0.0, 1.0]]"))
            .edit("temperature = 1.0", r#"temperature = { expr = "1 + exp(-t)" }"#)
            .append("\n[output]\nreference = \"analytic\"\n")
            .expect(INVALID, &["output.reference", "constant dynamics.temperature", "Ornstein–Uhlenbeck"]),
        case("boltzmann reference with a moving potential")
            .edit(dw, r#"expr = "0.5*(x - t)^2 + 0.5*y^2" }"#)
            .append("\n[output]\nreference = \"boltzmann\"\n")
            .expect(INVALID, &["output.reference", "does not depend on t"]),
        case("sde reference on an axis whose drift reads another")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\ndrift = [\"-x + y\", \"-y\"]\ndt = 1e-3\nsteps = 5")
            .append("\n[output]\nreference = \"fokker_planck\"\nhistogram = { axes = [0] }\n")
            .expect(INVALID, &["output.reference", "drift of axis 0", "reads x1", "axes [0]"]),
        case("sde reference whose diffusion reads another axis")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\ndrift = [\"-x\", \"-y\"]\ndiffusion = \"1 + 0.5*tanh(y)\"\ndt = 1e-3\nsteps = 5")
            .append("\n[output]\nreference = \"fokker_planck\"\nhistogram = { axes = [0] }\n")
            .expect(INVALID, &["output.reference", "the diffusion D reads x1"]),
        case("sde analytic reference")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\ndrift = [\"-x\", \"-y\"]\ndt = 1e-3\nsteps = 5")
            .append("\n[output]\nreference = \"analytic\"\n")
            .expect(INVALID, &["output.reference", "no closed form for kind = sde", "fokker_planck"]),
        case("sde boltzmann reference in 2D")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\ndrift = [\"-x\", \"-y\"]\ndt = 1e-3\nsteps = 5")
            .append("\n[output]\nreference = \"boltzmann\"\n")
            .expect(INVALID, &["output.reference", "1D only"]),
        case("sde boltzmann reference with a drift that depends on t")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\ndrift = [\"-x*(1 + t)\", \"-y\"]\ndt = 1e-3\nsteps = 5")
            .append("\n[output]\nreference = \"boltzmann\"\nhistogram = { axes = [0] }\n")
            .expect(INVALID, &["output.reference", "do not depend on t"]),
        case("sde boltzmann reference where D vanishes")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\ndrift = [\"-x\", \"-y\"]\ndiffusion = \"x^2\"\ndt = 1e-3\nsteps = 5")
            .append("\n[output]\nreference = \"boltzmann\"\nhistogram = { axes = [0], range = [[-2.0, 2.0]] }\n")
            .expect(INVALID, &["output.reference", "D > 0"]),
        case("WGSL potential that does not compile")
            .edit(dw, r#"wgsl = "u.wgsl" }"#)
            .file("u.wgsl", "fn user_gradient(x: Point, t: f32) -> Point {\n    return x * 2.0;\n}\n")
            .expect(INVALID, &["dynamics.potential.wgsl", "naga says", "x * 2.0"]),
        case("WGSL potential file missing")
            .edit(dw, r#"wgsl = "nothing.wgsl" }"#)
            .expect(INVALID, &["dynamics.potential.wgsl", "a readable WGSL file"]),
        case("mala with a temperature schedule")
            .edit("temperature = 1.0", "temperature = { expr = \"2*exp(-t)\" }\nmala = true")
            .expect(INVALID, &["dynamics.temperature", "constant temperature > 0 with mala = true"]),
        case("mala at zero temperature")
            .edit("temperature = 1.0", "temperature = 0.0\nmala = true")
            .expect(INVALID, &["dynamics.temperature", "temperature > 0 with mala = true"]),
        case("mala with a potential that reads t")
            .edit(dw, "expr = \"(1 + t)*(x^2 + y^2)\" }\nmala = true")
            .expect(INVALID, &["dynamics.potential", "does not read t with mala = true"]),
        case("mala with a WGSL potential without user_value")
            .edit(dw, "wgsl = \"u.wgsl\" }\nmala = true")
            .file("u.wgsl", "fn user_gradient(x: Point, t: f32) -> Point {\n    return x;\n}\n")
            .expect(INVALID, &["dynamics.potential.wgsl", "fn user_value(x: Point, t: f32) -> f32", "mala = true"]),
        case("mala not a boolean")
            .edit("temperature = 1.0", "temperature = 1.0\nmala = \"yes\"")
            .expect(INVALID, &["dynamics.mala", "true (Metropolis-adjusted proposals) or false"]),
        case("reflecting wall with low >= high")
            .append("\n[boundary]\nx = { kind = \"reflecting\", low = 1.0, high = 1.0 }\n")
            .expect(INVALID, &["boundary.x.high", "> low = 1", "is empty"]),
        case("one axis given twice, periodic and reflecting")
            .append("\n[boundary]\nx = { kind = \"reflecting\", low = -1.0, high = 1.0 }\nx0 = { kind = \"periodic\", low = 0.0, high = 1.0 }\n")
            .expect(INVALID, &["boundary.x", "axis 0 is already given", "one spec per axis"]),
        case("wall on an axis beyond dim")
            .append("\n[boundary]\nz = { kind = \"periodic\", low = 0.0, high = 1.0 }\n")
            .expect(INVALID, &["boundary.z", "axis 2", "particles.dim = 2"]),
        case("first-passage region naming an axis beyond dim")
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = { x5 = [0.0, 1.0] }\n")
            .expect(INVALID, &["observe.first_passage[0].region.x5", "axis 5", "particles.dim = 2"]),
        case("empty first-passage box")
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = { x = [1.0, 0.5] }\n")
            .expect(INVALID, &["observe.first_passage[0].region.x", "a <= b", "empty"]),
        case("first-passage region with no axis")
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = {}\n")
            .expect(INVALID, &["observe.first_passage[0].region", "at least one axis"]),
        case("half-space with a zero normal")
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = { normal = [0.0, 0.0], offset = 1.0 }\n")
            .expect(INVALID, &["observe.first_passage[0].region.normal", "non-zero normal"]),
        case("two first-passage targets with one name")
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = { x = [0.0, 1.0] }\n[[observe.first_passage]]\nname = \"a\"\nregion = { y = [0.0, 1.0] }\n")
            .expect(INVALID, &["observe.first_passage[1].name", "a name no other first_passage target has"]),
        case("first passage over 2^32 - 1 steps")
            .edit("steps = 5", "steps = 4294967295")
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = { x = [0.0, 1.0] }\n")
            .expect(INVALID, &["observe.first_passage", "fewer than 4294967295 steps"]),
        case("walls with a kind that has none")
            .edit(LANGEVIN_DYNAMICS, &format!("kind = \"sd_flow\"\n{TARGET}\nsigma = 0.3\neta = 0.5\nsteps = 3"))
            .append("\n[boundary]\nx = { kind = \"reflecting\", low = -1.0, high = 1.0 }\n")
            .expect(INVALID, &["boundary", "dynamics.kind = \"sd_flow\"", "deterministic generative flows on all of R^d", "kind = \"langevin\""]),
        reverse_case("walls with reverse diffusion")
            .append("\n[boundary]\nx = { kind = \"periodic\", low = -1.0, high = 1.0 }\n")
            .expect(INVALID, &["boundary", "dynamics.kind = \"reverse_sde\"", "generative diffusion", "score"]),
        case("sde with a wall and a grid reference over another range")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\ndrift = [\"-x\", \"-y\"]\ndiffusion = \"0.5\"\ndt = 1e-3\nsteps = 5")
            .append("\n[output]\nhistogram = { axes = [0], bins = 8, range = [[-2.0, 2.0]] }\nreference = \"fokker_planck\"\n[boundary]\nx = { kind = \"reflecting\", low = -1.0, high = 1.0 }\n")
            .expect(INVALID, &["boundary.x", "output.histogram.range[0]"]),
        case("periodic axis with mala")
            .edit("temperature = 1.0", "temperature = 1.0\nmala = true")
            .append("\n[boundary]\nx = { kind = \"periodic\", low = -1.0, high = 1.0 }\n")
            .expect(INVALID, &["boundary", "mala = true takes reflecting walls but no periodic axis", "images"]),
        case("absorbing target with interacting particles")
            .edit(LANGEVIN_DYNAMICS, "kind = \"interaction\"\npotential = { kind = \"double_well\" }\ninteraction = { kind = \"quadratic\", strength = 1.0 }\ndt = 1e-3\nsteps = 3")
            .append("\n[boundary]\nx = { kind = \"reflecting\", low = -2.0, high = 2.0 }\n[[observe.first_passage]]\nname = \"a\"\nregion = { x = [1.0, 2.0] }\nabsorb = true\n")
            .expect(INVALID, &["observe.first_passage", "absorb = true is not supported with interacting particles"]),
        case("bridge that is not true or false")
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = { x = [0.0, 1.0] }\nbridge = 1\n")
            .expect(INVALID, &["observe.first_passage[0].bridge", "true (also detect passages between step ends"]),
        case("bridge with mala")
            .edit("temperature = 1.0", "temperature = 1.0\nmala = true")
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = { x = [0.0, 1.0] }\nbridge = true\n")
            .expect(INVALID, &["observe.first_passage[0].bridge", "mala = true: its moves are Metropolis-adjusted"]),
        case("bridge with a kind without constant isotropic noise")
            .edit(LANGEVIN_DYNAMICS, &format!("kind = \"sd_flow\"\n{TARGET}\nsigma = 0.3\neta = 0.5\nsteps = 3"))
            .append("\n[[observe.first_passage]]\nname = \"a\"\nregion = { x = [0.0, 1.0] }\nbridge = true\n")
            .expect(INVALID, &["observe.first_passage[0].bridge", "dynamics.kind = \"sd_flow\"", "constant isotropic noise"]),
        case("WGSL sde without user_diffusion")
            .edit(LANGEVIN_DYNAMICS, "kind = \"sde\"\nwgsl = \"m.wgsl\"\ndt = 1e-3\nsteps = 5")
            .file("m.wgsl", "fn user_drift(x: Point, t: f32) -> Point {\n    return x;\n}\n")
            .expect(INVALID, &["dynamics.wgsl", "user_diffusion", "naga says"]),
    ]
}

// ------------------------------------------------------------------------------------------
// Running a case.

/// Every file and directory under `root`, with file contents (None for directories).
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel, None);
                walk(root, &path, out);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn run_case(c: &Case) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = tmp.path();
    if let Some(s) = &c.scenario {
        std::fs::write(dir.join("s.toml"), s).unwrap();
    }
    for (name, entry) in &c.files {
        match entry {
            Entry::Dir => std::fs::create_dir_all(dir.join(name)).unwrap(),
            Entry::File(bytes) => std::fs::write(dir.join(name), bytes).unwrap(),
        }
    }
    let before = tree(dir);
    let runtime = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out_existed = dir.join(c.out).exists();

    let mut args = vec!["run", "s.toml", "--out", c.out, "--progress", "none"];
    args.extend_from_slice(&c.args);
    let output = Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(&args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        // Without XDG_RUNTIME_DIR fokker makes /tmp/fokker-runtime-<pid> and leaves it behind;
        // give it one that is removed with the case.
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .map_err(|e| format!("cannot run fokker: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let shown = format!(
        "fokker {}\n--- stderr:\n{stderr}--- stdout:\n{stdout}",
        args.join(" ")
    );

    let mut problems = Vec::new();
    match output.status.code() {
        Some(code) if code == c.code => {}
        Some(code) => problems.push(format!("exit code {code}, expected {}", c.code)),
        None => problems.push(format!("killed by a signal, expected exit {}", c.code)),
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push("it panicked".into());
    }
    for f in &c.stderr {
        if !stderr.contains(f) {
            problems.push(format!("stderr lacks {f:?}"));
        }
    }
    if let Some(n) = c.issue_lines {
        let got = stderr.lines().filter(|l| l.starts_with("  - ")).count();
        if got != n {
            problems.push(format!(
                "{got} issue lines, expected {n} (every problem, once)"
            ));
        }
    }
    if !stdout.trim().is_empty() {
        problems.push("stdout is not empty (the summary line is for successful runs)".into());
    }
    if !out_existed && dir.join(c.out).exists() {
        problems.push(format!("the output directory {} was created", c.out));
    }
    let after = tree(dir);
    if after != before {
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| k.display().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        problems.push(format!(
            "the working directory changed: {}",
            changed.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n  {}\n{shown}", c.name, problems.join("\n  ")))
    }
}

/// Runs cases a few at a time and returns every failure.
fn run_all(cases: &[Case]) -> Vec<String> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(c) = cases.get(i) else { break };
                    if let Err(e) = run_case(c) {
                        failures.lock().unwrap().push((i, e));
                    }
                }
            });
        }
    });
    let mut f = failures.into_inner().unwrap();
    f.sort();
    f.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn the_catalogue_has_at_least_30_distinct_cases() {
    let cases = catalogue();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
}

#[test]
fn every_bad_input_is_refused_with_its_message_and_exit_code() {
    let cases = catalogue();
    let failures = run_all(&cases);
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_base_scenario_is_valid() {
    // Guards the catalogue: each case must fail because of its own edit, not the base.
    let reverse = reverse_case("base").scenario.unwrap();
    for base in [BASE.as_bytes(), reverse.as_slice()] {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("s.toml"), base).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_fokker"))
            .args([
                "run",
                "s.toml",
                "--out",
                "run",
                "--progress",
                "none",
                "--dry-run",
            ])
            .current_dir(tmp.path())
            .env("XDG_RUNTIME_DIR", tmp.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            !tmp.path().join("run").exists(),
            "--dry-run wrote the output directory"
        );
    }
}

/// A plan far beyond any adapter's memory is refused before anything is allocated or
/// written: 8e16 bytes of state is more chunks than any device can hold, and on a software
/// adapter more than the host has.
#[test]
fn a_plan_beyond_the_adapters_memory_is_refused_before_allocation() {
    let c = case("80 PB of particle state")
        .edit("count = 1000", "count = 10_000_000_000_000_000")
        .expect(75, &["memory", "particles.count"]);
    if let Err(e) = run_case(&c) {
        panic!("{e}");
    }
}
