#!/usr/bin/env bash
# NEVER RUN in this project (no container engine, no cluster on its machines): checked only by shellcheck
# and tests/infra/test_infra.py. See infra/README.md.
#
# Deletes the kind cluster that up.sh made, with everything in it (store, MLflow, Secrets).
set -euo pipefail

CLUSTER="${KIND_CLUSTER_NAME:-rpt-transfer}"

command -v kind >/dev/null 2>&1 || { printf 'down.sh: error: missing tools: kind\n' >&2; exit 1; }
kind delete cluster --name "$CLUSTER"
