#!/usr/bin/env bash
# Install (Debian) and start a SLURM cluster on this machine, for the tests marked `slurm`.
# Used by .ci/run before `make test` and by `make test-slurm`. Needs root. Idempotent: a cluster that
# already answers `sinfo` with SLURM_NODES nodes and runs this script's slurm.conf is left as it is; another
# slurm.conf (settings changed) restarts its daemons. Daemons are found by their pid files, so a second
# cluster on other ports (another SLURM_CONF and SLURM_VAR) is never touched. The nodes' CPUs come from
# nproc; accounting is off; jobs run as plain processes (proctrack/linuxproc, task/none), so it works in
# a container without cgroups. SLURM_NODES=2 (the default; or more): each slurmd in its own network and UTS
# namespace (.ci/slurm-nodes.sh), slurmctld on the bridge between them. SLURM_NODES=1: one slurmd on this host.
# Jobs are requeued after a node failure (JobRequeue=1) and wait 30 s before they start again
# (cred_expire; SLURM's default is 120 s); a node set down stays down until `scontrol update state=resume`
# (ReturnToService=1: only a node that stopped answering comes back by itself).
# Settings (env): SLURM_CONF (/etc/slurm/slurm.conf, as for every SLURM client), SLURM_NODES (2),
# SLURM_CLUSTER (abawkit-ci), SLURMCTLD_PORT (6817), SLURMD_PORT (6818), SLURM_VAR (/var: spool, logs and
# pid files below it), and slurm-nodes.sh's SLURM_NET, SLURM_BRIDGE, SLURM_NODE_PREFIX.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SLURM_CONF=${SLURM_CONF:-/etc/slurm/slurm.conf} SLURM_NODES=${SLURM_NODES:-2} SLURM_VAR=${SLURM_VAR:-/var}
var=$SLURM_VAR
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk -v n="$SLURM_NODES" '/MemTotal/ {print int($2 / 1024 * 0.8 / n)}' /proc/meminfo)
if [ "$SLURM_NODES" -gt 1 ]; then
  ctld_host="${host}(${SLURM_NET:-10.77.0}.1)"
  node_lines=$(CPUS=$cpus MEM=$mem bash "$here/slurm-nodes.sh" conf)
  per_node="-%n"  # one slurmd per node: its own spool, pid and log files
else
  ctld_host=$host
  node_lines="NodeName=${host} CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
  per_node=""
fi
conf=$(cat <<CONF
ClusterName=${SLURM_CLUSTER:-abawkit-ci}
SlurmctldHost=${ctld_host}
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=30
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
ReturnToService=1
JobRequeue=1
MinJobAge=600
StateSaveLocation=${var}/spool/slurmctld
SlurmdSpoolDir=${var}/spool/slurmd${per_node/-//}
SlurmctldPidFile=${var}/run/slurmctld.pid
SlurmdPidFile=${var}/run/slurmd${per_node}.pid
SlurmctldLogFile=${var}/log/slurm/slurmctld.log
SlurmdLogFile=${var}/log/slurm/slurmd${per_node}.log
${node_lines}
CONF
)

responding() { timeout 10 sinfo -h -N -r -o '%N %T' 2>/dev/null | grep -cE ' (idle|mix|alloc)' || true; }
if command -v sinfo >/dev/null && [ "$(cat "$SLURM_CONF" 2>/dev/null)" = "$conf" ] \
    && [ "$(responding)" -ge "$SLURM_NODES" ]; then
  echo "slurm: already up ($(sinfo -h -o '%D nodes %c CPUs %T' | head -1))"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm-up: needs root (apt-get, munge and slurm daemons)" >&2; exit 2
fi
if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null \
    || ! command -v ip >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurmctld slurmd slurm-client munge iproute2 >/dev/null
fi

alive() {  # pid file $1 names a live (not zombie) process called $2
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] \
    && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}
stop() {  # this cluster's daemons only, by pid file
  for pid in "$var"/run/slurmctld.pid "$var"/run/slurmd*.pid; do
    alive "$pid" slurmctld || alive "$pid" slurmd || continue
    kill "$(cat "$pid")"
    for _ in $(seq 20); do alive "$pid" slurmctld || alive "$pid" slurmd || break; sleep 0.5; done
  done
}
mkdir -p "$(dirname "$SLURM_CONF")" "$var/spool/slurmctld" "$var/spool/slurmd" "$var/log/slurm" "$var/run" \
  /run/munge /var/lib/munge /var/log/munge
if [ "$(cat "$SLURM_CONF" 2>/dev/null)" != "$conf" ]; then  # another layout or settings: restart
  stop
  printf '%s\n' "$conf" > "$SLURM_CONF"
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
  bash "$here/slurm-nodes.sh" up
  bash "$here/slurm-nodes.sh" start "$SLURM_CONF"
else
  alive "$var/run/slurmd.pid" slurmd || slurmd -f "$SLURM_CONF"
fi

for _ in $(seq 60); do
  # e.g. a node left down by an earlier run
  for node in $(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 ~ /down|drain/ {print $1}'); do
    scontrol update nodename="$node" state=resume 2>/dev/null || true
  done
  if [ "$(responding)" -ge "$SLURM_NODES" ]; then
    echo "slurm: up ($(sinfo -h -o '%D nodes %c CPUs %T' | head -1))"; exit 0
  fi
  sleep 1
done
echo "slurm-up: the nodes did not come up; see $var/log/slurm/slurmctld.log and slurmd*.log" >&2
tail -n 5 "$var"/log/slurm/*.log >&2 || true
exit 1
