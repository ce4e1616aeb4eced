//! The native module of the `fokker` Python package (`fokker._fokker`): runs scenarios with
//! the library the command line uses (docs/architecture.md, "Python package"). The Python
//! part (`pysrc/fokker`) builds the user-facing API on these few functions.

use fokker::error::{Error, ScenarioIssue};
use fokker::gpu::{AdapterChoice, list_adapters};
use fokker::run::manifest::SnapshotRecord;
use fokker::run::progress::ProgressMode;
use fokker::run::{self, Hooks, RunHooks, RunOptions, Shard};
use fokker::scenario::data::{ArrayInput, ArrayInputs, table_from_values};
use fokker::scenario::{self, Resolved};
use fokker::simulation::Layout;
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The Python exception for a library error: the classes of `fokker.errors`, carrying the
/// message the command line prints and its exit code.
fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let errors = py.import("fokker.errors")?;
        let message = e.to_string();
        let exit_code = e.exit_code();
        let class = match &e {
            Error::Scenario { issues, .. } => {
                let issues: Vec<(String, String, String)> = issues
                    .iter()
                    .map(|i| (i.key.clone(), i.value.clone(), i.allowed.clone()))
                    .collect();
                let err = errors
                    .getattr("ScenarioError")?
                    .call1((message, issues, exit_code))?;
                return Ok(PyErr::from_value(err));
            }
            Error::Data { .. } => "DataError",
            Error::Usage(_) => "UsageError",
            Error::NoAdapter(_) => "NoAdapterError",
            Error::Io { .. } | Error::Output(_) => "OutputError",
            Error::Device(_) | Error::DeviceFailed { .. } => "DeviceError",
            Error::Interrupted { .. } => "RunInterrupted",
            Error::Diverged { .. } => "DivergedError",
        };
        let err = errors.getattr(class)?.call1((message, exit_code))?;
        Ok(PyErr::from_value(err))
    };
    make().unwrap_or_else(|import_failed| import_failed)
}

/// A TOML value from a Python one: dicts, lists/tuples, str, bool, int, float (NumPy scalars
/// too) and arrays (`data` keys: an in-memory table; elsewhere: a list). Problems are issues.
struct Converter {
    arrays: Vec<ArrayInput>,
    issues: Vec<ScenarioIssue>,
}

impl Converter {
    fn issue(&mut self, key: &str, v: &Bound<'_, PyAny>, allowed: &str) {
        let shown = v.repr().map(|r| r.to_string()).unwrap_or_default();
        self.issues.push(ScenarioIssue {
            key: key.to_string(),
            value: shown,
            allowed: allowed.to_string(),
        });
    }

    fn value(&mut self, key: &str, v: &Bound<'_, PyAny>) -> Option<toml::Value> {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        if let Ok(a) = v.cast::<PyUntypedArray>() {
            if leaf == "data" {
                return Some(self.array(a));
            }
            return match v.call_method0("tolist") {
                Ok(list) => self.value(key, &list),
                Err(_) => {
                    self.issue(key, v, "an array that converts to a list");
                    None
                }
            };
        }
        if v.is_instance_of::<PyBool>() {
            return v.extract::<bool>().ok().map(toml::Value::Boolean);
        }
        if v.is_instance_of::<PyInt>() || v.hasattr("__index__").unwrap_or(false) {
            return match v.extract::<i64>() {
                Ok(i) => Some(toml::Value::Integer(i)),
                Err(_) => {
                    self.issue(key, v, "an integer that fits in 64 bits");
                    None
                }
            };
        }
        if v.is_instance_of::<PyFloat>() || v.hasattr("__float__").unwrap_or(false) {
            return match v.extract::<f64>() {
                Ok(x) => Some(toml::Value::Float(x)),
                Err(_) => {
                    self.issue(key, v, "a number");
                    None
                }
            };
        }
        if let Ok(s) = v.cast::<PyString>() {
            return Some(toml::Value::String(s.to_string()));
        }
        if let Ok(d) = v.cast::<PyDict>() {
            return self.table(key, d).map(toml::Value::Table);
        }
        if let Ok(items) = v.extract::<Vec<Bound<'_, PyAny>>>()
            && (v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>())
        {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                out.push(self.value(&format!("{key}[{i}]"), item)?);
            }
            return Some(toml::Value::Array(out));
        }
        self.issue(
            key,
            v,
            "a number, string, bool, list, dict or (for data) a NumPy array",
        );
        None
    }

    fn table(&mut self, key: &str, d: &Bound<'_, PyDict>) -> Option<toml::Table> {
        let mut out = toml::Table::new();
        let mut ok = true;
        for (k, v) in d.iter() {
            let Ok(name) = k.extract::<String>() else {
                self.issue(key, &k, "string keys");
                ok = false;
                continue;
            };
            let path = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            match self.value(&path, &v) {
                Some(value) => {
                    out.insert(name, value);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Registers an array as a data table and returns the token that stands for it.
    fn array(&mut self, a: &Bound<'_, PyUntypedArray>) -> toml::Value {
        let shape = a.shape().to_vec();
        let dtype = a.dtype().to_string();
        let description = format!("{dtype} array of shape {}", shape_text(&shape));
        let (rows, dim) = match shape[..] {
            [n] => (n, 1),
            [n, d] => (n, d),
            _ => (0, 0),
        };
        let table = if !matches!(shape.len(), 1 | 2) {
            Err(format!(
                "it has {} dimensions; expected 1D (N,) or 2D (N, d)",
                shape.len()
            ))
        } else if let Ok(a) = a.cast::<PyArrayDyn<f32>>() {
            let view = a.readonly();
            table_from_values(rows, dim, view.as_array().iter().copied())
        } else if let Ok(a) = a.cast::<PyArrayDyn<f64>>() {
            let view = a.readonly();
            table_from_values(rows, dim, view.as_array().iter().copied())
        } else {
            Err(format!("dtype {dtype} is not float32 or float64"))
        };
        self.arrays.push(ArrayInput { description, table });
        toml::Value::String(ArrayInputs::token(self.arrays.len() - 1))
    }
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `set=` overrides as `--set KEY=VALUE` strings (values written as TOML).
fn overrides(set: Option<&Bound<'_, PyDict>>, conv: &mut Converter) -> PyResult<Vec<String>> {
    let mut out = Vec::new();
    let Some(set) = set else {
        return Ok(out);
    };
    for (k, v) in set.iter() {
        let key: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("set= keys are dotted scenario keys (str)"))?;
        if let Some(value) = conv.value(&key, &v) {
            out.push(format!("{key}={value}"));
        }
    }
    Ok(out)
}

/// Resolves a scenario given as a path or a dict.
fn resolve(
    py: Python<'_>,
    scenario: &Bound<'_, PyAny>,
    out: &Path,
    set: Option<&Bound<'_, PyDict>>,
    seed: Option<u64>,
) -> PyResult<Resolved> {
    let mut conv = Converter {
        arrays: Vec::new(),
        issues: Vec::new(),
    };
    let set = overrides(set, &mut conv)?;
    let result = if let Ok(d) = scenario.cast::<PyDict>() {
        let root = conv.table("", d);
        match root {
            Some(root) if conv.issues.is_empty() => {
                let arrays = ArrayInputs {
                    dir: out.join("inputs"),
                    entries: std::mem::take(&mut conv.arrays),
                };
                scenario::resolve_table(root, "<dict>", Path::new(""), &set, seed, arrays)
            }
            _ => Err(Error::Scenario {
                source_name: "<dict>".into(),
                issues: std::mem::take(&mut conv.issues),
            }),
        }
    } else {
        let path: PathBuf = scenario.extract().map_err(|_| {
            PyTypeError::new_err("scenario: a path to a TOML file (str or os.PathLike) or a dict")
        })?;
        if !conv.issues.is_empty() {
            return Err(to_py(
                py,
                Error::Scenario {
                    source_name: path.display().to_string(),
                    issues: conv.issues,
                },
            ));
        }
        scenario::load(&path, &set, seed)
    };
    result.map_err(|e| to_py(py, e))
}

/// The Python callbacks and signal checks of one run. A callback that raises (a
/// KeyboardInterrupt included) or a pending Ctrl-C interrupts the run like SIGINT: it
/// checkpoints at the next stop check and ends `interrupted`; the first exception is raised
/// when the run has returned.
struct PyHooks {
    on_progress: Option<Py<PyAny>>,
    on_snapshot: Option<Py<PyAny>>,
    interrupt: Arc<AtomicBool>,
    error: Mutex<Option<PyErr>>,
}

impl PyHooks {
    fn fail(&self, e: PyErr) {
        if let Ok(mut slot) = self.error.lock()
            && slot.is_none()
        {
            *slot = Some(e);
        }
        self.interrupt.store(true, Ordering::SeqCst);
    }

    fn call(&self, f: &Option<Py<PyAny>>, args: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>) {
        let Some(f) = f else { return };
        Python::attach(|py| {
            let result = args(py).and_then(|a| f.call1(py, a.bind(py).cast::<PyTuple>()?.clone()));
            if let Err(e) = result.and_then(|_| py.check_signals()) {
                self.fail(e);
            }
        });
    }
}

impl RunHooks for PyHooks {
    fn progress(&self, step: u64, steps: u64, time: f64) {
        self.call(&self.on_progress, |py| {
            Ok((step, steps, time).into_pyobject(py)?.into_any().unbind())
        });
    }

    fn snapshot(&self, record: &SnapshotRecord) {
        self.call(&self.on_snapshot, |py| {
            let json =
                serde_json::to_string(record).map_err(|e| PyTypeError::new_err(e.to_string()))?;
            Ok((json,).into_pyobject(py)?.into_any().unbind())
        });
    }

    fn poll(&self) {
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                self.fail(e);
            }
        });
    }
}

fn options(out: PathBuf, force: bool, adapter: &str, hooks: &Arc<PyHooks>) -> PyResult<RunOptions> {
    let adapter: AdapterChoice = adapter
        .parse()
        .map_err(|e| PyTypeError::new_err(format!("adapter={adapter:?}: {e}")))?;
    Ok(RunOptions {
        out,
        force,
        adapter,
        devices: None,
        progress: ProgressMode::None,
        layout: Layout::default(),
        shard: Shard::WHOLE,
        interrupt: hooks.interrupt.clone(),
        checkpoint_every: None,
        stop_at: None,
        fail_device: None,
        hooks: Some(Hooks(hooks.clone())),
    })
}

/// Runs the library call with the GIL released, then raises the first callback exception
/// (or Ctrl-C) if there was one, else the run's error.
fn drive(
    py: Python<'_>,
    hooks: &Arc<PyHooks>,
    work: impl FnOnce() -> fokker::Result<run::RunReport> + Send,
) -> PyResult<()> {
    let result = py.detach(work);
    let raised = hooks.error.lock().ok().and_then(|mut e| e.take());
    match (raised, result) {
        (Some(e), _) => Err(e),
        (None, Ok(_)) => Ok(()),
        (None, Err(e)) => Err(to_py(py, e)),
    }
}

fn hooks(on_progress: Option<Py<PyAny>>, on_snapshot: Option<Py<PyAny>>) -> Arc<PyHooks> {
    Arc::new(PyHooks {
        on_progress,
        on_snapshot,
        interrupt: Arc::new(AtomicBool::new(false)),
        error: Mutex::new(None),
    })
}

/// Resolves `scenario` and writes the run directory `out` (see `fokker.run`).
#[pyfunction(name = "run")]
#[pyo3(signature = (scenario, out, set=None, seed=None, force=false, adapter="auto", on_progress=None, on_snapshot=None))]
#[allow(clippy::too_many_arguments)]
fn run_scenario(
    py: Python<'_>,
    scenario: &Bound<'_, PyAny>,
    out: PathBuf,
    set: Option<&Bound<'_, PyDict>>,
    seed: Option<u64>,
    force: bool,
    adapter: &str,
    on_progress: Option<Py<PyAny>>,
    on_snapshot: Option<Py<PyAny>>,
) -> PyResult<()> {
    let resolved = resolve(py, scenario, &out, set, seed)?;
    let hooks = hooks(on_progress, on_snapshot);
    let opts = options(out, force, adapter, &hooks)?;
    drive(py, &hooks, || run::run(&resolved, &opts))
}

/// Resolves `scenario` and returns its plan hash and plan (JSON), writing nothing.
#[pyfunction]
#[pyo3(signature = (scenario, set=None, seed=None))]
fn plan(
    py: Python<'_>,
    scenario: &Bound<'_, PyAny>,
    set: Option<&Bound<'_, PyDict>>,
    seed: Option<u64>,
) -> PyResult<(String, String)> {
    let resolved = resolve(py, scenario, Path::new("<out>"), set, seed)?;
    let json = serde_json::to_string(&resolved.plan)
        .map_err(|e| to_py(py, Error::Output(e.to_string())))?;
    Ok((resolved.hash, json))
}

/// Continues the interrupted run in `dir` (see `fokker.Run.resume`).
#[pyfunction]
#[pyo3(signature = (dir, adapter="auto", on_progress=None, on_snapshot=None))]
fn resume(
    py: Python<'_>,
    dir: PathBuf,
    adapter: &str,
    on_progress: Option<Py<PyAny>>,
    on_snapshot: Option<Py<PyAny>>,
) -> PyResult<()> {
    let hooks = hooks(on_progress, on_snapshot);
    let opts = options(dir.clone(), false, adapter, &hooks)?;
    drive(py, &hooks, || run::resume(&dir, &opts))
}

/// The GPU adapters wgpu can see, as JSON (`fokker adapters --json`).
#[pyfunction]
fn adapters(py: Python<'_>) -> PyResult<String> {
    let list = py.detach(list_adapters);
    serde_json::to_string(&list).map_err(|e| to_py(py, Error::Output(e.to_string())))
}

#[pymodule]
fn _fokker(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(resume, m)?)?;
    m.add_function(wrap_pyfunction!(adapters, m)?)?;
    m.add("PLAN_HASH_FORMAT", scenario::PLAN_HASH_FORMAT)?;
    Ok(())
}
