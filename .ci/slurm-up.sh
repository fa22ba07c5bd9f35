#!/usr/bin/env bash
# Install (Debian) and start a SLURM cluster on this machine, for the tests marked `slurm`.
# Used by .ci/run before `make test` and by `make test-slurm`. Needs root. Idempotent: a cluster that
# already answers `sinfo` with SLURM_NODES nodes is left as it is; daemons are found by their pid files,
# so a second cluster on other ports (another SLURM_CONF) is never touched. The nodes' CPUs come from
# nproc; accounting is off; jobs run as plain processes (proctrack/linuxproc, task/none), so it works in
# a container without cgroups. SLURM_NODES=1: one slurmd on this host. SLURM_NODES=2 (or more): each slurmd
# in its own network and UTS namespace (.ci/slurm-nodes.sh), slurmctld on the bridge between them.
# Settings (env): SLURM_CONF (/etc/slurm/slurm.conf, as for every SLURM client), SLURM_NODES (1),
# SLURM_CLUSTER (abawkit-ci), SLURMCTLD_PORT (6817), SLURMD_PORT (6818), SLURM_VAR (/var: spool, logs and
# pid files below it), and slurm-nodes.sh's SLURM_NET, SLURM_BRIDGE, SLURM_NODE_PREFIX.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SLURM_CONF=${SLURM_CONF:-/etc/slurm/slurm.conf} SLURM_NODES=${SLURM_NODES:-1} SLURM_VAR=${SLURM_VAR:-/var}
cluster=${SLURM_CLUSTER:-abawkit-ci}
var=$SLURM_VAR

responding() { timeout 10 sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' (idle|mix|alloc)' || true; }
if command -v sinfo >/dev/null && [ "$(responding)" -ge "$SLURM_NODES" ]; then
  echo "slurm: already up ($(sinfo -h -o '%D nodes %c CPUs %T' | head -1))"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm-up: needs root (apt-get, munge and slurm daemons)" >&2; exit 2
fi
if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk -v n="$SLURM_NODES" '/MemTotal/ {print int($2 / 1024 * 0.8 / n)}' /proc/meminfo)
if [ "$SLURM_NODES" -gt 1 ]; then
  bash "$here/slurm-nodes.sh" up
  ctld_host="${host}(${SLURM_NET:-10.77.0}.1)"
  node_lines=$(CPUS=$cpus MEM=$mem bash "$here/slurm-nodes.sh" conf)
else
  ctld_host=$host
  node_lines="NodeName=${host} CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
fi
mkdir -p "$(dirname "$SLURM_CONF")" "$var/spool/slurmctld" "$var/spool/slurmd" "$var/log/slurm" "$var/run" \
  /run/munge /var/lib/munge /var/log/munge
new_conf=$(cat <<CONF
ClusterName=${cluster}
SlurmctldHost=${ctld_host}
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=kill_invalid_depend
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=600
StateSaveLocation=${var}/spool/slurmctld
SlurmdSpoolDir=${var}/spool/slurmd/%n
SlurmctldPidFile=${var}/run/slurmctld.pid
SlurmdPidFile=${var}/run/slurmd-%n.pid
SlurmctldLogFile=${var}/log/slurm/slurmctld.log
SlurmdLogFile=${var}/log/slurm/slurmd-%n.log
${node_lines}
CONF
)
alive() { [ -s "$1" ] && [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "$2" ]; }
if [ "$(cat "$SLURM_CONF" 2>/dev/null)" != "$new_conf" ]; then  # another layout: restart this cluster's controller
  printf '%s\n' "$new_conf" > "$SLURM_CONF"
  if alive "$var/run/slurmctld.pid" slurmctld; then
    kill "$(cat "$var/run/slurmctld.pid")"
    for _ in $(seq 20); do alive "$var/run/slurmctld.pid" slurmctld || break; sleep 0.5; done
  fi
fi

if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- munged --force 2>/dev/null || munged --force
alive "$var/run/slurmctld.pid" slurmctld || slurmctld -f "$SLURM_CONF"
if [ "$SLURM_NODES" -gt 1 ]; then
  bash "$here/slurm-nodes.sh" start "$SLURM_CONF"
else
  alive "$var/run/slurmd-${host}.pid" slurmd || slurmd -f "$SLURM_CONF"
fi

for _ in $(seq 60); do
  for node in $(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 ~ /down|drain/ {print $1}'); do  # e.g. left down by an earlier run
    scontrol update nodename="$node" state=resume 2>/dev/null || true
  done
  if [ "$(responding)" -ge "$SLURM_NODES" ]; then
    echo "slurm: up ($(sinfo -h -o '%D nodes %c CPUs %T' | head -1))"; exit 0
  fi
  sleep 1
done
echo "slurm-up: the nodes did not come up; see $var/log/slurm/slurmctld.log and slurmd-*.log" >&2
tail -n 5 "$var"/log/slurm/*.log >&2 || true
exit 1
