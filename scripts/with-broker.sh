#!/usr/bin/env bash
# Run a command against a fresh Tansu broker on a free loopback port.
#
#   scripts/with-broker.sh COMMAND [ARGS...]
#
# The broker's bootstrap address is exported as YISHI_BOOTSTRAP, and its process
# (group) id as YISHI_BROKER_PID, so that a test can freeze it (SIGSTOP/SIGCONT). When the
# command ends (pass, fail or interrupt) the broker and every process the
# command started (its whole process group) are stopped: nothing outlives it.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TANSU="$("$ROOT/scripts/setup-tansu.sh")" || exit 1
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export YISHI_BOOTSTRAP="127.0.0.1:$PORT"
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/yishi-broker.XXXXXX")"
broker_pid=""; cmd_pid=""

stop_all() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $cmd_pid ]]; then kill -TERM -- "-$cmd_pid" 2>/dev/null; sleep 0.5; kill -KILL -- "-$cmd_pid" 2>/dev/null; fi
  if [[ -n $broker_pid ]]; then kill -TERM -- "-$broker_pid" 2>/dev/null; sleep 0.2; kill -KILL -- "-$broker_pid" 2>/dev/null; fi
  wait 2>/dev/null
  local left="" try
  for try in 1 2 3 4 5 6 7 8 9 10; do  # killed processes may take a moment to be reaped
    left=""
    for pg in $cmd_pid $broker_pid; do left="$left$(pgrep -g "$pg" | tr '\n' ' ')"; done
    [[ -z ${left// /} ]] && break
    kill -KILL $left 2>/dev/null; sleep 0.2
  done
  if [[ -n ${left// /} ]]; then
    echo "with-broker: error: processes still running after stop:$left" >&2; rc=1
  else
    echo "with-broker: broker and test processes stopped; none left running" >&2
  fi
  [[ $rc -ne 0 && -s "$LOGDIR/broker.log" ]] && { echo "--- last broker log lines ---" >&2; tail -20 "$LOGDIR/broker.log" >&2; }
  rm -rf "$LOGDIR"
  exit $rc
}
trap stop_all EXIT
trap 'exit 130' INT TERM

setsid "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ >"$LOGDIR/broker.log" 2>&1 &
broker_pid=$!
export YISHI_BROKER_PID="$broker_pid"  # setsid: also the broker's process group id
if ! python3 "$ROOT/scripts/kafka_probe.py" "$YISHI_BOOTSTRAP" 30; then
  echo "with-broker: Tansu did not answer metadata on $YISHI_BOOTSTRAP" >&2; exit 1
fi
echo "with-broker: Tansu $("$TANSU" --version 2>/dev/null | awk '{print $2}') (pid $broker_pid) answers metadata on $YISHI_BOOTSTRAP"
setsid "$@" &
cmd_pid=$!
wait "$cmd_pid"
