#!/usr/bin/env bash
# The L2 double well written as an expression against the built-in, in the same run on this
# machine: each measured twice, alternating, best of two; prints the ratio of particle-steps
# per second (expression / built-in, target >= 0.9), the start-up of each (adapter, shader
# compilation) and the expression's code generation + naga validation time (target: the two
# together add < 1 s to a run's start).
#   bash benches/compare_expr.sh [particles steps] ...   (default: 1e6 x 100 and 1e7 x 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1000000 100 10000000 1000)
cargo build --release --bench l2 >/dev/null 2>&1 || cargo bench --bench l2 --no-run
for ((i = 0; i < ${#sizes[@]}; i += 2)); do
  n=${sizes[i]}; s=${sizes[i+1]}
  runs=()
  for _ in 1 2; do
    for p in builtin expr; do
      runs+=("$(cargo bench -q --bench l2 -- --particles "$n" --steps "$s" --potential "$p" 2>/dev/null | tail -n 1)")
    done
  done
  printf '%s\n' "${runs[@]}"
  python3 - "${runs[@]}" <<'PY'
import json, sys
runs = [json.loads(a) for a in sys.argv[1:]]
best = lambda p: max((r for r in runs if r["potential"] == p), key=lambda r: r["particle_steps_per_s"])
b, e = best("builtin"), best("expr")
print(json.dumps({"workload": "L2", "particles": b["particles"], "steps": b["steps"], "adapter": b["adapter"],
                  "expr_over_builtin": round(e["particle_steps_per_s"] / b["particle_steps_per_s"], 3),
                  "startup_builtin_s": b["startup_seconds"], "startup_expr_s": e["startup_seconds"],
                  "codegen_s": e["codegen_seconds"]}))
PY
done
