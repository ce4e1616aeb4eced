#!/usr/bin/env bash
# The diffusion samplers side by side: fokker's reverse SDE (Euler–Maruyama, 1000 steps) and
# probability flow (Heun, 200 steps) to the three-component 2D mixture of examples/diffusion/,
# against the JAX peer (benches/diffusion_peer.py) on the same workload in the same run.
# fokker is timed twice over: its stepping (manifest timings.stepping_seconds: the job only)
# and the wall time of the whole `fokker run` process (adapter start-up, shader compilation,
# the one snapshot's outputs included; best of two). The peer's time is its stepping plus the
# final histogram, compilation excluded. Needs `pip install numpy 'jax[cpu]'`
# (PYTHON=/path/to/python to pick the interpreter).
#   bash benches/compare_diffusion.sh [particles] ...   (default: 1e6)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1000000)
cargo build --release -q
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in "${sizes[@]}"; do
  for sampler in reverse_sde probability_flow; do
    # The example without its reference, one snapshot at the end: the sampler's cost alone.
    grep -v '^reference' "examples/diffusion/$sampler.toml" | sed 's/^every = .*/every = 1.0/' \
      >"$tmp/$sampler.toml"
    best=""
    for rep in 1 2; do
      start=$(date +%s.%N)
      target/release/fokker run "$tmp/$sampler.toml" --out "$tmp/run" --force --progress none \
        --set particles.count="$n" >/dev/null
      end=$(date +%s.%N)
      wall=$(echo "$end - $start" | bc)
      if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc)" -eq 1 ]; then
        best=$wall; cp "$tmp/run/manifest.json" "$tmp/best.json"   # job figures of the same run
      fi
    done
    f=$("$py" - "$tmp/best.json" "$best" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t = m["timings"]
steps = m["plan"]["dynamics"]["steps"]
n = m["plan"]["particles"]["count"]
print(json.dumps({"impl": "fokker", "particles": n, "steps": steps,
                  "adapter": m["adapter"]["name"],
                  "stepping_seconds": t["stepping_seconds"], "process_seconds": float(sys.argv[2]),
                  "particle_steps_per_s": t["particle_steps_per_second"]}))
PY
)
    jx=$("$py" benches/diffusion_peer.py --sampler "$sampler" --particles "$n" 2>/dev/null)
    echo "$f"; echo "$jx"
    "$py" - "$sampler" "$f" "$jx" <<'PY'
import json, sys
f, jx = (json.loads(a) for a in sys.argv[2:])
work = f["particles"] * f["steps"]
print(json.dumps({"workload": sys.argv[1], "particles": f["particles"], "steps": f["steps"],
                  "adapter": f["adapter"],
                  "fokker_over_jax_job": round(f["particle_steps_per_s"] / jx["particle_steps_per_s"], 2),
                  "fokker_over_jax_process": round(work / f["process_seconds"] / jx["particle_steps_per_s"], 2)}))
PY
  done
done
