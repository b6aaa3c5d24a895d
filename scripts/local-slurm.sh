#!/usr/bin/env bash
# SLURM test cluster on one host (Debian 12, slurm-wlm 22.05) with 8 fake GPUs and the host's
# real CPUs (nproc) and memory; cores are never shared between jobs (CR_Core, OverSubscribe=NO).
#
# Two nodes on one machine (Debian's slurmd is built with multiple-slurmd support: `slurmd -N`),
# so multi-node cells (--nodes=2) really run: node <host> and node <host>-2, each slurmd on its
# own port. Both advertise the host's cores and 8 fake GPUs, and the partition's QOS caps what the
# whole cluster allocates at once at the host's real count (GrpTRES=cpu=nproc,gres/gpu=8; a job
# asking for more is refused at submission, DenyOnLimit): at no moment are more cores or GPUs
# handed out than the machine has. <host> has the lower Weight, so a single-node job that the
# QOS lets start always fits there and never lands on <host>-2. The QOS needs accounting
# (slurmdbd): without it the cluster is the single node <host>, as before.
#
# Preemption (with the second node only): partition `urgent` holds <host>-2 alone, with a higher
# PriorityTier than `gpu` (PreemptType=preempt/partition_prio, PreemptMode=REQUEUE): an urgent job
# that needs <host>-2's cores preempts the gpu-partition jobs there (requeued, or cancelled with
# state PREEMPTED when submitted --no-requeue, as scaling-matrix submits). Nothing is submitted to
# `urgent` but a chaos test's preemptor (a few seconds of `sleep`); `gpu` jobs never preempt each
# other (same tier). `urgent` is hidden and not under the `local-host` QOS, so its short preemptor
# is the one job that may run beside a full `gpu` allocation.
#
#   scripts/local-slurm.sh up      install (once), configure, start daemons, wait for the node
#   scripts/local-slurm.sh down    stop the daemons this script starts (by pid file)
#   scripts/local-slurm.sh status  print one line; exit 0 only if the node is up
#
# Needs root and no systemd. Safe to run twice: packages, configs and running daemons are
# reused; a daemon is restarted only when its config changed. Accounting (slurmdbd + MariaDB,
# so `sacct` works) is best effort: if it cannot be started the cluster comes up without it
# and a warning is printed. Facts and reasons: shared/reference/slurm.md.
# Env: LOCAL_SLURM_ACCOUNTING=0 skips accounting; LOCAL_SLURM_WAIT_S (default 60).
set -euo pipefail

readonly CONF_DIR=/etc/slurm
readonly LOG_DIR=/var/log/slurm
readonly GPU_DIR=/var/lib/slurm-fakegpu
readonly STATE_DIR=/var/lib/local-slurm
readonly CLUSTER=local
readonly DB_NAME=slurm_acct_db
readonly DB_USER=slurm
readonly QOS=local-host  # the partition QOS holding the whole cluster to the host's real cores and GPUs
HOST="$(hostname -s)"
readonly HOST
readonly HOST2="$HOST-2"  # the second slurmd on this host (multi-node cells)
WAIT_S="${LOCAL_SLURM_WAIT_S:-60}"
ACCOUNTING=1
CHANGED_CTLD=0
CHANGED_DBD=0
T0=$SECONDS

log() { printf 'local-slurm: %s\n' "$*" >&2; }
warn() { printf 'local-slurm: WARNING: %s\n' "$*" >&2; }
die() { printf 'local-slurm: ERROR: %s\n' "$*" >&2; exit 1; }

require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    printf 'local-slurm: ERROR: must run as root (it installs packages and starts daemons); try: sudo %s %s\n' \
      "$0" "${1:-up}" >&2
    exit 2
  fi
}

# pid_alive PIDFILE -> 0 if the process named in PIDFILE is running.
pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS CMD... -> 0 once CMD succeeds
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < end )) || return 1
    sleep 0.5
  done
}

install_packages() {
  local base=(slurmctld slurmd slurm-client munge) acct_pkgs=(slurmdbd mariadb-server) missing=()
  local p
  for p in "${base[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [[ $ACCOUNTING == 1 ]]; then
    for p in "${acct_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  fi
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || warn "apt-get update failed; trying the install anyway"
  if ! apt-get install -y -qq "${missing[@]}" >"$STATE_DIR/apt-install.log" 2>&1; then
    ACCOUNTING=0
    warn "installing ${missing[*]} failed (see $STATE_DIR/apt-install.log); retrying without accounting"
    apt-get install -y -qq "${base[@]}" >>"$STATE_DIR/apt-install.log" 2>&1 \
      || die "cannot install ${base[*]} (see $STATE_DIR/apt-install.log)"
  fi
}

# write_if_changed PATH MODE -> writes stdin to PATH; returns 0 if the content changed.
write_if_changed() {
  local path=$1 mode=$2 tmp
  tmp="$(mktemp "$path.XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"; chmod "$mode" "$path"; return 1
  fi
  mv -f "$tmp" "$path"
  return 0
}

real_memory_mb() {  # 85% of MemTotal, leaving room for the OS and MariaDB
  awk '/^MemTotal:/ {printf "%d\n", $2 / 1024 * 0.85}' /proc/meminfo
}

render_slurm_conf() {
  cat <<EOF
# Written by scripts/local-slurm.sh; edits are overwritten on the next "up".
ClusterName=$CLUSTER
SlurmctldHost=$HOST
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmdSpoolDir=/var/spool/slurmd/%n
StateSaveLocation=/var/spool/slurmctld
SlurmUser=root
SlurmdUser=root
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
MinJobAge=3600
SlurmdParameters=config_overrides
EOF
  if [[ $ACCOUNTING == 1 ]]; then
    printf '%s\n' AccountingStorageType=accounting_storage/slurmdbd AccountingStorageHost=localhost \
      AccountingStorageTRES=gres/gpu AccountingStoreFlags=job_comment \
      AccountingStorageEnforce=limits  # resume finds jobs by --comment; the partition QOS is enforced
    printf '%s\n' PreemptType=preempt/partition_prio PreemptMode=REQUEUE  # the `urgent` partition (chaos tests)
  fi
  # The machine's real cores and memory: with CR_Core and no oversubscription, a job that would
  # share a core with another waits, so cells never distort each other's scaling numbers.
  local node
  for node in $(node_names); do
    echo "NodeName=$node NodeHostname=$HOST Port=$(node_port "$node") CPUs=$(nproc) RealMemory=$(real_memory_mb)" \
      "Gres=gpu:8 Weight=$(node_weight "$node") State=UNKNOWN"
  done
  local qos=""
  [[ $ACCOUNTING == 1 ]] && qos=" QOS=$QOS"
  echo "PartitionName=gpu Nodes=$(node_names | paste -sd,) Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO$qos" \
    "PriorityTier=1"
  if [[ $ACCOUNTING == 1 ]]; then
    echo "PartitionName=urgent Nodes=$HOST2 Default=NO MaxTime=10 State=UP OverSubscribe=NO PriorityTier=10 Hidden=YES"
  fi
}

node_names() {  # the second node only where the QOS can hold both to the host's real resources
  echo "$HOST"
  if [[ $ACCOUNTING == 1 ]]; then echo "$HOST2"; fi
}
node_port() { if [[ $1 == "$HOST2" ]]; then echo 6828; else echo 6818; fi; }  # 6819 is slurmdbd's
node_weight() { if [[ $1 == "$HOST2" ]]; then echo 10; else echo 1; fi; }
gpu_files() { if [[ $1 == "$HOST2" ]]; then echo "$GPU_DIR/fakegpu[8-15]"; else echo "$GPU_DIR/fakegpu[0-7]"; fi; }

write_configs() {
  mkdir -p "$CONF_DIR"
  if render_slurm_conf | write_if_changed "$CONF_DIR/slurm.conf" 644; then CHANGED_CTLD=1; fi
  local node
  if { echo "AutoDetect=off"; for node in $(node_names); do echo "NodeName=$node Name=gpu File=$(gpu_files "$node")"; done; } \
      | write_if_changed "$CONF_DIR/gres.conf" 644; then CHANGED_CTLD=1; fi
}

prepare_dirs() {
  mkdir -p /var/spool/slurmctld /var/spool/slurmd/"$HOST" /var/spool/slurmd/"$HOST2" "$LOG_DIR" "$GPU_DIR" \
    /run/munge "$STATE_DIR"
  touch "$GPU_DIR"/fakegpu{0..15}
  chown munge:munge /run/munge 2>/dev/null || true
}

start_munge() {
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey -c -k /etc/munge/munge.key && chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    munged --force 2>>"$STATE_DIR/munged.stderr"
    wait_for 15 bash -c 'munge -n | unmunge' || die "munged did not start"
  fi
}

db_password() {  # reuse the password already in slurmdbd.conf, else make one
  local conf="$CONF_DIR/slurmdbd.conf"
  if [[ -f $conf ]] && grep -q '^StoragePass=' "$conf"; then
    sed -n 's/^StoragePass=//p' "$conf"
  else
    od -An -N12 -tx1 /dev/urandom | tr -d ' \n'
  fi
}

start_mariadb() {
  if ! mysqladmin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld 2>/dev/null || true
    setsid -f mysqld_safe </dev/null >"$LOG_DIR/mysqld_safe.log" 2>&1
    wait_for 60 mysqladmin ping || return 1
  fi
  local pass=$1
  mysql --protocol=socket -u root <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$pass';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
}

render_slurmdbd_conf() {
  cat <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=$DB_NAME
StorageUser=$DB_USER
StoragePass=$1
LogFile=$LOG_DIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
EOF
}

sacctmgr_has() {  # sacctmgr_has ENTITY NAME -> 0 if registered
  sacctmgr -n -P list "$1" format="$1" 2>/dev/null | grep -qx "$2"
}

register_accounting() {
  sacctmgr_has cluster "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  sacctmgr_has account bench || sacctmgr -i add account bench >/dev/null
  sacctmgr -n -P list user root format=user,defaultaccount 2>/dev/null | grep -q '^root|bench$' \
    || sacctmgr -i add user root account=bench defaultaccount=bench >/dev/null
  sacctmgr_has qos "$QOS" || sacctmgr -i add qos "$QOS" >/dev/null
  sacctmgr -i modify qos "$QOS" set GrpTRES="cpu=$(nproc),gres/gpu=8" Flags=DenyOnLimit >/dev/null
}

# start_accounting -> 0 when slurmdbd is up and the cluster is registered.
start_accounting() {
  command -v slurmdbd >/dev/null && command -v mysqld_safe >/dev/null || return 1
  local pass
  pass="$(db_password)"
  start_mariadb "$pass" || { warn "MariaDB did not start (see $LOG_DIR/mysqld_safe.log)"; return 1; }
  if render_slurmdbd_conf "$pass" | write_if_changed "$CONF_DIR/slurmdbd.conf" 600; then CHANGED_DBD=1; fi
  if [[ $CHANGED_DBD == 1 ]] && pid_alive /run/slurmdbd.pid; then stop_pidfile /run/slurmdbd.pid slurmdbd; fi
  pid_alive /run/slurmdbd.pid || slurmdbd || return 1
  wait_for 30 sacctmgr -n list cluster || { warn "slurmdbd not answering (see $LOG_DIR/slurmdbd.log)"; return 1; }
  register_accounting
}

stop_pidfile() {  # stop_pidfile PIDFILE NAME: SIGTERM the recorded pid and wait for it to exit
  local pidfile=$1 name=$2 pid
  pid_alive "$pidfile" || return 0
  pid="$(cat "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  wait_for 30 bash -c "! kill -0 $pid" || { warn "$name pid $pid ignored SIGTERM; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$pidfile"
}

stop_slurmds() {  # every slurmd this script may have started (one pid file per node; the single-node one)
  local node
  for node in "$HOST" "$HOST2"; do stop_pidfile "/run/slurmd-$node.pid" "slurmd $node"; done
  stop_pidfile /run/slurmd.pid slurmd
}

start_slurm() {
  if [[ $CHANGED_CTLD == 1 ]]; then
    stop_slurmds
    stop_pidfile /run/slurmctld.pid slurmctld
  fi
  pid_alive /run/slurmctld.pid || slurmctld
  wait_for 30 scontrol ping || die "slurmctld not answering (see $LOG_DIR/slurmctld.log)"
  local node
  for node in $(node_names); do pid_alive "/run/slurmd-$node.pid" || slurmd -N "$node"; done
}

node_state() { sinfo -h -N -n "${1:-$HOST}" -o '%T' 2>/dev/null | head -n1; }

node_is_up() {
  case "$(node_state "${1:-$HOST}")" in
    idle | mixed | allocated | completing | mixed+* | idle+* | allocated+*) return 0 ;;
    *) return 1 ;;
  esac
}

wait_node_up() {
  local end=$((SECONDS + WAIT_S)) state node
  for node in $(node_names); do
    while ! node_is_up "$node"; do
      state="$(node_state "$node")"
      if [[ $state == *drain* || $state == down* || $state == *fail* ]]; then
        log "node $node is '$state'; resuming it"
        scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
      fi
      (( SECONDS < end )) || die "node $node not up after ${WAIT_S}s (state '$state'; see $LOG_DIR/slurmd-$node.log)"
      sleep 1
    done
  done
}

accounting_works() { sacct -n -X -S now -o JobID >/dev/null 2>&1; }

status_line() {
  local acct=off gres nodes
  accounting_works && acct=on
  gres="$(sinfo -h -N -n "$HOST" -o '%G' 2>/dev/null | head -n1)"
  nodes="$(sinfo -h -N -o '%N' 2>/dev/null | sort -u | paste -sd,)"
  printf 'local-slurm: node=%s state=%s gres=%s accounting=%s nodes=%s\n' "$HOST" "$(node_state || true)" \
    "${gres:-?}" "$acct" "${nodes:-?}"
}

cmd_up() {
  require_root up
  [[ ${LOCAL_SLURM_ACCOUNTING:-1} == 0 ]] && ACCOUNTING=0
  mkdir -p "$STATE_DIR"
  install_packages
  prepare_dirs
  start_munge
  write_configs  # sacctmgr reads slurm.conf, so it must name slurmdbd before registration
  if [[ $ACCOUNTING == 1 ]] && ! start_accounting; then
    ACCOUNTING=0
    warn "accounting could not be started: running without slurmdbd (sacct unavailable; use squeue + scontrol)"
    write_configs
  fi
  start_slurm
  wait_node_up
  printf '%s up_s=%d\n' "$(status_line)" $((SECONDS - T0))
}

cmd_down() {
  require_root down
  stop_slurmds
  stop_pidfile /run/slurmctld.pid slurmctld
  stop_pidfile /run/slurmdbd.pid slurmdbd
  if mysqladmin ping >/dev/null 2>&1; then log "stopping MariaDB"; mysqladmin shutdown || true; fi
  stop_pidfile /run/munge/munged.pid munged
  echo "local-slurm: down"
}

cmd_status() {
  if command -v sinfo >/dev/null && node_is_up; then
    status_line
    return 0
  fi
  echo "local-slurm: node=$HOST is not up (state '$(node_state || true)')"
  return 1
}

main() {
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
  esac
}

main "$@"
