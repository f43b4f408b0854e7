#!/bin/sh
# Generic fsmw workers as a Slurm job array: no user script.  They serve
# whatever the store holds: calls of an fsmw.Executor, or commands of
# `fsmw run`.  Start the Executor script or `fsmw run STORE --tasks FILE --
# CMD ...` (e.g. on the login node, or in a job of its own), then:
#   sbatch --array=1-8 examples/fsmw_worker_slurm.sh /shared/path/store [--flag=value ...]
# The jobs need python3 with fsmw installed (PYTHON overrides the interpreter);
# sbatch passes this shell's environment, PYTHONPATH included.
# Exit codes: 0 the run ended (STOP), 1 error, 3 idle too long, 4 SIGTERM,
# 5 too little allocation left for another task.
#SBATCH --job-name=fsmw-worker
#SBATCH --output=fsmw-worker-%A_%a.out
#SBATCH --ntasks=1
#SBATCH --signal=B:USR1@60
set -eu
store=${1:?usage: sbatch --array=1-N fsmw_worker_slurm.sh STORE [--flag=value ...]}
shift
exec "${PYTHON:-python3}" -m fsmw worker "$store" --worker_id="${SLURM_ARRAY_TASK_ID:-0}" "$@"
