#!/usr/bin/env bash
# Arrhenius plot of the double well's escape rate: for each temperature T, kramers.toml counts
# transitions between the wells and reports k (left -> right) with its Poisson standard
# error; Kramers' high-barrier formula k = omega_a omega_b / (2 pi) exp(-Delta U / T) with
# omega_a = sqrt(U''(-1)) = sqrt(8), omega_b = sqrt(|U''(0)|) = 2 is drawn beside it (the
# particles sit below it by the finite-barrier correction, ~ 1 - O(T / Delta U)).
# Column k_grid is the grid solver's exact rate: kramers_grid.toml, the same well with the
# right basin (x >= 0.9) absorbing and reference = "fokker_planck", reports the lowest
# eigenvalue of the discretised generator with those cells as sinks (manifest:
# first_passage.escape_rate_reference), the rate the counted k estimates.
# Usage: bash examples/boundary/kramers.sh [OUT_DIR]   (default runs/kramers; ~30 s on
# lavapipe). FOKKER=path/to/fokker overrides the binary (default: target/release/fokker).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-runs/kramers}"
fokker="${FOKKER:-target/release/fokker}"
mkdir -p "$out"

# The first value of "key" in manifest.json $1 after the line matching $2.
after() {
  awk -v start="$2" -v key="\"$3\":" 'index($0, start) { on = 1 }
    on && index($0, key) { gsub(/[ ,]/, "", $2); print $2; exit }' FS=': ' "$1"
}

echo "T,inv_T,k,k_error,k_kramers,k_grid" > "$out/arrhenius.csv"
for t in 0.2 0.25 0.3 0.4 0.5; do
  "$fokker" run "$here/kramers.toml" --out "$out/T$t" --force --progress none \
    --set "dynamics.temperature=$t" >/dev/null
  m="$out/T$t/manifest.json"
  k=$(after "$m" '"from": "left"' rate)
  e=$(after "$m" '"from": "left"' std_error)
  kk=$(awk -v t="$t" 'BEGIN { print sqrt(8) * 2 / (2 * 3.141592653589793) * exp(-1 / t) }')
  "$fokker" run "$here/kramers_grid.toml" --out "$out/grid_T$t" --force --progress none \
    --set "dynamics.temperature=$t" >/dev/null
  kg=$(after "$out/grid_T$t/manifest.json" '"first_passage"' escape_rate_reference)
  echo "$t,$(awk -v t="$t" 'BEGIN { print 1 / t }'),$k,$e,$kk,$kg" >> "$out/arrhenius.csv"
done

"$fokker" plot "$out/arrhenius.csv" --x inv_T --y k,k_kramers,k_grid --log-y \
  --title "double-well escape rate against 1/T (Arrhenius)" \
  --y-label "k (log scale)" --out "$out/arrhenius.png"
cat "$out/arrhenius.csv"
