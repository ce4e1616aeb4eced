"""The quick start's picture from Python: run examples/double_well.toml and draw the last
density with matplotlib from the arrays (log colour scale, as the run's own heatmap), beside
the x-marginal of the particles against the Boltzmann density exp(-U/T)/Z it relaxes to.

    python python/examples/quickstart.py                   # 10^6 particles, runs/dw-python
    python python/examples/quickstart.py --count 20000 --out /tmp/dw --png /tmp/dw.png   # CI
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fokker  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=None, help="particles (default: the file's)")
    ap.add_argument("--out", default="runs/dw-python", help="run directory")
    ap.add_argument("--png", default="dw-python.png", help="the picture to write")
    args = ap.parse_args()

    overrides = {"output.gif": False}
    if args.count is not None:
        overrides["particles.count"] = args.count
    run = fokker.run(REPO / "examples" / "double_well.toml", out=args.out, set=overrides, force=True)
    plan = run.manifest["plan"]
    (x0, x1), (y0, y1) = plan["output"]["histogram"]["range"]
    temperature = plan["dynamics"]["temperature"]
    last = run.snapshots[-1]
    h = last.density  # uint64, numpy histogram2d order: h[i, j] = bin i in x, j in y

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    shown = np.ma.masked_equal(h.T.astype(np.float64), 0)  # imshow wants rows = y
    im = left.imshow(
        shown, origin="lower", extent=(x0, x1, y0, y1), aspect="auto", cmap="viridis",
        norm=matplotlib.colors.LogNorm(),
    )
    fig.colorbar(im, ax=left, label="particles per bin")
    left.set(xlabel="x0", ylabel="x1", title=f"double well, t = {last.time:.2f} (step {last.step})")

    # The x-marginal: the particles' histogram against exp(-(x^2-1)^2/T)/Z.
    x = run.particles(-1)[:, 0].astype(np.float64)
    grid = np.linspace(x0, x1, 400)
    boltzmann = np.exp(-((grid**2 - 1) ** 2) / temperature)
    boltzmann /= np.trapezoid(boltzmann, grid) if hasattr(np, "trapezoid") else np.trapz(boltzmann, grid)
    right.hist(x, bins=h.shape[0], range=(x0, x1), density=True, alpha=0.6, label="particles")
    right.plot(grid, boltzmann, "k-", label="exp(-U/T)/Z (equilibrium)")
    right.set(xlabel="x0", ylabel="density", title="x-marginal")
    right.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png} from {run.path} ({len(run.snapshots)} snapshots, {len(x)} particles)")


if __name__ == "__main__":
    main()
