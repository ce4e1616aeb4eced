"""fokker: GPU particle simulations of Fokker–Planck densities, from Python.

The same library as the ``fokker`` command line (not a second implementation): a run writes
the same self-describing run directory, and the results come back as NumPy arrays::

    import fokker
    run = fokker.run("examples/double_well.toml", out="runs/dw", seed=9)
    h = run.density(-1)          # uint64 counts, numpy histogram2d order
    for snap in run.snapshots:
        snap.step, snap.time, snap.density, snap.moments

Scenarios are TOML files or dicts with the same keys; where a file takes a data file
(``{"kind": "samples", "path": ...}``) a dict may give ``"data": array`` instead.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import numpy as np

from . import _fokker
from .errors import (
    DataError,
    DeviceError,
    DivergedError,
    FokkerError,
    Issue,
    NoAdapterError,
    OutputError,
    RunInterrupted,
    ScenarioError,
    UsageError,
)

__version__ = "0.1.0"


def _quiet_mesa_gl() -> None:
    """Mesa's EGL path complains on stderr when XDG_RUNTIME_DIR is unset (headless batch
    nodes); give it a private directory, removed at exit, as the command line does."""
    if "XDG_RUNTIME_DIR" in os.environ:
        return
    import atexit
    import shutil

    path = tempfile.mkdtemp(prefix="fokker-runtime-")
    os.environ["XDG_RUNTIME_DIR"] = path
    atexit.register(shutil.rmtree, path, True)


_quiet_mesa_gl()

#: How the plan hash is computed (recorded in checkpoints; see the README).
PLAN_HASH_FORMAT: int = _fokker.PLAN_HASH_FORMAT

Scenario = Union[str, "os.PathLike[str]", Mapping[str, Any]]
ProgressCallback = Callable[[int, int, float], object]
SnapshotCallback = Callable[["Snapshot"], object]


class Snapshot:
    """One snapshot of a run: ``step``, ``time``, ``moments`` (dict: ``count``, ``mean``,
    ``cov``), ``density`` (uint64 array, loaded on use), ``record`` (its manifest entry)."""

    def __init__(self, directory: Path, record: Dict[str, Any]) -> None:
        self._dir = directory
        self.record = record
        self.step: int = record["step"]
        self.time: float = record["time"]
        self.moments: Dict[str, Any] = record["moments"]

    @property
    def density(self) -> np.ndarray:
        """The histogram counts (uint64), shape ``output.histogram.bins`` in numpy
        ``histogram2d`` order: ``h[i, j]`` is bin i of the first axis, j of the second."""
        return np.load(self._dir / self.record["density"])

    @property
    def particles(self) -> Optional[np.ndarray]:
        """The positions (count, dim) float32 if this snapshot wrote them, else None."""
        rel = self.record.get("particles")
        return None if rel is None else np.load(self._dir / rel)

    def __repr__(self) -> str:
        return f"Snapshot(step={self.step}, time={self.time:g})"


class Run:
    """A run directory: what ``fokker.run`` wrote or ``fokker.open`` found.

    Everything is read from the directory on use (``manifest`` is re-read each time), so a
    ``Run`` of an interrupted run shows the resumed state after ``resume()``."""

    def __init__(self, path: Union[str, "os.PathLike[str]"], _keep: Any = None) -> None:
        self.path = Path(path)
        # A temporary directory (out=None) lives as long as this object.
        self._keep = _keep
        if not (self.path / "manifest.json").is_file():
            raise OutputError(f"{self.path} is not a fokker run directory (no manifest.json)", 74)

    @property
    def manifest(self) -> Dict[str, Any]:
        """manifest.json as a dict (``status``, ``plan``, ``plan_hash``, ``timings``, ...)."""
        return json.loads((self.path / "manifest.json").read_text())

    @property
    def status(self) -> str:
        """``complete``, ``interrupted``, ``diverged``, ``failed`` or ``running``."""
        return self.manifest["status"]

    @property
    def plan_hash(self) -> str:
        return self.manifest["plan_hash"]

    @property
    def snapshots(self) -> List[Snapshot]:
        """The snapshots written so far, in step order."""
        return [Snapshot(self.path, r) for r in self.manifest["snapshots"]]

    def density(self, i: int = -1) -> np.ndarray:
        """Snapshot ``i``'s counts (uint64, numpy ``histogram2d`` order); -1 is the last."""
        return self.snapshots[i].density

    def particles(self, i: int = -1) -> np.ndarray:
        """Snapshot ``i``'s positions, shape (count, dim) float32 (needs
        ``output.particles = "final"`` for the last snapshot, ``"snapshots"`` for any)."""
        snap = self.snapshots[i]
        p = snap.particles
        if p is None:
            raise UsageError(
                f"snapshot {i} (step {snap.step}) has no particles; set output.particles = "
                '"final" (last snapshot) or "snapshots" (every one)',
                2,
            )
        return p

    def metrics(self) -> Dict[str, np.ndarray]:
        """metrics.csv as columns (name -> float64 array)."""
        table = np.genfromtxt(self.path / "metrics.csv", delimiter=",", names=True)
        table = np.atleast_1d(table)
        assert table.dtype.names is not None
        return {name: np.asarray(table[name], dtype=np.float64) for name in table.dtype.names}

    def resume(
        self,
        *,
        adapter: str = "auto",
        on_progress: Optional[ProgressCallback] = None,
        on_snapshot: Optional[SnapshotCallback] = None,
        progress: Optional[bool] = None,
    ) -> "Run":
        """Continues an interrupted run from its checkpoint; the result is byte-identical to
        an uninterrupted run on the same adapter. Returns self."""
        with _Callbacks(on_progress, on_snapshot, progress, self.path) as cb:
            _fokker.resume(
                self.path, adapter=adapter, on_progress=cb.progress, on_snapshot=cb.snapshot
            )
        return self

    def __repr__(self) -> str:
        try:
            status = self.status
        except (OSError, ValueError, KeyError):
            status = "unreadable"
        return f"Run({str(self.path)!r}, status={status!r})"


def run(
    scenario: Scenario,
    out: Union[str, "os.PathLike[str]", None] = None,
    *,
    set: Optional[Mapping[str, Any]] = None,  # noqa: A002 - the CLI's --set
    seed: Optional[int] = None,
    force: bool = False,
    adapter: str = "auto",
    on_progress: Optional[ProgressCallback] = None,
    on_snapshot: Optional[SnapshotCallback] = None,
    progress: Optional[bool] = None,
) -> Run:
    """Runs a scenario and returns its :class:`Run`.

    ``scenario``: a TOML file's path, or a dict with the same keys (``"data": array`` where a
    file gives ``"path"``: float32/float64 arrays of shape (N, dim) or (N,)).
    ``out``: the run directory (``None``: a temporary one, complete, removed when the Run
    object goes away). ``set``: overrides like ``--set``, e.g. ``{"dynamics.temperature": 0.3}``.
    ``seed``: like ``--seed``. ``force``: replace a previous run in ``out``.
    ``on_progress(step, steps, time)`` after each block of steps; ``on_snapshot(snapshot)``
    after each snapshot is written. ``progress``: a tqdm bar (None: when tqdm is installed and
    stderr is a terminal or this is a notebook; True: always, a text bar without tqdm).

    Ctrl-C, or an exception raised by a callback, interrupts the run like SIGINT: it
    checkpoints, its status becomes "interrupted" and the exception is raised, carrying the
    run as ``exc.run`` (any exception after the run directory was made does);
    ``exc.run.resume()`` or ``fokker.open(out).resume()`` continues it. Invalid scenarios raise :class:`ScenarioError`
    and write nothing.
    """
    keep = None
    if out is None:
        keep = tempfile.TemporaryDirectory(prefix="fokker-")
        out = Path(keep.name) / "run"
    out = Path(out)
    if not isinstance(scenario, Mapping):
        scenario = os.fspath(scenario)
    elif not isinstance(scenario, dict):
        scenario = dict(scenario)
    try:
        with _Callbacks(on_progress, on_snapshot, progress, out) as cb:
            _fokker.run(
                scenario,
                out,
                set=_as_dict(set),
                seed=seed,
                force=force,
                adapter=adapter,
                on_progress=cb.progress,
                on_snapshot=cb.snapshot,
            )
    except BaseException as e:
        # A run that started (interrupted, diverged, failed) rides on the exception, so that
        # `except KeyboardInterrupt as e: e.run.resume()` works even with out=None.
        if (out / "manifest.json").is_file():
            e.run = Run(out, keep)  # type: ignore[attr-defined]
        raise
    return Run(out, keep)


def plan(
    scenario: Scenario, *, set: Optional[Mapping[str, Any]] = None, seed: Optional[int] = None  # noqa: A002
) -> Dict[str, Any]:
    """The resolved plan (every default filled in) and its hash, like ``fokker run
    --dry-run``: ``{"plan_hash": ..., "plan": {...}}``. Writes nothing."""
    if not isinstance(scenario, Mapping):
        scenario = os.fspath(scenario)
    elif not isinstance(scenario, dict):
        scenario = dict(scenario)
    h, text = _fokker.plan(scenario, set=_as_dict(set), seed=seed)
    return {"plan_hash": h, "plan": json.loads(text)}


def open(path: Union[str, "os.PathLike[str]"]) -> Run:  # noqa: A001 - fokker.open
    """A run directory written by ``fokker run``/``fokker.run`` (finished, interrupted or
    merged from shards by ``fokker merge``)."""
    return Run(path)


def adapters() -> List[Dict[str, Any]]:
    """The GPU adapters wgpu can see (name, backend, device_type, driver, limits), like
    ``fokker adapters --json``."""
    return json.loads(_fokker.adapters())


def _as_dict(m: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    return None if m is None else dict(m)


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class _TextBar:
    """A minimal progress bar on stderr when tqdm is not installed (progress=True)."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n
        done = int(40 * self.n / self.total)
        sys.stderr.write(f"\r[{'=' * done}{' ' * (40 - done)}] step {self.n}/{self.total}")
        sys.stderr.flush()

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        sys.stderr.write("\n")


class _Callbacks:
    """The user's callbacks and the progress bar, as the native module calls them."""

    def __init__(
        self,
        on_progress: Optional[ProgressCallback],
        on_snapshot: Optional[SnapshotCallback],
        progress: Optional[bool],
        out: Path,
    ) -> None:
        self.user_progress = on_progress
        self.user_snapshot = on_snapshot
        self.out = out
        self.bar: Any = None
        self.at = 0
        # The bar opens at the first report, which carries the total step count.
        self.make_bar: Optional[Callable[[int], Any]] = None
        want = progress if progress is not None else (sys.stderr.isatty() or _in_notebook())
        if want:
            try:
                from tqdm.auto import tqdm

                self.make_bar = lambda total: tqdm(total=total, unit="step", desc="fokker")
            except ImportError:
                self.make_bar = _TextBar if progress else None

    def __enter__(self) -> "_Callbacks":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    @property
    def progress(self) -> Optional[Callable[[int, int, float], None]]:
        if self.user_progress is None and self.make_bar is None:
            return None
        return self._progress

    @property
    def snapshot(self) -> Optional[Callable[[str], None]]:
        return None if self.user_snapshot is None else self._snapshot

    def _progress(self, step: int, steps: int, time: float) -> None:
        if self.bar is None and self.make_bar is not None:
            self.bar = self.make_bar(steps)
        if self.bar is not None:
            self.bar.update(step - self.at)
            self.bar.set_postfix_str(f"t = {time:.4f}")
            self.at = step
        if self.user_progress is not None:
            self.user_progress(step, steps, time)

    def _snapshot(self, record_json: str) -> None:
        assert self.user_snapshot is not None
        self.user_snapshot(Snapshot(self.out, json.loads(record_json)))


__all__ = [
    "run",
    "open",
    "plan",
    "adapters",
    "Run",
    "Snapshot",
    "PLAN_HASH_FORMAT",
    "FokkerError",
    "ScenarioError",
    "Issue",
    "DataError",
    "UsageError",
    "NoAdapterError",
    "OutputError",
    "DeviceError",
    "RunInterrupted",
    "DivergedError",
]
