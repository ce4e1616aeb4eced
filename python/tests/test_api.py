"""The Python package against the command line and against exact answers."""

from __future__ import annotations

import numpy as np
import pytest

import fokker
from conftest import assert_same_run, cli


def test_an_adapter_is_found() -> None:
    # GPU tests fail loudly without an adapter instead of skipping.
    adapters = fokker.adapters()
    assert adapters, "no GPU adapter: install Mesa's lavapipe (mesa-vulkan-drivers)"
    assert {"name", "backend", "device_type"} <= set(adapters[0])


def test_cli_and_python_write_the_same_bytes(scenario, tmp_path) -> None:
    o = cli("run", str(scenario), "--out", str(tmp_path / "cli"), "--progress", "none", cwd=tmp_path)
    assert o.returncode == 0, o.stderr
    run = fokker.run(scenario, out=tmp_path / "py", progress=False)
    assert run.status == "complete"
    assert_same_run(tmp_path / "cli", tmp_path / "py")


def test_set_and_seed_are_the_cli_flags(scenario, tmp_path) -> None:
    o = cli(
        "run", str(scenario), "--out", str(tmp_path / "cli"), "--progress", "none",
        "--set", "dynamics.temperature=0.3", "--set", "output.gif=false", "--seed", "9",
        cwd=tmp_path,
    )
    assert o.returncode == 0, o.stderr
    run = fokker.run(
        scenario, out=tmp_path / "py", set={"dynamics.temperature": 0.3, "output.gif": False},
        seed=9, progress=False,
    )
    assert run.manifest["seed"] == 9
    assert run.manifest["plan"]["dynamics"]["temperature"] == 0.3
    assert_same_run(tmp_path / "cli", tmp_path / "py")


def test_arrays_are_the_run_directory_files(scenario, tmp_path) -> None:
    run = fokker.run(scenario, out=None, progress=False)
    snaps = run.snapshots
    # every = 0.04 with dt = 2e-3: steps 0, 20, 40, 60.
    assert [s.step for s in snaps] == [0, 20, 40, 60]
    assert [s.time for s in snaps] == pytest.approx([0.0, 0.04, 0.08, 0.12], abs=1e-12)
    h = run.density(-1)
    assert h.dtype == np.uint64 and h.shape == (24, 20)
    assert np.array_equal(h, snaps[-1].density)
    x = run.particles(-1)
    assert x.dtype == np.float32 and x.shape == (3000, 2)
    # The moments are the particles' own. The GPU sums in f32 before the f64 total: a sum of
    # n = 3000 f32 terms is within n * 2^-24 * sum|x_i| of the exact one (sequential
    # summation's bound, which a tree reduction only improves), so the mean is within
    # n * 2^-24 * mean|x|.
    assert snaps[-1].moments["count"] == 3000
    x64 = x.astype(np.float64)
    bound = 3000 * 2.0**-24 * np.abs(x64).mean(0)
    assert np.all(np.abs(np.asarray(snaps[-1].moments["mean"]) - x64.mean(0)) <= bound)
    # numpy histogram2d order, against numpy itself. The GPU bins in f32: a particle within
    # a few f32 ulps of a bin edge (|v| <= 2.5, so 2.5 * 2^-23 * bins / width < 1e-5 of a bin)
    # may land in the neighbouring bin, moving at most 2 counts each; every other particle
    # must agree exactly.
    edges = [(-2.5, 2.5, 24), (-2.0, 2.0, 20)]
    ambiguous = 0
    for a, (lo, hi, n) in enumerate(edges):
        u = (x[:, a].astype(np.float64) - lo) * n / (hi - lo)
        ambiguous += int(np.sum(np.abs(u - np.round(u)) < 1e-5))
    ref, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[24, 20], range=[[-2.5, 2.5], [-2.0, 2.0]])
    assert int(np.abs(ref - h.astype(np.float64)).sum()) <= 2 * ambiguous
    with pytest.raises(fokker.UsageError, match="output.particles"):
        run.particles(0)
    # fokker.open reads the same directory.
    again = fokker.open(run.path)
    assert again.plan_hash == run.plan_hash and np.array_equal(again.density(-1), h)


def test_callbacks_see_progress_and_every_snapshot(scenario) -> None:
    seen, progress = [], []
    run = fokker.run(
        scenario, out=None, progress=False,
        on_snapshot=lambda s: seen.append((s.step, int(s.density.sum()))),
        on_progress=lambda step, steps, t: progress.append((step, steps)),
    )
    assert [s for s, _ in seen] == [s.step for s in run.snapshots]
    # The histogram counts every particle inside the range: at most 3000.
    assert all(0 < n <= 3000 for _, n in seen)
    assert progress[-1] == (60, 60)
    assert [p for p, _ in progress] == sorted(p for p, _ in progress)


def test_keyboard_interrupt_from_a_callback_interrupts_and_resumes_identically(scenario, tmp_path) -> None:
    whole = fokker.run(scenario, out=tmp_path / "whole", progress=False)

    def stop_at_second_snapshot(snap: fokker.Snapshot) -> None:
        if snap.step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fokker.run(scenario, out=tmp_path / "cut", on_snapshot=stop_at_second_snapshot, progress=False)
    cut = fokker.open(tmp_path / "cut")
    assert cut.status == "interrupted"
    assert (cut.path / "checkpoint" / "point.json").is_file()
    assert [s.step for s in cut.snapshots] == [0, 20]
    cut.resume(progress=False)
    assert cut.status == "complete"
    assert not (cut.path / "checkpoint").exists()
    assert_same_run(whole.path, cut.path)
    with pytest.raises(fokker.UsageError, match="not an interrupted run"):
        cut.resume()


def test_a_callback_error_interrupts_and_is_raised(scenario, tmp_path) -> None:
    def boom(snap: fokker.Snapshot) -> None:
        raise ValueError("from the callback")

    with pytest.raises(ValueError, match="from the callback") as e:
        fokker.run(scenario, out=None, on_snapshot=boom, progress=False)
    # The temporary run directory rides on the exception and can be resumed.
    run = e.value.run
    assert run.status == "interrupted" and [s.step for s in run.snapshots] == [0]
    assert run.resume(progress=False).status == "complete"
    assert [s.step for s in run.snapshots] == [0, 20, 40, 60]


def test_ctrl_c_interrupts_a_running_run(scenario, tmp_path) -> None:
    # A real SIGINT while the GPU works (the GIL released): Python's handler is run between
    # blocks, the run checkpoints and ends "interrupted", and KeyboardInterrupt reaches the
    # script. The run is long enough (10^6 steps) that it cannot finish before the signal.
    import signal
    import subprocess
    import sys

    child = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, fokker\n"
            "def tell(step, steps, t):\n"
            "    print('running', flush=True)\n"
            "try:\n"
            f"    fokker.run({str(scenario)!r}, out={str(tmp_path / 'cut')!r}, progress=False,\n"
            "               set={'dynamics.steps': 1000000, 'output.every': 1000.0}, on_progress=tell)\n"
            "except KeyboardInterrupt:\n"
            "    print('KeyboardInterrupt', flush=True)\n"
            "    sys.exit(130)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "running"
    child.send_signal(signal.SIGINT)
    rest = child.stdout.read()
    assert child.wait(timeout=120) == 130, rest
    assert "KeyboardInterrupt" in rest
    cut = fokker.open(tmp_path / "cut")
    assert cut.status == "interrupted"
    assert (cut.path / "checkpoint" / "point.json").is_file()


def test_open_reads_a_merged_run(scenario, tmp_path) -> None:
    # Two shards by the CLI, merged: fokker.open reads it like any run, and its densities
    # are the unsharded run's (a merge sums the shards' counts exactly).
    for i in range(2):
        o = cli(
            "run", str(scenario), "--out", str(tmp_path / f"s{i}"), "--progress", "none",
            "--shard-index", str(i), "--shard-count", "2", cwd=tmp_path,
        )
        assert o.returncode == 0, o.stderr
    o = cli("merge", str(tmp_path / "merged"), str(tmp_path / "s0"), str(tmp_path / "s1"), cwd=tmp_path)
    assert o.returncode == 0, o.stderr
    merged = fokker.open(tmp_path / "merged")
    whole = fokker.run(scenario, out=tmp_path / "whole", progress=False)
    assert merged.status == "complete" and merged.plan_hash == whole.plan_hash
    assert [s.step for s in merged.snapshots] == [s.step for s in whole.snapshots]
    for a, b in zip(merged.snapshots, whole.snapshots):
        assert np.array_equal(a.density, b.density)


def test_the_gil_is_released_while_the_run_works(scenario) -> None:
    # A Python thread keeps counting while the GPU steps. Between the first and the last
    # snapshot callback the run is in Rust (stepping, observing, writing; the GIL is taken
    # back only for the callbacks themselves), so a free thread counts at its own rate; were
    # the GIL held there, it could count only during the callbacks' few microseconds.
    import threading
    import time

    count = 0
    done = threading.Event()

    def spin() -> None:
        nonlocal count
        while not done.is_set():
            count += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        c0, t0 = count, time.perf_counter()
        time.sleep(0.05)  # the main thread sleeps: the thread's rate alone
        rate = (count - c0) / (time.perf_counter() - t0)
        marks = []
        fokker.run(
            scenario, out=None, progress=False,
            set={"dynamics.steps": 600, "output.every": 0.6},
            on_snapshot=lambda s: marks.append((count, time.perf_counter())),
        )
    finally:
        done.set()
        t.join()
    (n0, t0), (n1, t1) = marks[0], marks[-1]
    assert t1 - t0 > 0.02, "the run was too short to tell"
    # A tenth of the free rate: the machine is shared, the GIL switch costs a little.
    assert n1 - n0 > 0.1 * rate * (t1 - t0), (n1 - n0, rate, t1 - t0)
