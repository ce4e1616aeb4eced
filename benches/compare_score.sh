#!/usr/bin/env bash
# The empirical-score kernel side by side: fokker's tiled kernel sum
# (benches/kernel.rs) and the JAX peer's weighted mean (benches/score_peer.py, the kernel of
# ../shared/peers/sdflow_peer.py) on the same N queries x M data points, then the ratio of
# interactions per second, with the f32 kernel's error against an f64 evaluation on the same
# inputs (benches/kernel.rs: max and RMS relative error of the kernel sums and of the weighted
# means at 1024 of the queries). Needs `pip install numpy 'jax[cpu]'` (PYTHON=/path/to/python
# to pick the interpreter).
#   bash benches/compare_score.sh [n m sigma] ...
#   (default: 16384 16384 0.1, 65536 2048 0.05, 16384 65536 0.1)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(16384 16384 0.1 65536 2048 0.05 16384 65536 0.1)
py=${PYTHON:-python3}
cargo build --release --bench kernel >/dev/null 2>&1 || cargo bench --bench kernel --no-run
for ((i = 0; i < ${#sizes[@]}; i += 3)); do
  n=${sizes[i]}; m=${sizes[i+1]}; s=${sizes[i+2]}
  f=$(cargo bench -q --bench kernel -- --n "$n" --m "$m" --dim 2 --sigma "$s" 2>/dev/null | tail -n 1)
  jx=$("$py" benches/score_peer.py --n "$n" --m "$m" --sigma "$s" 2>/dev/null)
  echo "$f"; echo "$jx"
  "$py" - "$f" "$jx" <<'PY'
import json, sys
f, jx = (json.loads(a) for a in sys.argv[1:])
print(json.dumps({"workload": "empirical score kernel", "n": f["n"], "m": f["m"], "sigma": f["sigma"],
                  "adapter": f["adapter"],
                  "fokker_over_jax": round(f["interactions_per_s"] / jx["interactions_per_s"], 2),
                  "f32_vs_f64": {k: f[k] for k in ("check_queries", "sum_rel_err_max", "sum_rel_err_rms",
                                                   "mean_rel_err_max", "mean_rel_err_rms")}}))
PY
done
