#!/usr/bin/env bash
# A real single-node SLURM on this machine for the `slurm` test suite, on loopback only.
#   bash .ci/slurm.sh        bring it up (idempotent: does nothing when it already answers
#                            with this configuration)
#   bash .ci/slurm.sh down   stop slurmctld, slurmd and munged (the ones whose pid files
#                            this script wrote)
# Debian's own packages (slurmctld, slurmd, slurm-client, munge; Slurm 22.05), no systemd
# and no cgroups: proctrack/linuxproc and task/none. The node's CPUs and RealMemory come
# from `slurmd -C` (dask-jobqueue asks --mem, so RealMemory must be there). Everything
# listens on 127.0.0.1 (NodeAddr, SlurmctldHost, CommunicationParameters=NoInAddrAny).
# Exit status: 0 when `sinfo` shows the node idle (or busy) with this configuration.
# Environment: PARTISIM_SLURM_DEADLINE (seconds to wait for the node, default 30).
set -euo pipefail

DEADLINE="${PARTISIM_SLURM_DEADLINE:-30}"
CONF=/etc/slurm/slurm.conf
STATE=/var/lib/slurm/slurmctld
SPOOL=/var/lib/slurm/slurmd
LOGS=/var/log/slurm
RUN=/run/partisim-slurm
HOST="$(hostname -s)"

log() { printf '[slurm.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

stop_pid() {
    # Stop the process named by pid file $1 (only if it still runs the program $2).
    local file=$1 prog=$2 pid
    [[ -f $file ]] || return 0
    pid=$(cat "$file" 2>/dev/null || true)
    if [[ -n $pid ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == "$prog" ]]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

down() {
    # Jobs first (while slurmctld answers: scancel hangs ~18 s without it), then the daemons.
    if [[ -f $RUN/slurmctld.pid ]] && command -v scancel >/dev/null; then
        timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
    fi
    stop_pid "$RUN/slurmd.pid" slurmd
    stop_pid "$RUN/slurmctld.pid" slurmctld
    stop_pid /run/munge/munged.pid munged
    log "SLURM detenido"
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
    command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
    command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # the packages' own services must not start (no config yet; this script starts
        # the daemons itself), so invoke-rc.d is told not to start anything meanwhile
        local made_policy=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            made_policy=1
        fi
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
    fi
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --force --keyfile=/etc/munge/munge.key
        else
            head -c 1024 /dev/urandom >/etc/munge/munge.key
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    # munged refuses to start unless its socket directory exists and is munge's
    install -d -o munge -g munge -m 0755 /run/munge
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0
    fi
    log "arrancando munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "munged no responde"
}

write_config() {
    # The node line from `slurmd -C` (CPUs, sockets, cores, RealMemory), without UpTime.
    local node
    node=$(slurmd -C | grep '^NodeName=' | sed -e 's/ UpTime=.*//')
    [[ $node == *RealMemory=* ]] || die "slurmd -C no dio RealMemory: $node"
    cat <<EOF
# Written by partisim's .ci/slurm.sh: a single-node SLURM on loopback for the tests.
ClusterName=partisim
SlurmctldHost=${HOST}(127.0.0.1)
CommunicationParameters=NoInAddrAny
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=${STATE}
SlurmdSpoolDir=${SPOOL}
SlurmctldPidFile=${RUN}/slurmctld.pid
SlurmdPidFile=${RUN}/slurmd.pid
SlurmctldLogFile=${LOGS}/slurmctld.log
SlurmdLogFile=${LOGS}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=30
KillWait=5
${node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
EOF
}

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_ready() {
    local state
    state=$(timeout 5 sinfo -h -n "$HOST" -o '%t' 2>/dev/null | head -1 || true)
    [[ $state == idle* || $state == mix* || $state == alloc* ]]
}

up() {
    install_packages
    start_munge
    mkdir -p "$RUN" "$STATE" "$SPOOL" "$LOGS" /etc/slurm
    local wanted changed=0
    wanted=$(write_config)
    if [[ ! -f $CONF ]] || [[ "$(cat "$CONF")" != "$wanted" ]]; then
        printf '%s\n' "$wanted" >"$CONF"
        changed=1
    fi
    if ((changed)); then
        stop_pid "$RUN/slurmd.pid" slurmd
        stop_pid "$RUN/slurmctld.pid" slurmctld
    fi
    if ! running "$RUN/slurmctld.pid"; then
        log "arrancando slurmctld"
        slurmctld
    fi
    if ! running "$RUN/slurmd.pid"; then
        log "arrancando slurmd"
        slurmd
    fi
    local end=$((SECONDS + DEADLINE))
    while ! node_ready; do
        if ((SECONDS >= end)); then
            sinfo -N -l >&2 || true
            tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
            die "el nodo $HOST no quedó disponible en ${DEADLINE} s"
        fi
        # a node left down or drained by an earlier run comes back
        state=$(timeout 5 sinfo -h -n "$HOST" -o '%t' 2>/dev/null | head -1 || true)
        if [[ $state == down* || $state == drain* ]]; then
            scontrol update nodename="$HOST" state=resume 2>/dev/null || true
        fi
        sleep 0.5
    done
    log "SLURM listo: $(sinfo -h -o '%P %t %c CPU %m MB' | head -1)"
}

case "${1:-up}" in
up) up ;;
down) down ;;
*) die "uso: $0 [up|down]" ;;
esac
