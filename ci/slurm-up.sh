#!/usr/bin/env bash
# Starts a single-node Slurm for CI from the project's own config (ci/slurm/): munged,
# slurmctld and slurmd, as root, without systemd or cgroups. Installs Debian's packages when
# they are missing. The daemons' PIDs go to /tmp/slurm/pids; ci/slurm-down.sh stops them by
# PID. Fails (exit 1, with the daemons' logs) when the node does not come up idle.
#
# Clients need the same config: `export SLURM_CONF=/tmp/slurm/etc/slurm.conf`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=/tmp/slurm
export SLURM_CONF=$root/etc/slurm.conf

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
   ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

if [ -s "$root/pids" ]; then
  echo "slurm-up: $root/pids exists; run ci/slurm-down.sh first" >&2
  exit 1
fi
# A node drained by an earlier bad start stays drained while the saved state lives: start clean.
rm -rf "${root:?}/state" "${root:?}/spool" "${root:?}/etc"
mkdir -p "$root/state" "$root/spool" "$root/etc" /run/munge
cp "$here/slurm/slurm.conf" "$here/slurm/gres.conf" "$root/etc/"
# Fake GPUs: character devices (copies of /dev/null), which is what gres.conf's File= needs.
for i in 0 1 2 3; do
  [ -c "$root/fakegpu$i" ] || mknod "$root/fakegpu$i" c 1 3
done

chown munge:munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  runuser -u munge -- mungekey --create
fi
rm -f /run/munge/munged.pid
runuser -u munge -- /usr/sbin/munged
for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
echo "munged $(cat /run/munge/munged.pid)" >"$root/pids"

slurmctld -D >"$root/slurmctld.out" 2>&1 &
echo "slurmctld $!" >>"$root/pids"
slurmd -D -N localhost >"$root/slurmd.out" 2>&1 &
echo "slurmd $!" >>"$root/pids"

# The node reports idle about a second after the daemons start.
for _ in $(seq 150); do
  if [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ]; then
    echo "slurm-up: node idle ($(sinfo -h -o '%P %D %G'))"
    exit 0
  fi
  sleep 0.2
done
echo "slurm-up: the node did not come up idle within 30 s" >&2
sinfo -N -l >&2 || true
tail -n 30 "$root/slurmctld.log" "$root/slurmd.log" "$root"/*.out >&2 || true
bash "$here/slurm-down.sh"
exit 1
