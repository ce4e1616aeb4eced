"""The native module (Rust, pyo3): the library the ``fokker`` command line uses."""

from os import PathLike
from typing import Any, Callable, Mapping, Optional, Tuple, Union

PLAN_HASH_FORMAT: int

def run(
    scenario: Union[str, PathLike[str], Mapping[str, Any]],
    out: Union[str, PathLike[str]],
    set: Optional[Mapping[str, Any]] = None,
    seed: Optional[int] = None,
    force: bool = False,
    adapter: str = "auto",
    on_progress: Optional[Callable[[int, int, float], object]] = None,
    on_snapshot: Optional[Callable[[str], object]] = None,
) -> None:
    """Resolves the scenario and writes the run directory ``out`` with the GIL released.
    ``on_progress(step, steps, time)`` after each block of steps, ``on_snapshot(record_json)``
    after each snapshot. A callback exception or Ctrl-C interrupts the run (checkpoint, status
    "interrupted") and is raised when it has stopped."""

def plan(
    scenario: Union[str, PathLike[str], Mapping[str, Any]],
    set: Optional[Mapping[str, Any]] = None,
    seed: Optional[int] = None,
) -> Tuple[str, str]:
    """(plan hash, resolved plan as JSON) of a scenario; writes nothing."""

def resume(
    dir: Union[str, PathLike[str]],
    adapter: str = "auto",
    on_progress: Optional[Callable[[int, int, float], object]] = None,
    on_snapshot: Optional[Callable[[str], object]] = None,
) -> None:
    """Continues the interrupted run in ``dir`` (byte-identical to an uninterrupted run)."""

def adapters() -> str:
    """The GPU adapters wgpu can see, as JSON."""
