#!/usr/bin/env bash
# One run split across devices against one device: the same Langevin workload with
# `--adapter ONE` and with `--devices ALL`, alternated REPS times, then the medians of the
# stepping time (manifest timings.stepping_seconds: the host reduction and the threads'
# scheduling are inside it, pipeline compilation and file writing are not) and their ratio.
# Default: two devices opened on the one software adapter, where the target is a ratio
# (two / one) of at most 1.10. On a GPU node: ONE=index:0 ALL=all.
#   bash benches/devices.sh [particles steps reps]   (default: 400000 400 3)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-400000}; s=${2:-400}; reps=${3:-3}
one=${ONE:-software}; all=${ALL:-software,software}
cargo build --release -q
bin=$PWD/target/release/fokker
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/s.toml" <<TOML
seed = 1
[particles]
count = $n
dim = 2
init = { kind = "gaussian", mean = [0.0, 0.0], std = 0.5 }
[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.8
dt = 1e-3
steps = $s
[output]
every = $((s / 2))
histogram = { bins = [64, 64], range = [[-2.5, 2.5], [-2.5, 2.5]] }
gif = false
TOML
for ((r = 0; r < reps; r++)); do
  "$bin" run "$tmp/s.toml" --out "$tmp/one$r" --progress none --adapter "$one" >/dev/null
  "$bin" run "$tmp/s.toml" --out "$tmp/all$r" --progress none --devices "$all" >/dev/null
done
python3 - "$tmp" "$reps" "$n" "$s" "$one" "$all" <<'PY'
import json, statistics, sys
tmp, reps, n, s, one, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
def med(kind, key):
    return statistics.median(json.load(open(f"{tmp}/{kind}{r}/manifest.json"))["timings"][key] for r in range(reps))
t1, t2 = med("one", "stepping_seconds"), med("all", "stepping_seconds")
w1, w2 = med("one", "wall_seconds"), med("all", "wall_seconds")
print(json.dumps({"particles": n, "steps": s, "reps": reps, "one": one, "devices": every,
                  "stepping_s_one": round(t1, 3), "stepping_s_devices": round(t2, 3),
                  "particle_steps_per_s_one": round(n * s / t1), "particle_steps_per_s_devices": round(n * s / t2),
                  "wall_s_one": round(w1, 2), "wall_s_devices": round(w2, 2),
                  "ratio_devices_over_one": round(t2 / t1, 3)}))
PY
