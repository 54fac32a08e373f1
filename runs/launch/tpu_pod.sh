#!/bin/bash
# One deepglass run on a Cloud TPU pod slice: the same command on every TPU VM worker, one JAX runtime.
#
#   runs/launch/tpu_pod.sh TPU_NAME ZONE CONFIG OUT_DIR
#
# The config needs [run] distributed = true (JAX finds the coordinator, process count and id on TPU VMs) and
# should set [run] processes to the number of workers (e.g. 4 for a v4-32), so a worker started alone is refused
# instead of running a copy of its own. Process 0 alone writes OUT_DIR: put it on storage every worker mounts (a
# Filestore / NFS path), or read it from worker 0. Install the project on every worker first, e.g.
#   gcloud compute tpus tpu-vm ssh TPU_NAME --zone ZONE --worker=all \
#     --command "git clone REPO deepglass && cd deepglass && make setup"
# and look at the plan before spending the slice: deepglass run CONFIG --dry-run
set -euo pipefail
TPU_NAME=${1:?usage: runs/launch/tpu_pod.sh TPU_NAME ZONE CONFIG OUT_DIR}
ZONE=${2:?usage: runs/launch/tpu_pod.sh TPU_NAME ZONE CONFIG OUT_DIR}
CONFIG=${3:?usage: runs/launch/tpu_pod.sh TPU_NAME ZONE CONFIG OUT_DIR}
OUT=${4:?usage: runs/launch/tpu_pod.sh TPU_NAME ZONE CONFIG OUT_DIR}
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command \
  "cd deepglass && if [ -f '$OUT/checkpoint.npz' ]; then .venv/bin/deepglass resume '$OUT' --quiet; \
   else .venv/bin/deepglass run '$CONFIG' --out '$OUT' --quiet; fi"
