#!/usr/bin/env bash
# Stops the daemons ci/slurm-up.sh started, by the PIDs it recorded in /tmp/slurm/pids
# (never by name: other Slurm or munge processes on the machine are left alone).
set -u
pids=/tmp/slurm/pids
[ -s "$pids" ] || exit 0
# slurmd, then slurmctld, then munged: the reverse of the start order.
for pid in $(tac "$pids" | awk '{print $2}'); do
  kill "$pid" 2>/dev/null || true
done
for pid in $(awk '{print $2}' "$pids"); do
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
done
rm -f "$pids"
