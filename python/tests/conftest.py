"""Shared helpers of the Python package's tests (small runs: a few thousand particles)."""

from __future__ import annotations

import json
import re
import os
import subprocess
from pathlib import Path
from typing import Dict

import pytest

REPO = Path(__file__).resolve().parents[2]

# A short double-well relaxation: 3000 particles, 60 steps, 4 snapshots, every output on.
SCENARIO = """
name = "python test"
seed = 5
[particles]
count = 3000
dim = 2
init = { kind = "gaussian", mean = [-1.0, 0.0], std = 0.3 }
[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.6
dt = 2e-3
steps = 60
[output]
every = 0.04
histogram = { bins = [24, 20], range = [[-2.5, 2.5], [-2.0, 2.0]] }
particles = "final"
trajectories = 3
gif = true
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO)
    return p


def fokker_bin() -> Path:
    """The CLI built from the same sources (FOKKER_BIN, else target/release/fokker)."""
    path = Path(os.environ.get("FOKKER_BIN", REPO / "target" / "release" / "fokker"))
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `cargo build --release` first")
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(fokker_bin()), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def run_files(d: Path) -> Dict[str, bytes]:
    """Every file under a run directory by relative path."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def without_timings(manifest_bytes: bytes) -> dict:
    m = json.loads(manifest_bytes)
    m.pop("timings")
    return m


def report_without_timings(page: bytes, run_dir: Path) -> str:
    """report.html less what embeds the timings (its timings table) and the run directory's
    name (in the run's heading)."""
    text = re.sub(r'<table class="timings">.*?</table>', "", page.decode(), flags=re.S)
    return re.sub(r"(<h2>.*?) \(" + re.escape(run_dir.name) + r"\)</h2>", r"\1</h2>", text)


def assert_same_run(a: Path, b: Path) -> None:
    """Identical bytes for every file, except the timings in manifest.json and what embeds
    them (report.html's timings table; its heading names the run's directory)."""
    fa, fb = run_files(a), run_files(b)
    assert sorted(fa) == sorted(fb)
    assert len(fa) >= 5
    for name in fa:
        if name == "manifest.json":
            assert without_timings(fa[name]) == without_timings(fb[name])
        elif name == "report.html":
            ra, rb = report_without_timings(fa[name], a), report_without_timings(fb[name], b)
            assert '<table class="timings">' in fa[name].decode()
            assert ra == rb, f"report.html differs beyond timings between {a} and {b}"
        else:
            assert fa[name] == fb[name], f"{name} differs between {a} and {b}"
