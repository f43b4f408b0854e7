#!/bin/sh
# Run the example master and N workers on this machine, on a local store.
# Usage: examples/run_local.sh [N_WORKERS] [STORE] [extra flags for every process...]
# Exits non-zero if the master or any worker fails.
set -u
n=${1:-3}; store=${2:-demo-store}
shift 2 2>/dev/null || shift $#
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
pids=""
i=1
while [ "$i" -le "$n" ]; do
    "$py" "$here/worker.py" --store="$store" --worker_id="$i" --worker_idle_sleep_secs=1 \
        --log_level=WARNING "$@" &
    pids="$pids $!"
    i=$((i + 1))
done
"$py" "$here/master.py" --store="$store" --log_level=WARNING "$@"
status=$?
for pid in $pids; do
    wait "$pid" || { echo "worker (pid $pid) exited with $?" >&2; status=1; }
done
exit $status
