#!/bin/sh
# Installs and starts what the Slurm tests (tests/test_slurm_cells.py) need, only where it is
# missing: Debian's slurm-wlm and munge, a one-node cluster on this machine (munged, slurmctld,
# slurmd; partition "debug"), and submitit in the project's venv. Idempotent: a cluster that
# already answers `sinfo` is left as it is. Needs root (or sudo) for apt-get and the daemons.
set -eu
PYTHON="${PYTHON:-.venv/bin/python}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if ! "$PYTHON" -c "import submitit" 2>/dev/null; then
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "submitit>=1.5.4"
fi
if sinfo -h -o %T 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
    exit 0
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends slurm-wlm munge
fi
HOST="$(hostname)"
CPUS="$(nproc)"
MEM_MB="$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)"
# munge: a random key (owner munge, mode 400), the daemon started once.
if [ ! -s /etc/munge/munge.key ]; then
    $SUDO sh -c 'dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null'
fi
$SUDO chown munge:munge /etc/munge/munge.key
$SUDO chmod 400 /etc/munge/munge.key
$SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
$SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! pgrep -x munged >/dev/null 2>&1; then
    $SUDO munged --force
fi
# slurm.conf: one node, this machine, in partition debug; no accounting.
$SUDO mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
if [ ! -f /etc/slurm/slurm.conf ] || ! grep -q "^NodeName=$HOST " /etc/slurm/slurm.conf; then
    $SUDO tee /etc/slurm/slurm.conf >/dev/null <<CONF
# Written by nerbench's tests/setup_slurm.sh: a one-node cluster for the tests.
ClusterName=nerbench-test
SlurmctldHost=$HOST
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmUser=root
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
DefMemPerCPU=$((MEM_MB / CPUS))
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
fi
if ! pgrep -x slurmctld >/dev/null 2>&1; then
    $SUDO slurmctld
fi
if ! pgrep -x slurmd >/dev/null 2>&1; then
    $SUDO slurmd
fi
# Wait (up to a minute) for the node to come up idle.
i=0
while [ $i -lt 60 ]; do
    if sinfo -h -o %T 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
        exit 0
    fi
    i=$((i + 1))
    sleep 1
done
echo "setup_slurm.sh: the one-node Slurm cluster did not come up; sinfo says:" >&2
sinfo >&2 || true
exit 1
