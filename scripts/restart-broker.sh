#!/usr/bin/env bash
# Restart the broker that scripts/with-broker.sh runs, as after a crash: SIGKILL (no shutdown
# hook runs) if it still runs, then Tansu again with the same arguments, storage and port.
# Prints the new broker pid (also its process group id) once it answers metadata; exits 1 if it
# did not within 30 s. With `--storage s3` the restarted broker finds every record, committed
# offset and transaction state again; with memory storage it starts empty.
#
# Needs YISHI_BROKER_CONTROL, exported by scripts/with-broker.sh to its command.
set -euo pipefail
dir="${YISHI_BROKER_CONTROL:?YISHI_BROKER_CONTROL is not set: run under scripts/with-broker.sh}"
before="$(cut -d' ' -f1 "$dir/restarts")"
echo restart >"$dir/control"
for _ in $(seq 1 600); do  # up to 60 s: the kill, the reap and 30 s for metadata
  read -r count status pid <"$dir/restarts" || true
  if [[ ${count:-0} -gt $before ]]; then
    [[ $status == ok ]] || { echo "restart-broker: Tansu did not answer metadata after the restart (pid $pid)" >&2; exit 1; }
    echo "$pid"; exit 0
  fi
  sleep 0.1
done
echo "restart-broker: with-broker.sh did not restart the broker within 60 s" >&2
exit 1
