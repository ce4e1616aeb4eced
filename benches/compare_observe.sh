#!/usr/bin/env bash
# What observation costs, on workload L2 (benches/l2.toml: 2D double well, 128 x 128 histogram;
# the histogram, the moments and the energy columns at every snapshot).
#   bash benches/compare_observe.sh [particles ...]        (default: 1e5 1e6 1e7)
#   CONFIGS="128 128 global|128 128 tiled" bash benches/compare_observe.sh 1000000
#                                         (grids and binnings, "bins0 bins1 binning" each)
# Per size and histogram binning (FOKKER_HISTOGRAM=global: every particle adds to the global
# bins with an atomic; private: each workgroup counts into its own copy in workgroup memory
# and flushes it, the default on GPUs where the copy fits; tiled: private, the grid cut into
# as few tiles as fit, one pass over the workgroup's particles each) it runs 200 steps twice,
# with one snapshot at the end and with a snapshot every 10 steps, and prints:
# - snapshot_over_block: one snapshot's GPU time (histogram + moments + energy, from the
#   manifest's timestamp timings) over the GPU time of 100 fused steps (target <= 0.25);
# - every10_slowdown: particle-steps per second of the run without snapshots over the one
#   with a snapshot every 10 steps, both over stepping + observing + writing (target <= 2);
# The L2 grid's private copy (128 x 128 16-bit bins = 32 KiB, plus the tallies) does not fit
# lavapipe's 32 KiB of workgroup memory, so it runs global or in two tiles; 64 x 128 bins on
# the same range fit whole, and 256 x 256 take five tiles.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100000 1000000 10000000)
cargo build --release -q
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # particles every binning bins0 bins1 -> manifest path
  FOKKER_HISTOGRAM=$3 target/release/fokker run benches/l2.toml --out "$tmp/$2-$3-$4-$5" \
    --force --progress none --set particles.count="$1" --set dynamics.steps=200 \
    --set output.every="$2" --set "output.histogram.bins=[$4, $5]" >/dev/null
  echo "$tmp/$2-$3-$4-$5/manifest.json"
}
for n in "${sizes[@]}"; do
  IFS='|' read -r -a configs <<<"${CONFIGS:-128 128 global|128 128 tiled|64 128 global|64 128 private|256 256 global|256 256 tiled}"
  for config in "${configs[@]}"; do
    read -r bins0 bins1 binning <<<"$config"
    {
      # Best of two for each, alternating (the machine may be shared).
      a=(); b=()
      for rep in 1 2; do
        a+=("$(run "$n" 1 "$binning" "$bins0" "$bins1")")
        cp "${a[-1]}" "$tmp/a$rep.json"; a[-1]="$tmp/a$rep.json"
        b+=("$(run "$n" 0.01 "$binning" "$bins0" "$bins1")")
        cp "${b[-1]}" "$tmp/b$rep.json"; b[-1]="$tmp/b$rep.json"
      done
      python3 - "$n" "$binning" "$bins0" "$bins1" "${a[@]}" "${b[@]}" <<'PY'
import json, sys
n, binning, bins0, bins1 = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ms = [json.load(open(p)) for p in sys.argv[5:]]
quiet, busy = ms[:2], ms[2:]
def rate(m):
    t = m["timings"]
    return n * 200 / (t["stepping_seconds"] + t["observe_seconds"] + t["write_seconds"])
def snapshot(m):
    return m["timings"]["gpu_observe_seconds"] / len(m["snapshots"])
def block(m):
    return m["timings"]["gpu_stepping_seconds"] / 200 * 100
snap = min(snapshot(m) for m in busy)
blk = min(block(m) for m in quiet)
print(json.dumps({
    "workload": "L2 observation", "particles": n, "bins": [bins0, bins1],
    "binning": binning, "adapter": ms[0]["adapter"]["name"],
    "snapshot_seconds": round(snap, 5), "block100_seconds": round(blk, 5),
    "snapshot_over_block": round(snap / blk, 3),
    "every10_slowdown": round(max(rate(m) for m in quiet) / max(rate(m) for m in busy), 2),
}))
PY
    }
  done
done
