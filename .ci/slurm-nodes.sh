#!/usr/bin/env bash
# Compute nodes as network namespaces, so one machine holds a cluster of N nodes (used by slurm-up.sh when
# SLURM_NODES > 1). Node i is the namespace <prefix>i with its own address <net>.(10+i) on a veth pair whose
# host end sits on one bridge (<net>.1, where slurmctld listens), and its own hostname (a UTS namespace per
# slurmd: jobs on it see that hostname). Names resolve through a hosts file per namespace (/etc/netns/<ns>/hosts,
# bind-mounted over /etc/hosts in the slurmd's own mount namespace): the machine's /etc/hosts is not
# touched, and gloo binds to the address its hostname resolves to, the node's own. munge is shared through
# the filesystem: its unix socket under /run/munge works in every namespace.
#   slurm-nodes.sh conf            NodeName/PartitionName lines for slurm.conf (reads CPUS, MEM)
#   slurm-nodes.sh up              bridge, namespaces, veths, hosts files (idempotent)
#   slurm-nodes.sh start CONF      one slurmd per namespace not running yet (pid file
#                                 SLURM_VAR/run/slurmd-<node>.pid, spool SLURM_VAR/spool/slurmd/<node>, as
#                                 slurm-up.sh's slurm.conf says)
#   slurm-nodes.sh stop            stop those slurmd (by pid file)
#   slurm-nodes.sh down            stop them, remove the namespaces, their hosts files and the bridge
# Settings (env): SLURM_NODES (2), SLURM_NET (10.77.0: a free /24), SLURM_BRIDGE (abawbr0),
# SLURM_NODE_PREFIX (abaw-n), SLURM_VAR (/var: pid files under SLURM_VAR/run).
set -euo pipefail

nodes=${SLURM_NODES:-2}
net=${SLURM_NET:-10.77.0}
br=${SLURM_BRIDGE:-abawbr0}
prefix=${SLURM_NODE_PREFIX:-abaw-n}
var=${SLURM_VAR:-/var}
ctld=$(hostname -s)

names() { for i in $(seq "$nodes"); do echo "${prefix}${i}"; done; }
addr() { echo "${net}.$((10 + ${1#"$prefix"}))"; }

conf() {
  for n in $(names); do
    echo "NodeName=${n} NodeAddr=$(addr "$n") CPUs=${CPUS:-$(nproc)} RealMemory=${MEM:-1024} State=UNKNOWN"
  done
  echo "PartitionName=debug Nodes=${prefix}[1-${nodes}] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
}

up() {
  if ! ip link show "$br" >/dev/null 2>&1; then
    ip link add "$br" type bridge
    ip addr add "${net}.1/24" dev "$br"
  fi
  ip link set "$br" up
  for n in $(names); do
    ip netns list | awk '{print $1}' | grep -qx "$n" || ip netns add "$n"
    if ! ip -n "$n" link show eth0 >/dev/null 2>&1; then  # veth: <node>-h on the bridge, eth0 inside
      ip link add "${n}-h" type veth peer name eth0 netns "$n"
      ip -n "$n" addr add "$(addr "$n")/24" dev eth0
    fi
    ip link set "${n}-h" master "$br" up
    ip -n "$n" link set lo up
    ip -n "$n" link set eth0 up
    ip -n "$n" route replace default via "${net}.1"
    mkdir -p "/etc/netns/$n"
    { echo "127.0.0.1 localhost"; echo "${net}.1 ${ctld}"
      for m in $(names); do echo "$(addr "$m") ${m}"; done; } > "/etc/netns/$n/hosts"
  done
}

alive() {  # pid file $1 names a live (not zombie) process called $2
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] \
    && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}

start() {
  mkdir -p "$var/run"
  for n in $(names); do
    alive "$var/run/slurmd-$n.pid" slurmd && continue
    mkdir -p "$var/spool/slurmd/$n"
    # nsenter --net, not `ip netns exec` (which remounts /sys without the cgroup mounts slurmd reads); a
    # mount namespace of its own puts the node's hosts file over /etc/hosts. slurmd forks into the
    # background and keeps its namespaces; its jobs inherit them.
    nsenter --net="/run/netns/$n" unshare --mount --uts sh -c \
      "mount --bind /etc/netns/$n/hosts /etc/hosts && hostname $n && exec slurmd -f $1"
  done
}

stop() {
  for n in $(names); do
    if alive "$var/run/slurmd-$n.pid" slurmd; then kill "$(cat "$var/run/slurmd-$n.pid")"; fi
  done
  for n in $(names); do
    for _ in $(seq 20); do alive "$var/run/slurmd-$n.pid" slurmd || break; sleep 0.5; done
  done
}

down() {
  stop
  for n in $(names); do
    ip netns del "$n" 2>/dev/null || true
    ip link del "${n}-h" 2>/dev/null || true
    rm -rf "/etc/netns/$n"
  done
  ip link del "$br" 2>/dev/null || true
}

case "${1:-}" in
  conf) conf ;;
  up) up ;;
  start) start "${2:?slurm-nodes.sh start CONF}" ;;
  stop) stop ;;
  down) down ;;
  *) echo "usage: slurm-nodes.sh conf|up|start CONF|stop|down" >&2; exit 2 ;;
esac
