#!/usr/bin/env bash
# The scaling picture of the README: particle-steps/s against N (workload L2, N = 1e3 .. 1e8)
# and interactions/s against N = M (workload S2, N = 1e3 .. 65536), fokker and its peers, each
# measured in the same run, written as long CSV tables (impl, n, rate) and drawn with the
# project's own `fokker plot` (log–log, one line per implementation).
#   bash benches/scaling.sh [OUTDIR]   (default docs/img; PYTHON=... picks the interpreter)
# L2 takes max(10, min(10000, 1e9 / N)) steps per size (about 1e9 particle-steps or fewer, so
# the small sizes measure the per-step floor and the large ones the throughput); S2 one step
# (its cost is N·M kernel evaluations). The NumPy S2 peer is skipped above N = 16384
# (minutes per step). Sizes either side of a chunk boundary of the state are
# included next to their neighbours so a cliff there would show: 2^24 = lavapipe's 128 MiB
# binding over 8 bytes per 2D particle. Takes ~10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
peers="${FOKKER_PEERS:-../shared/peers}"
out=${1:-docs/img}
mkdir -p "$out"
cargo build --release -q
cargo build --release --bench l2 --bench s2 >/dev/null 2>&1 || cargo bench --bench l2 --bench s2 --no-run
l2="$out/scaling_l2.csv"; s2="$out/scaling_s2.csv"
# One CSV row: implementation, size, and the rate field $4 of the JSON line $3.
row() {
  "$py" -c 'import json, sys; print(sys.argv[1], sys.argv[2], format(json.loads(sys.argv[3])[sys.argv[4]], ".6g"), sep=",")' "$@"
}
echo "impl,n,particle_steps_per_s" >"$l2"
for n in 1000 10000 100000 1000000 10000000 16777216 16777217 100000000; do
  s=$(( 1000000000 / n )); (( s > 10000 )) && s=10000; (( s < 10 )) && s=10
  f=$(cargo bench -q --bench l2 -- --particles "$n" --steps "$s" 2>/dev/null | tail -n 1)
  jx=$("$py" "$peers/langevin_peer.py" --impl jax --particles "$n" --steps "$s" 2>/dev/null)
  np=$("$py" "$peers/langevin_peer.py" --impl numpy --particles "$n" --steps "$s")
  for line in "fokker $f" "jax $jx" "numpy $np"; do
    row "${line%% *}" "$n" "${line#* }" particle_steps_per_s >>"$l2"
  done
  tail -n 3 "$l2"
done
echo "impl,n,interactions_per_s" >"$s2"
for n in 1024 4096 16384 65536; do
  f=$(cargo bench -q --bench s2 -- --particles "$n" --targets "$n" --steps 1 2>/dev/null | tail -n 1)
  jx=$("$py" "$peers/sdflow_peer.py" --impl jax --particles "$n" --targets "$n" --steps 1 2>/dev/null)
  rows=("fokker $f" "jax $jx")
  if (( n <= 16384 )); then
    rows+=("numpy $("$py" "$peers/sdflow_peer.py" --impl numpy --particles "$n" --targets "$n" --steps 1)")
  fi
  for line in "${rows[@]}"; do
    row "${line%% *}" "$n" "${line#* }" interactions_per_s >>"$s2"
  done
  tail -n ${#rows[@]} "$s2"
done
target/release/fokker plot "$l2" --x n --y particle_steps_per_s --group impl --log-x --log-y \
  --title "L2: overdamped Langevin, 2D double well" --y-label "particle-steps / s" \
  --out "$out/scaling_l2.png"
target/release/fokker plot "$s2" --x n --y interactions_per_s --group impl --log-x --log-y \
  --title "S2: SD-flow kernel, N = M" --y-label "kernel evaluations / s" \
  --out "$out/scaling_s2.png"
echo "wrote $out/scaling_l2.png and $out/scaling_s2.png"
