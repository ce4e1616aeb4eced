#!/usr/bin/env bash
# Workload S2 side by side: fokker and the NumPy / JAX SD-flow peers in one run on this
# machine, then the ratios of kernel interactions per second. Needs `pip install numpy
# 'jax[cpu]'`.
#   bash benches/compare_s2.sh [particles targets steps] ...
#   (default: 16384 16384 5 and 65536 65536 1)
# FOKKER_S2_NUMPY=0 skips the NumPy peer (minutes at 65536). Beside each size's ratios: the
# f32 kernel sum's error against an f64 evaluation on the same inputs (benches/kernel.rs,
# N = M queries and sources, S2's sigma = 0.3; max and RMS relative error of the kernel sums
# and of the weighted means at 1024 of the queries).
set -euo pipefail
cd "$(dirname "$0")/.."
peers="${FOKKER_PEERS:-../shared/peers}"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(16384 16384 5 65536 65536 1)
cargo build --release --bench s2 --bench kernel >/dev/null 2>&1 ||
  cargo bench --bench s2 --bench kernel --no-run
py=${PYTHON:-python3}
for ((i = 0; i < ${#sizes[@]}; i += 3)); do
  n=${sizes[i]}; m=${sizes[i+1]}; s=${sizes[i+2]}
  f=$(cargo bench -q --bench s2 -- --particles "$n" --targets "$m" --steps "$s" 2>/dev/null | tail -n 1)
  jx=$("$py" "$peers/sdflow_peer.py" --impl jax --particles "$n" --targets "$m" --steps "$s" 2>/dev/null)
  if [ "${FOKKER_S2_NUMPY:-1}" != 0 ]; then
    np=$("$py" "$peers/sdflow_peer.py" --impl numpy --particles "$n" --targets "$m" --steps "$s")
  else
    np=null
  fi
  err=$(cargo bench -q --bench kernel -- --n "$n" --m "$m" --dim 2 --sigma 0.3 --repeat 1 \
    --check 1024 2>/dev/null | tail -n 1)
  echo "$f"; echo "$jx"; echo "$np"
  "$py" - "$f" "$jx" "$np" "$err" <<'PY'
import json, sys
f, jx, np_, err = (json.loads(a) for a in sys.argv[1:])
r = lambda p: None if p is None else round(f["interactions_per_s"] / p["interactions_per_s"], 2)
print(json.dumps({"workload": "S2", "particles": f["particles"], "targets": f["targets"],
                  "steps": f["steps"], "adapter": f["adapter"],
                  "fokker_over_jax": r(jx), "fokker_over_numpy": r(np_),
                  "kernel_f32_vs_f64": {k: err[k] for k in ("m", "sigma", "check_queries",
                      "sum_rel_err_max", "sum_rel_err_rms", "mean_rel_err_max", "mean_rel_err_rms")}}))
PY
done
