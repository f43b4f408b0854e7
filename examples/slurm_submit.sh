#!/bin/sh
# Submit the example master and a job array of workers to Slurm with sbatch.
# Usage: examples/slurm_submit.sh [N_WORKERS] [STORE] [extra flags for every job...]
#   N_WORKERS  size of the worker array (default 3)
#   STORE      store directory on a file system all nodes share (default ./store)
# Environment: PYTHON (default python3, must have fsmw installed), SBATCH_ARGS
# (extra sbatch options, e.g. "--partition=short --time=02:00:00").
# Prints the master's job id and the worker array's job id; logs go to
# fsmw-master-<job>.out and fsmw-worker-<array>_<task>.out in this directory.
set -eu
n=${1:-3}
store=${2:-$PWD/store}
[ $# -ge 2 ] && shift 2 || shift $#
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
case $store in /*) ;; *) store=$PWD/$store ;; esac
flags=""
for f in "$@"; do flags="$flags '$f'"; done

master=$(sbatch --parsable ${SBATCH_ARGS:-} --job-name=fsmw-master \
    --output=fsmw-master-%j.out \
    --wrap="exec '$py' '$here/master.py' --store='$store' $flags")
workers=$(sbatch --parsable ${SBATCH_ARGS:-} --job-name=fsmw-worker --array=1-"$n" \
    --output=fsmw-worker-%A_%a.out \
    --wrap="exec '$py' '$here/worker.py' --store='$store' --worker_id=\$SLURM_ARRAY_TASK_ID $flags")
echo "master job $master; worker array $workers (1-$n); store $store"
