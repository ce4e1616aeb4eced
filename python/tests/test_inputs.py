"""Scenarios as dicts with NumPy data, and what bad input does (nothing written)."""

from __future__ import annotations

import numpy as np
import pytest

import fokker

RNG = np.random.default_rng(3)
# Start points (f64) and their float32 copy: the table the run uses is the float32 one.
POINTS = RNG.normal(size=(400, 2))


def dict_scenario(init_data) -> dict:
    return {
        "seed": 4,
        "particles": {"count": 2000, "dim": 2, "init": {"kind": "samples", "data": init_data}},
        "dynamics": {
            "kind": "langevin",
            "potential": {"kind": "double_well"},
            "temperature": 0.6,
            "dt": 2e-3,
            "steps": 20,
        },
        "output": {
            "every": 0.02,
            "histogram": {"bins": [16, 12], "range": [[-3.0, 3.0], [-3.0, 3.0]]},
            "gif": False,
        },
    }


TOML = """seed = 4
[particles]
count = 2000
dim = 2
init = {{ kind = "samples", path = "{path}" }}
[dynamics]
kind = "langevin"
potential = {{ kind = "double_well" }}
temperature = 0.6
dt = 2e-3
steps = 20
[output]
every = 0.02
histogram = {{ bins = [16, 12], range = [[-3.0, 3.0], [-3.0, 3.0]] }}
gif = false
"""


def test_dict_with_arrays_equals_toml_with_npy(tmp_path) -> None:
    np.save(tmp_path / "points.npy", POINTS)
    (tmp_path / "s.toml").write_text(TOML.format(path="points.npy"))
    from_file = fokker.run(tmp_path / "s.toml", out=tmp_path / "file", progress=False)
    from_dict = fokker.run(dict_scenario(POINTS), out=tmp_path / "dict", progress=False)
    assert from_dict.plan_hash == from_file.plan_hash
    assert len(from_dict.snapshots) == len(from_file.snapshots) == 3
    for a, b in zip(from_file.snapshots, from_dict.snapshots):
        assert np.array_equal(a.density, b.density)
    # The array is kept in the run directory (as float32, where the plan says) so that the
    # directory is complete; its content hash is the file's.
    saved = from_dict.manifest["inputs"][0]
    assert np.array_equal(np.load(saved["path"]), POINTS.astype(np.float32))
    assert saved["sha256"] == from_file.manifest["inputs"][0]["sha256"]
    # Same data as float32, as a Fortran-order array and as a .csv: the same hash.
    np.savetxt(tmp_path / "points.csv", POINTS.astype(np.float32), delimiter=",")
    (tmp_path / "c.toml").write_text(TOML.format(path="points.csv"))
    hashes = {
        fokker.plan(dict_scenario(POINTS.astype(np.float32)))["plan_hash"],
        fokker.plan(dict_scenario(np.asfortranarray(POINTS)))["plan_hash"],
        fokker.plan(tmp_path / "c.toml")["plan_hash"],
    }
    assert hashes == {from_file.plan_hash}
    # Other data: another hash.
    assert fokker.plan(dict_scenario(POINTS[::-1]))["plan_hash"] != from_file.plan_hash


def test_bad_scenarios_list_every_issue_and_write_nothing(tmp_path) -> None:
    bad = dict_scenario(POINTS)
    bad["particles"]["count"] = 0
    bad["dynamics"]["temperature"] = -1.0
    bad["output"]["colour"] = "red"
    out = tmp_path / "never"
    with pytest.raises(fokker.ScenarioError) as e:
        fokker.run(bad, out=out, progress=False)
    keys = {i.key for i in e.value.issues}
    assert {"particles.count", "dynamics.temperature", "output.colour"} <= keys
    assert e.value.exit_code == 65
    # The message is the CLI's: every issue on its own line.
    for issue in e.value.issues:
        assert f"  - {issue.key}" in str(e.value)
    assert not out.exists()
    # A TOML file with the same problems says the same, naming the file.
    (tmp_path / "bad.toml").write_text(
        TOML.format(path="x.npy").replace("count = 2000", "count = 0")
    )
    with pytest.raises(fokker.ScenarioError) as e:
        fokker.run(tmp_path / "bad.toml", out=out, progress=False)
    assert {"particles.count", "particles.init.path"} <= {i.key for i in e.value.issues}
    assert str(tmp_path / "bad.toml") in str(e.value)
    # set= goes through the same checks.
    with pytest.raises(fokker.ScenarioError, match="dynamics.dt"):
        fokker.run(dict_scenario(POINTS), out=out, set={"dynamics.dt": "fast"}, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    "data, says",
    [
        (np.zeros((10, 2, 2)), "3 dimensions"),
        (np.zeros((10, 3)), "2 columns"),
        (np.where(np.arange(20).reshape(10, 2) == 13, np.nan, 1.0), "row 6, column 1"),
        (np.ones((10, 2), dtype=np.int64), "int64 is not float32 or float64"),
        (np.full((4, 2), 1e300), "float32 range"),
        (np.zeros((0, 2)), "no rows"),
    ],
)
def test_bad_arrays_are_refused_clearly_and_write_nothing(tmp_path, data, says) -> None:
    out = tmp_path / "never"
    with pytest.raises(fokker.ScenarioError, match=says) as e:
        fokker.run(dict_scenario(data), out=out, progress=False)
    assert [i.key for i in e.value.issues] == ["particles.init.data"]
    assert "shape" in e.value.issues[0].value
    assert not out.exists()


def test_data_keys_in_a_file_and_other_values_are_explained(tmp_path) -> None:
    (tmp_path / "d.toml").write_text(
        TOML.format(path="x.npy").replace('path = "x.npy"', 'data = "points"')
    )
    with pytest.raises(fokker.ScenarioError, match="NumPy array") as e:
        fokker.plan(tmp_path / "d.toml")
    assert [i.key for i in e.value.issues] == ["particles.init.data"]
    bad = dict_scenario(POINTS)
    bad["dynamics"]["temperature"] = object()
    with pytest.raises(fokker.ScenarioError, match="dynamics.temperature"):
        fokker.plan(bad)
    both = dict_scenario(POINTS)
    both["particles"]["init"]["path"] = "points.npy"
    with pytest.raises(fokker.ScenarioError, match="either path or data"):
        fokker.plan(both)


def test_the_paper_example_runs(tmp_path) -> None:
    # The issue's example, smaller: a kernel flow from samples to samples, no files at all.
    target = RNG.normal(loc=1.0, scale=0.5, size=(300, 2))
    run = fokker.run(
        {
            "particles": {"count": 500, "dim": 2, "init": {"kind": "samples", "data": RNG.normal(size=(200, 2))}},
            "dynamics": {"kind": "sd_flow", "target": {"kind": "samples", "data": target}, "sigma": 0.3, "steps": 4},
        },
        out=None,
        progress=False,
    )
    assert run.status == "complete"
    assert sorted(p.name for p in (run.path / "inputs").iterdir()) == [
        "dynamics.target.data.npy",
        "particles.init.data.npy",
    ]
    # out=None: the directory goes away with the Run object.
    path = run.path
    del run
    import gc

    gc.collect()
    assert not path.exists()
