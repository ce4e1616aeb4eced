#!/usr/bin/env bash
# Drives examples/slurm/array.sbatch through a real single-node Slurm (ci/slurm-up.sh):
#  1. a 4-task array and a dependent merge job (sbatch --dependency=afterok): the merged run
#     equals an unsharded `fokker run` byte for byte (every density array, heatmap and
#     particle file);
#  2. examples/slurm/sweep.sbatch: a 2-point sweep with 2 shards per point as one 4-task
#     array, merged and summarised by a dependent job; each point equals a plain run;
#  3. pre-emption: `scancel --signal=USR1 --batch` on a running task -> fokker checkpoints and
#     exits 75 -> the script requeues the task -> it resumes -> byte-identical result.
# It really submits: when the daemons cannot start, it fails. The binary is
# target/release/fokker (FOKKER_BIN to override), put on the jobs' PATH. Jobs are polled with
# squeue / scontrol (there is no accounting database, so no sacct). About a minute.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${FOKKER_BIN:-$repo/target/release/fokker}
[ -x "$bin" ] || { echo "slurm-test: $bin missing: cargo build --release first" >&2; exit 1; }

work=$(mktemp -d /tmp/fokker-slurm.XXXXXX)
mkdir -p "$work/bin"
ln -s "$bin" "$work/bin/fokker"
export PATH="$work/bin:$PATH"
# The daemons are stopped (by PID) however this script ends.
trap 'bash "$repo/ci/slurm-down.sh"' EXIT
bash "$repo/ci/slurm-up.sh"
export SLURM_CONF=/tmp/slurm/etc/slurm.conf
cd "$work"
mkdir -p runs/logs

fail() {
  echo "slurm-test: FAILED: $*" >&2
  for f in runs/logs/*; do echo "== $f" >&2; cat "$f" >&2; done
  tail -n 20 /tmp/slurm/slurmctld.log /tmp/slurm/slurmd.log >&2 || true
  exit 1
}

# JobState of a job (every task of an array: one word per task), from scontrol.
state() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }

# Waits until every task of job $1 has left the queue; fails after $2 seconds, or at once when
# a task ended other than COMPLETED or a dependency can never be met.
wait_done() {
  local job=$1 limit=$2 t0=$SECONDS
  while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; do
    if scontrol show job -o "$job" | grep -q DependencyNeverSatisfied; then
      fail "job $job: its dependency failed"
    fi
    [ $((SECONDS - t0)) -lt "$limit" ] || fail "job $job still queued after ${limit} s"
    sleep 0.5
  done
  local s
  for s in $(state "$job"); do
    [ "$s" = COMPLETED ] || fail "job $job ended $s"
  done
}

# Every density array, heatmap and particle file of run $1 equals run $2's, and they list the same.
same_files() {
  local a=$1 b=$2 f n=0
  (cd "$a" && find density particles -type f | sort) >"$work/a.list"
  (cd "$b" && find density particles -type f | sort) >"$work/b.list"
  cmp -s "$work/a.list" "$work/b.list" || fail "$a and $b hold different files: $(diff "$work/a.list" "$work/b.list")"
  while read -r f; do
    cmp -s "$a/$f" "$b/$f" || fail "$f differs between $a and $b"
    n=$((n + 1))
  done <"$work/a.list"
  [ "$n" -ge 6 ] || fail "only $n files compared"
  echo "slurm-test: $a equals $b ($n files byte for byte)"
}

# Slurm's fake GPUs set GPU variables in the jobs: an explicit adapter wins over them.
export SCENARIO=$repo/examples/double_well.toml
small="--set particles.count=20000 --set dynamics.t_end=0.6 --set output.gif=false"
export FOKKER_ARGS="$small --adapter software"

# 1. Four shards and a merge that waits for them.
array=$(sbatch --parsable --array=0-3 "$repo/examples/slurm/array.sbatch")
merge=$(sbatch --parsable --dependency="afterok:$array" --output=runs/logs/merge-%j.log \
  --job-name=fokker-merge --wrap 'fokker merge runs/all runs/shard-00 runs/shard-01 runs/shard-02 runs/shard-03')
echo "slurm-test: array $array, merge $merge"
# shellcheck disable=SC2086 # FOKKER_ARGS is split at spaces, as the script does
fokker run "$SCENARIO" --out runs/whole --progress none $FOKKER_ARGS >/dev/null
wait_done "$merge" 90
grep -q '"status": "complete"' runs/all/manifest.json || fail "the merged run is not complete"
same_files runs/all runs/whole

# 2. A sweep as one array: 2 points x 2 shards = tasks 0-3, then a job that merges each
#    point's shards and writes the summary; each point equals a plain run with its --set.
export GRID="--grid dynamics.temperature=0.4,0.8" SHARDS=2 OUT=runs/sweep FOKKER_ARGS="$small --adapter software"
array=$(sbatch --parsable --array=0-3 "$repo/examples/slurm/sweep.sbatch")
merge=$(sbatch --parsable --dependency="afterok:$array" --output=runs/logs/sweep-merge-%j.log \
  --wrap 'for s in runs/sweep/shards/p*; do fokker merge runs/sweep/${s##*/} $s/shard-*; done
          fokker sweep-summary runs/sweep')
for t in 0.4 0.8; do
  # shellcheck disable=SC2086
  fokker run "$SCENARIO" --out "runs/plain-$t" --progress none $FOKKER_ARGS --set dynamics.temperature=$t >/dev/null
done
wait_done "$merge" 90
same_files runs/sweep/p000 runs/plain-0.4
same_files runs/sweep/p001 runs/plain-0.8
[ "$(grep -c ',complete,' runs/sweep/summary.csv)" = 2 ] || fail "summary.csv: $(cat runs/sweep/summary.csv)"

# 3. Pre-emption. Long enough (20000 steps, ~5 s of stepping here) to be caught running:
#    the signal goes out once the task's log shows that stepping has started.
rm -rf runs/shard-00
long="--set particles.count=20000 --set dynamics.t_end=40 --set output.every=10 --set output.gif=false"
export FOKKER_ARGS="$long --adapter software"
job=$(sbatch --parsable --array=0 "$repo/examples/slurm/array.sbatch")
log=runs/logs/${job}_0.log
t0=$SECONDS
until [ -f "$log" ] && grep -q '"event":"progress"' "$log"; do
  [ $((SECONDS - t0)) -lt 60 ] || fail "task $job never started stepping"
  sleep 0.1
done
scancel --signal=USR1 --batch "$job"
echo "slurm-test: sent USR1 to $job"
# shellcheck disable=SC2086
fokker run "$SCENARIO" --out runs/long --progress none $FOKKER_ARGS >/dev/null
# A requeued job waits cred_expire (10 s) plus a scheduling pass before it runs again.
wait_done "$job" 120
grep -q 'interrupted by a signal' "$log" || fail "fokker did not report the interruption"
grep -q 'interrupted (exit 75): requeued' "$log" || fail "the task was not requeued"
grep -q 'restart 1' "$log" || fail "the task did not run again"
grep -q '"status": "complete"' runs/shard-00/manifest.json || fail "the resumed run is not complete"
[ ! -e runs/shard-00/checkpoint ] || fail "the checkpoint was left behind"
same_files runs/shard-00 runs/long
echo "slurm-test: the pre-empted task's log, without progress lines:"
grep -v '"event":"progress"' "$log" | sed 's/^/  /'
cmp -s runs/shard-00/metrics.csv runs/long/metrics.csv || fail "metrics.csv differs after resume"
echo "slurm-test: passed"
cd / && rm -rf "$work"
