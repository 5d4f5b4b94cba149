#!/usr/bin/env bash
# A single-node SLURM cluster on this machine (as root, no systemd), for tests/test_slurm.py.
# Idempotent: installs slurm-wlm and munge from Debian if missing, writes slurm.conf, starts munged,
# slurmctld and slurmd unless they already run, then waits until a job runs.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by ci/slurm_up.sh"
NODE=$(hostname -s)

if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge > /dev/null
fi

if [[ -e $CONF ]] && ! grep -qxF "$MARK" "$CONF"; then
    echo "ci/slurm_up.sh: $CONF exists and was not written by this script; leaving it and its cluster alone" >&2
    exit 1
fi

# slurmd drains a node whose configured memory exceeds what it finds: stay a little below it.
real_memory=$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
new_conf=$(cat <<EOF
$MARK
ClusterName=ci
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# Containers rarely give slurmd a usable cgroup tree: track job processes by /proc instead.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Without accounting, squeue is the only status source: keep finished jobs visible for a day.
MinJobAge=86400
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$NODE CPUs=$(nproc) RealMemory=$real_memory State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)
if [[ ! -e $CONF ]] || [[ "$(cat "$CONF")" != "$new_conf" ]]; then
    printf '%s\n' "$new_conf" > "$CONF"
    changed=1
fi

if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile /etc/munge/munge.key
fi
mkdir -p /run/munge
chown munge:munge /etc/munge/munge.key /run/munge
chmod 400 /etc/munge/munge.key

# Alive, not a zombie left by a killed daemon (pgrep alone would count those).
alive() { ps -C "$1" -o stat= 2> /dev/null | grep -qv '^Z'; }
alive munged || runuser -u munge -- munged
for _ in $(seq 50); do munge -n > /dev/null 2>&1 && break; sleep 0.2; done
# A cold start (-c) drops jobs saved by a controller that was killed: they would hold the node.
alive slurmctld || slurmctld -c
alive slurmd || slurmd
if [[ -n ${changed:-} ]]; then
    scontrol reconfigure > /dev/null 2>&1 || true
fi

for _ in $(seq 60); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
    [[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
    # A node left down by an earlier, unclean shutdown comes back once told to.
    [[ $state == down* || $state == drain* ]] && scontrol update nodename="$NODE" state=resume 2> /dev/null || true
    sleep 1
done
if [[ $state != idle* && $state != mixed* && $state != allocated* ]]; then
    echo "ci/slurm_up.sh: node $NODE is '${state:-not known}' after 60 s; see /var/log/slurm/*.log" >&2
    exit 1
fi

if [[ $(timeout 60 srun -N1 hostname) != "$NODE" ]]; then
    echo "ci/slurm_up.sh: srun -N1 hostname failed; see /var/log/slurm/*.log" >&2
    exit 1
fi
echo "SLURM is up: node $NODE, partition debug ($(nproc) CPUs, ${real_memory} MB)"
