#!/usr/bin/env bash
# Workload L2 side by side: fokker and the NumPy / JAX peers in one run on this machine,
# then the ratios of particle-steps per second. Needs `pip install numpy 'jax[cpu]'`
# (PYTHON=/path/to/python picks the interpreter).
#   bash benches/compare_l2.sh [particles steps] ...   (default: 1e6 x 100 and 1e7 x 1000)
# Per size it prints:
# - fokker_over_jax: the job (benches/l2.rs: allocation, stepping, histogram, readback;
#   adapter start-up and shader compilation apart, as the peer's compile is excluded);
# - fokker_over_jax_process: the wall time of a whole `fokker run benches/l2.toml` process
#   (start-up, shader compilation, output writes included; best of two) against the peer's
#   stepping time;
# - of_ceiling: the job's rate over the same kernel's with the noise compiled out (T = 0,
#   NOISE = 0: no Philox, no Box–Muller), measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
peers="${FOKKER_PEERS:-../shared/peers}"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1000000 100 10000000 1000)
cargo build --release -q
cargo build --release --bench l2 >/dev/null 2>&1 || cargo bench --bench l2 --no-run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 0; i < ${#sizes[@]}; i += 2)); do
  n=${sizes[i]}; s=${sizes[i+1]}
  f=$(cargo bench -q --bench l2 -- --particles "$n" --steps "$s" 2>/dev/null | tail -n 1)
  c=$(cargo bench -q --bench l2 -- --particles "$n" --steps "$s" --temperature 0 2>/dev/null | tail -n 1)
  best=""
  for rep in 1 2; do
    start=$(date +%s.%N)
    target/release/fokker run benches/l2.toml --out "$tmp/run" --force --progress none \
      --set particles.count="$n" --set dynamics.steps="$s" >/dev/null
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc)" -eq 1 ]; then best=$wall; fi
  done
  np=$("$py" "$peers/langevin_peer.py" --impl numpy --particles "$n" --steps "$s")
  jx=$("$py" "$peers/langevin_peer.py" --impl jax --particles "$n" --steps "$s" 2>/dev/null)
  echo "$f"; echo "$c"; echo "{\"impl\": \"fokker run\", \"process_seconds\": $best}"; echo "$np"; echo "$jx"
  "$py" - "$f" "$c" "$best" "$np" "$jx" <<'PY'
import json, sys
f, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
process = float(sys.argv[3])
np_, jx = (json.loads(a) for a in sys.argv[4:])
r = lambda p: f["particle_steps_per_s"] / p["particle_steps_per_s"]
work = f["particles"] * f["steps"]
print(json.dumps({"workload": "L2", "particles": f["particles"], "steps": f["steps"], "adapter": f["adapter"],
                  "native_int64": f.get("native_int64"),
                  "fokker_over_numpy": round(r(np_), 2), "fokker_over_jax": round(r(jx), 2),
                  "fokker_over_jax_process": round(work / process / jx["particle_steps_per_s"], 2),
                  "of_ceiling": round(f["particle_steps_per_s"] / c["particle_steps_per_s"], 2)}))
PY
done
