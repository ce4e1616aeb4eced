#!/usr/bin/env bash
# Convergence study: the distance between the particle histogram and the grid Fokker–Planck
# solution at t = 2, swept over the particle count N (at a small dt) and over the time step dt
# (at a large N). Writes convergence_N.csv, convergence_dt.csv and two plots drawn by
# `fokker plot`:
#   - tv against N follows the noise floor tv_floor ~ N^(-1/2) (bias is negligible at dt = 1e-3);
#   - tv - tv_floor (the part noise does not explain) against dt falls like dt (Euler–Maruyama's
#     weak order 1).
# Usage: bash examples/convergence/run.sh [OUT_DIR]   (default runs/convergence; ~1 minute on
# lavapipe). FOKKER=path/to/fokker overrides the binary (default: target/release/fokker).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-runs/convergence}"
fokker="${FOKKER:-target/release/fokker}"
mkdir -p "$out"

# The last row's value of column $2 in metrics.csv $1.
last() {
  awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
                       { v = $c } END { print v }' "$1"
}

run() { # run NAME N DT
  "$fokker" run "$here/double_well_1d.toml" --out "$out/$1" --force --progress none \
    --set "particles.count=$2" --set "dynamics.dt=$3" >/dev/null
}

echo "N,dt,tv,tv_floor,hellinger" > "$out/convergence_N.csv"
for n in 1000 4000 16000 64000 256000 1024000; do
  run "N$n" "$n" 1e-3
  m="$out/N$n/metrics.csv"
  echo "$n,1e-3,$(last "$m" tv),$(last "$m" tv_floor),$(last "$m" hellinger)" >> "$out/convergence_N.csv"
done

echo "dt,N,tv,tv_floor,bias" > "$out/convergence_dt.csv"
for dt in 0.04 0.02 0.01 0.005 0.0025; do
  run "dt$dt" 4000000 "$dt"
  m="$out/dt$dt/metrics.csv"
  tv=$(last "$m" tv); floor=$(last "$m" tv_floor)
  bias=$(awk -v a="$tv" -v b="$floor" 'BEGIN { print a - b }')
  echo "$dt,4000000,$tv,$floor,$bias" >> "$out/convergence_dt.csv"
done

"$fokker" plot "$out/convergence_N.csv" --x N --y tv,tv_floor --log-x --log-y \
  --title "TV to the Fokker–Planck solution at t = 2 against N (dt = 1e-3)" \
  --y-label "total variation" --out "$out/convergence_N.png"
"$fokker" plot "$out/convergence_dt.csv" --x dt --y tv,bias,tv_floor --log-x --log-y \
  --title "TV at t = 2 against dt (N = 4e6); bias = tv - tv_floor" \
  --y-label "total variation" --out "$out/convergence_dt.png"
cat "$out/convergence_N.csv" "$out/convergence_dt.csv"
