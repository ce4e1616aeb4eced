#!/usr/bin/env bash
# The BAOAB workload (L2 with velocities: underdamped Langevin, gamma = 1, m = 1, Maxwell
# initial velocities) side by side: fokker's `kind = "underdamped"` and the NumPy / JAX peers
# of benches/baoab_peer.py in one run on this machine, then the ratios of particle-steps per
# second. Needs `pip install numpy 'jax[cpu]'` (PYTHON picks the interpreter, e.g. a venv's).
#   bash benches/compare_baoab.sh [particles steps] ...   (default: 1e6 x 100 and 1e6 x 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1000000 100 1000000 1000)
cargo build --release --bench l2 >/dev/null 2>&1 || cargo bench --bench l2 --no-run
for ((i = 0; i < ${#sizes[@]}; i += 2)); do
  n=${sizes[i]}; s=${sizes[i+1]}
  f=$(cargo bench -q --bench l2 -- --kind underdamped --particles "$n" --steps "$s" 2>/dev/null | tail -n 1)
  np=$("$py" benches/baoab_peer.py --impl numpy --particles "$n" --steps "$s")
  jx=$("$py" benches/baoab_peer.py --impl jax --particles "$n" --steps "$s" 2>/dev/null)
  echo "$f"; echo "$np"; echo "$jx"
  "$py" - "$f" "$np" "$jx" <<'PY'
import json, sys
f, np_, jx = (json.loads(a) for a in sys.argv[1:])
r = lambda p: f["particle_steps_per_s"] / p["particle_steps_per_s"]
print(json.dumps({"workload": "BAOAB", "particles": f["particles"], "steps": f["steps"], "adapter": f["adapter"],
                  "fokker_over_numpy": round(r(np_), 2), "fokker_over_jax": round(r(jx), 2)}))
PY
done
