#!/usr/bin/env bash
# A single-node SLURM on loopback, for testing the workflow's SLURM profile on one machine (as root).
#
#   workflow/cluster/local_slurm.sh start STATE_DIR   install (Debian) and start munged, slurmctld, slurmd
#   workflow/cluster/local_slurm.sh stop STATE_DIR    stop the daemons this script started, by PID
#
# slurm.conf and gres.conf go to /etc/slurm, where every SLURM command looks (Snakemake's job steps drop
# SLURM_* variables, SLURM_CONF included); a config there that this script did not write is never
# replaced, and `stop` removes the ones it wrote. STATE_DIR receives spool directories, logs and PID files.
# The node offers all local CPUs, the memory it has, and two fake GPUs (gres backed by plain files), so
# GPU jobs can be scheduled.
set -euo pipefail

command=${1:?usage: local_slurm.sh start|stop STATE_DIR}
state=$(mkdir -p "${2:?usage: local_slurm.sh start|stop STATE_DIR}" && cd "$2" && pwd)

conf=/etc/slurm
marker="ClusterName=cdsynth-local"

stop() {
    for daemon in slurmd slurmctld munged; do
        if [[ -f "$state/$daemon.pid" ]]; then
            kill "$(cat "$state/$daemon.pid")" 2>/dev/null || true
            rm -f "$state/$daemon.pid"
        fi
    done
    if grep -qs "$marker" "$conf/slurm.conf"; then
        rm -f "$conf/slurm.conf" "$conf/gres.conf"
    fi
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "local_slurm.sh: $what did not come up in $seconds s; logs in $state" >&2
    stop
    exit 1
}

start() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "local_slurm.sh: must run as root (it starts SLURM daemons)" >&2
        exit 1
    fi
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >&2
    fi
    if [[ -f "$conf/slurm.conf" ]] && ! grep -qs "$marker" "$conf/slurm.conf"; then
        echo "local_slurm.sh: $conf/slurm.conf belongs to another cluster; not replacing it" >&2
        exit 1
    fi
    stop
    mkdir -p "$state/spool/ctld" "$state/spool/d" /run/munge "$conf"
    chown munge:munge /run/munge
    [[ -f /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    touch "$state/gpu0" "$state/gpu1"
    local cpus memory
    cpus=$(nproc)
    memory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
    cat >"$conf/gres.conf" <<EOF
Name=gpu File=$state/gpu0
Name=gpu File=$state/gpu1
EOF
    cat >"$conf/slurm.conf" <<EOF
$marker
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CommunicationParameters=NoInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldPidFile=$state/slurmctld.daemon.pid
SlurmdPidFile=$state/slurmd.daemon.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    runuser -u munge -- munged --foreground >"$state/munged.log" 2>&1 &
    echo $! >"$state/munged.pid"
    wait_for 20 munged munge -n
    slurmctld -D -i >>"$state/slurmctld.out" 2>&1 &
    echo $! >"$state/slurmctld.pid"
    wait_for 30 slurmctld scontrol ping
    slurmd -D -N localhost >>"$state/slurmd.out" 2>&1 &
    echo $! >"$state/slurmd.pid"
    wait_for 30 "the node" bash -c "sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'"
}

case $command in
    start) start ;;
    stop) stop ;;
    *) echo "usage: local_slurm.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
