"""Exceptions of the fokker package.

Every error carries the message the ``fokker`` command line prints for the same problem and
its documented exit code (``exit_code``), so scripts and the CLI report alike.
"""

from __future__ import annotations

from typing import List, NamedTuple, Sequence, Tuple


class Issue(NamedTuple):
    """One problem in a scenario: the dotted key, the value as written ("" when missing) and
    what is allowed there."""

    key: str
    value: str
    message: str


class FokkerError(Exception):
    """Base class of fokker's errors."""

    exit_code: int

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ScenarioError(FokkerError, ValueError):
    """The scenario is invalid. ``str(err)`` lists every problem (the CLI's text);
    ``err.issues`` holds them as :class:`Issue` (key, value, message)."""

    issues: List[Issue]

    def __init__(
        self, message: str, issues: Sequence[Tuple[str, str, str]] = (), exit_code: int = 65
    ) -> None:
        super().__init__(message, exit_code)
        self.issues = [Issue(*i) for i in issues]


class DataError(FokkerError, ValueError):
    """An input data file (or a run directory's file) cannot be used."""


class UsageError(FokkerError, ValueError):
    """A call that cannot be honoured (e.g. resuming a run that is not interrupted)."""


class NoAdapterError(FokkerError, RuntimeError):
    """No usable GPU adapter (install Mesa's software drivers, or set WGPU_BACKEND=gl)."""


class OutputError(FokkerError, OSError):
    """The run directory cannot be written or read."""


class DeviceError(FokkerError, RuntimeError):
    """The GPU device failed (out of memory, lost)."""


class RunInterrupted(FokkerError, RuntimeError):
    """The run was interrupted and checkpointed; ``Run.resume()`` continues it."""


class DivergedError(FokkerError, ArithmeticError):
    """Particles reached NaN/Inf; the last good snapshot is kept (reduce dynamics.dt)."""


__all__ = [
    "Issue",
    "FokkerError",
    "ScenarioError",
    "DataError",
    "UsageError",
    "NoAdapterError",
    "OutputError",
    "DeviceError",
    "RunInterrupted",
    "DivergedError",
]
