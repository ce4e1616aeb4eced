#!/usr/bin/env bash
# The tilted washboard's drift velocity and effective diffusion against their closed forms:
#   v     = L T (1 - exp(-F L / T)) / int_0^L dx I+(x)
#   D_eff = T <I+^2 I-> / <I+>^3      (<.> = (1/L) int_0^L dx)
# with I+(x) = int_0^L dy exp([V(x) - V(x - y) - F y] / T),
#      I-(x) = int_0^L dy exp([-V(x) + V(x + y) - F y] / T)   (midpoint rule, 400 x 400),
# V = v0 cos x, L = 2 pi, D = T (Reimann et al., PRL 87, 010602, 2001). The particles' values
# come from the unwrapped coordinates at t_end (started at the bottom of a well, x = pi;
# the transient of the first time units biases both by O(1 / t_end)).
# Usage: bash examples/boundary/washboard.sh [OUT_DIR]   (default runs/washboard; ~1 minute).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-runs/washboard}"
fokker="${FOKKER:-target/release/fokker}"
"$fokker" run "$here/washboard.toml" --out "$out" --force --progress none >/dev/null
m="$out/manifest.json"
# The first number after "key" inside the manifest's "unwrapped" record.
field() {
  awk -v key="\"$1\"" 'index($0, "\"unwrapped\"") { on = 1 }
    on && index($0, key) { getline; gsub(/[ ,]/, ""); print; exit }' "$m"
}
mean=$(field mean)
var=$(field variance)
awk -v mean="$mean" -v var="$var" -v t=40 -v v0=1.5 -v f=1.0 -v T=1.0 'BEGIN {
  L = 2 * 3.141592653589793; m = 400; h = L / m
  for (i = 0; i < m; i++) {
    x = (i + 0.5) * h; ip = 0; im = 0
    for (j = 0; j < m; j++) {
      y = (j + 0.5) * h
      ip += exp((v0 * cos(x) - v0 * cos(x - y) - f * y) / T) * h
      im += exp((-v0 * cos(x) + v0 * cos(x + y) - f * y) / T) * h
    }
    s1 += ip * h / L; s3 += ip * ip * im * h / L
  }
  v = (1 - exp(-f * L / T)) / s1
  deff = T * s3 / (s1 * s1 * s1)
  printf "drift velocity: particles %.4f, closed form %.4f\n", (mean - 3.14159) / t, v
  printf "effective diffusion: particles %.4f, closed form %.4f (free: %.1f)\n", var / (2 * t), deff, T
}'
