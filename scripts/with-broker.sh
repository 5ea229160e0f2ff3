#!/usr/bin/env bash
# Run a command against a fresh Tansu broker on a free loopback port.
#
#   scripts/with-broker.sh [--storage memory|s3] COMMAND [ARGS...]
#
# Storage (also YISHI_BROKER_STORAGE; default memory):
#   memory  everything lives in the broker's memory and goes with it.
#   s3      Tansu's s3:// storage on a local S3-compatible server (moto's server mode,
#           installed into .venv by scripts/setup-moto.sh) started here on its own free
#           loopback port: records, committed offsets, producer ids and transaction state
#           outlive a broker that is killed and restarted.
#
# Exported to the command:
#   YISHI_BOOTSTRAP       the broker's host:port (the same after a restart)
#   YISHI_BROKER_PID      the broker's process id, also its process group id (setsid), so that
#                         a test can freeze it (SIGSTOP/SIGCONT) or crash it (SIGKILL)
#   YISHI_BROKER_STORAGE  memory or s3
#   YISHI_BROKER_RESTART  a command (scripts/restart-broker.sh) that SIGKILLs the broker if it
#                         still runs and starts it again with the same arguments, storage and
#                         port, and prints the new broker pid once it answers metadata
#   YISHI_BROKER_S3_ENDPOINT  (s3 only) the S3 server's URL, to look at what Tansu stored
#                         (bucket `tansu`, e.g. clusters/tansu_cluster/meta.json)
#   YISHI_BROKER_CONTROL  the folder through which that command asks this script (a FIFO, not a
#                         signal: processes started by a Swift test run inherit a signal mask
#                         that blocks SIGUSR1)
# The broker always stays a child of this script, which reaps it after a kill.
#
# When the command ends (pass, fail or interrupt) the broker, the S3 server and every process
# the command started (its whole process group) are stopped: nothing outlives it.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STORAGE="${YISHI_BROKER_STORAGE:-memory}"
if [[ ${1:-} == --storage ]]; then STORAGE="${2:-}"; shift 2 || shift; fi
case $STORAGE in
  memory|s3) ;;
  *) echo "with-broker: error: storage must be memory or s3, not '$STORAGE' (--storage or YISHI_BROKER_STORAGE)" >&2; exit 2 ;;
esac
[[ $# -gt 0 ]] || { echo "usage: scripts/with-broker.sh [--storage memory|s3] COMMAND [ARGS...]" >&2; exit 2; }
TANSU="$("$ROOT/scripts/setup-tansu.sh")" || exit 1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
export YISHI_BOOTSTRAP="127.0.0.1:$PORT" YISHI_BROKER_STORAGE="$STORAGE"
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/yishi-broker.XXXXXX")"
broker_pid=""; cmd_pid=""; s3_pid=""; restarts=0

stop_all() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $cmd_pid ]]; then kill -TERM -- "-$cmd_pid" 2>/dev/null; sleep 0.5; kill -KILL -- "-$cmd_pid" 2>/dev/null; fi
  if [[ -n $broker_pid ]]; then kill -TERM -- "-$broker_pid" 2>/dev/null; sleep 0.2; kill -KILL -- "-$broker_pid" 2>/dev/null; fi
  if [[ -n $s3_pid ]]; then kill -KILL -- "-$s3_pid" 2>/dev/null; fi
  wait 2>/dev/null
  local left="" try
  for try in 1 2 3 4 5 6 7 8 9 10; do  # killed processes may take a moment to be reaped
    left=""
    for pg in $cmd_pid $broker_pid $s3_pid; do left="$left$(pgrep -g "$pg" | tr '\n' ' ')"; done
    [[ -z ${left// /} ]] && break
    kill -KILL $left 2>/dev/null; sleep 0.2
  done
  if [[ -n ${left// /} ]]; then
    echo "with-broker: error: processes still running after stop:$left" >&2; rc=1
  else
    echo "with-broker: broker and test processes stopped; none left running" >&2
  fi
  [[ $rc -ne 0 && -s "$LOGDIR/broker.log" ]] && { echo "--- last broker log lines ---" >&2; tail -20 "$LOGDIR/broker.log" >&2; }
  [[ $rc -ne 0 && -s "$LOGDIR/s3.log" ]] && { echo "--- last S3 server log lines ---" >&2; tail -5 "$LOGDIR/s3.log" >&2; }
  rm -rf "$LOGDIR"
  exit $rc
}
trap stop_all EXIT
trap 'exit 130' INT TERM

broker_env=()
if [[ $STORAGE == s3 ]]; then
  MOTO="$("$ROOT/scripts/setup-moto.sh")" || exit 1
  S3_PORT="$(free_port)"
  setsid "$MOTO" -H 127.0.0.1 -p "$S3_PORT" >"$LOGDIR/s3.log" 2>&1 </dev/null &  # before fd 3 exists
  s3_pid=$!
  # Tansu does not create its bucket: make it once moto answers (moto accepts any credentials).
  if ! python3 - "$S3_PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/tansu"
deadline = time.time() + 30
while True:
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=2).close()
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit(f"with-broker: the S3 server did not create bucket 'tansu' at {url}: {e}")
        time.sleep(0.2)
PY
  then exit 1; fi
  # Read by Tansu's S3 client (object_store's AmazonS3Builder::from_env). Dummy keys: moto checks none.
  broker_env=(AWS_ENDPOINT="http://127.0.0.1:$S3_PORT" AWS_ALLOW_HTTP=true AWS_DEFAULT_REGION=us-east-1
              AWS_ACCESS_KEY_ID=yishi-test AWS_SECRET_ACCESS_KEY=yishi-test)
  STORAGE_URL="s3://tansu/"
  export YISHI_BROKER_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
else
  STORAGE_URL="memory://tansu/"
fi

# Starts Tansu, always with the same arguments, and waits until it answers metadata.
start_broker() {
  setsid env "${broker_env[@]}" "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine "$STORAGE_URL" >>"$LOGDIR/broker.log" 2>&1 </dev/null 3<&- &
  broker_pid=$!  # setsid: also the broker's process group id
  echo "$broker_pid" >"$LOGDIR/broker.pid"
  python3 "$ROOT/scripts/kafka_probe.py" "$YISHI_BOOTSTRAP" 30
}

# "restart" on the control FIFO (from scripts/restart-broker.sh): SIGKILL the broker, reap it,
# start it again. The answer goes to $LOGDIR/restarts: "<count> ok|failed <pid>".
restart_broker() {
  local status=ok
  kill -KILL -- "-$broker_pid" 2>/dev/null
  wait "$broker_pid" 2>/dev/null
  echo "with-broker: restarting Tansu on $YISHI_BOOTSTRAP ($STORAGE_URL)" >&2
  start_broker || status=failed
  restarts=$((restarts + 1))
  echo "$restarts $status $broker_pid" >"$LOGDIR/restarts.tmp" && mv "$LOGDIR/restarts.tmp" "$LOGDIR/restarts"
}
mkfifo "$LOGDIR/control" && exec 3<>"$LOGDIR/control"  # held open both ways: a writer never blocks, a read never sees EOF
echo "0 ok" >"$LOGDIR/restarts"

if ! start_broker; then
  echo "with-broker: Tansu did not answer metadata on $YISHI_BOOTSTRAP" >&2; exit 1
fi
export YISHI_BROKER_PID="$broker_pid" YISHI_BROKER_CONTROL="$LOGDIR" YISHI_BROKER_RESTART="$ROOT/scripts/restart-broker.sh"
echo "with-broker: Tansu $("$TANSU" --version 2>/dev/null | awk '{print $2}') (pid $broker_pid, $STORAGE_URL${s3_pid:+ on S3 server 127.0.0.1:$S3_PORT}) answers metadata on $YISHI_BOOTSTRAP"
setsid "$@" <&0 3<&- &  # keeps its standard input (a background job would otherwise read /dev/null)
cmd_pid=$!
while kill -0 "$cmd_pid" 2>/dev/null; do  # bash reaps the command when it ends; `wait` below gives its status
  if read -r -t 0.2 request <&3 && [[ $request == restart ]]; then restart_broker; fi
done
wait "$cmd_pid"
exit $?
