#!/usr/bin/env bash
# NEVER RUN in this project (no container engine, no cluster on its machines): checked only by shellcheck
# and tests/infra/test_infra.py. See infra/README.md.
#
# A local kind cluster with everything rpt-transfer needs, then the smoke study on it. Safe to re-run:
# every step skips or re-applies what is already there, and generated credentials are kept once created.
# Settings: KIND_CLUSTER_NAME (rpt-transfer), ROLES (images to build and load: runner), PYTHON (the venv
# with `rpt-transfer[cluster]`), S3_LOCAL_PORT (8333), MLFLOW_LOCAL_PORT (5000), SUBMIT (1; 0 stops
# before the smoke study).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

CLUSTER="${KIND_CLUSTER_NAME:-rpt-transfer}"
NS=rpt-transfer
ROLES="${ROLES:-runner}"
S3_LOCAL_PORT="${S3_LOCAL_PORT:-8333}"
MLFLOW_LOCAL_PORT="${MLFLOW_LOCAL_PORT:-5000}"
SUBMIT="${SUBMIT:-1}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

# Pinned versions (infra/README.md says where each comes from).
ARGO_VERSION=v4.1.2
KUBERAY_VERSION=1.7.0
KUBERAY_REPO=https://ray-project.github.io/kuberay-helm/

PF_PIDS=""

say() { printf 'up.sh: %s\n' "$*"; }
die() { printf 'up.sh: error: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local pid
  for pid in $PF_PIDS; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

check_tools() {
  local tool missing=""
  for tool in kind kubectl helm docker openssl; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
  done
  [ -z "$missing" ] || die "missing tools:$missing (see infra/README.md)"
  docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer (docker info)"
  "$PYTHON" -c 'import boto3, hera, kubernetes, rpt_transfer' 2>/dev/null \
    || die "$PYTHON lacks rpt-transfer's cluster extra: pip install -e '.[cluster]' (or set PYTHON)"
}

warn_userns_apparmor() {
  # Score pods run model-written code in a user-namespace sandbox; kind nodes share the host kernel, and
  # Ubuntu 23.10+ refuses unprivileged user namespaces unless this sysctl is 0 (docs/argo-templates.md).
  local knob=/proc/sys/kernel/apparmor_restrict_unprivileged_userns
  if [ -r "$knob" ] && [ "$(cat "$knob")" = 1 ]; then
    say "warning: $knob is 1: score pods will fail; sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
  fi
}

create_cluster() {
  local clusters
  clusters="$(kind get clusters 2>/dev/null)"
  if grep -qxF "$CLUSTER" <<<"$clusters"; then
    say "kind cluster $CLUSTER exists"
  else
    kind create cluster --name "$CLUSTER" --config infra/dev/kind.yaml --wait 5m
  fi
  kind export kubeconfig --name "$CLUSTER"  # current context: kind-$CLUSTER, for kubectl, helm and submit
}

ensure_namespace() {
  kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f -
}

install_argo() {
  ensure_namespace argo
  # v4's full CRDs are too large for client-side apply's last-applied annotation.
  kubectl apply --server-side -n argo \
    -f "https://github.com/argoproj/argo-workflows/releases/download/${ARGO_VERSION}/install.yaml"
  kubectl wait --for=condition=Established --timeout=2m \
    crd/workflows.argoproj.io crd/workflowtemplates.argoproj.io
  kubectl rollout status -n argo deployment/workflow-controller --timeout=5m
}

install_kuberay() {
  helm upgrade --install kuberay-operator kuberay-operator --repo "$KUBERAY_REPO" \
    --version "$KUBERAY_VERSION" -n ray-system --create-namespace --wait --timeout 5m
}

load_images() {
  local role tag
  tag="$("$PYTHON" -c 'import rpt_transfer; print(rpt_transfer.__version__)')"  # = the chart's images.*.tag
  ROLES="$ROLES" bash images/build.sh
  for role in $ROLES; do
    kind load docker-image "rpt-transfer/$role:$tag" --name "$CLUSTER"
  done
}

prepare_namespace() {
  ensure_namespace "$NS"
  # Score pods set seccompProfile and appArmorProfile Unconfined (their sandbox needs user namespaces),
  # which only the Pod Security level `privileged` admits: `baseline` or `restricted` refuses them at
  # creation. The other pods of the study keep their own restrictive securityContexts.
  kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=privileged --overwrite
}

value_of() {  # SECRET KEY: the decoded value, empty when the Secret or key is absent
  local encoded
  encoded="$(kubectl get secret -n "$NS" "$1" -o "jsonpath={.data.$2}" 2>/dev/null)" || return 0
  printf '%s' "$encoded" | base64 --decode
}

apply_secret() {  # NAME, KEY=VALUE lines on stdin (never on a command line, where ps would show them)
  kubectl create secret generic "$1" -n "$NS" --from-env-file=/dev/stdin --dry-run=client -o yaml \
    | kubectl apply -f -
}

create_secrets() {
  # Dev-only values, generated once: a re-run reads them back, so SeaweedFS and MLflow (which stores its
  # admin password at first start) keep matching credentials.
  local s3_key s3_secret ml_user ml_pass flask_key
  s3_key="$(value_of rpt-transfer-credentials AWS_ACCESS_KEY_ID)"
  s3_secret="$(value_of rpt-transfer-credentials AWS_SECRET_ACCESS_KEY)"
  ml_user="$(value_of rpt-transfer-mlflow-auth admin-username)"
  ml_pass="$(value_of rpt-transfer-mlflow-auth admin-password)"
  flask_key="$(value_of rpt-transfer-mlflow-auth flask-secret-key)"
  : "${s3_key:=dev$(openssl rand -hex 8)}"
  : "${s3_secret:=$(openssl rand -hex 20)}"
  : "${ml_user:=admin}"
  : "${ml_pass:=$(openssl rand -hex 16)}"
  : "${flask_key:=$(openssl rand -hex 32)}"
  apply_secret rpt-transfer-credentials <<EOF
AWS_ACCESS_KEY_ID=$s3_key
AWS_SECRET_ACCESS_KEY=$s3_secret
MLFLOW_TRACKING_USERNAME=$ml_user
MLFLOW_TRACKING_PASSWORD=$ml_pass
EOF
  apply_secret rpt-transfer-mlflow-auth <<EOF
admin-username=$ml_user
admin-password=$ml_pass
flask-secret-key=$flask_key
EOF
}

install_chart() {
  helm upgrade --install rpt-transfer charts/rpt-transfer -n "$NS" \
    -f charts/rpt-transfer/values-dev.yaml --wait --timeout 10m
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_forward() {  # SERVICE LOCAL_PORT REMOTE_PORT, in the background until this script exits
  local tries=30
  port_open "$2" && die "127.0.0.1:$2 is already in use: free it or set another local port (see the top of up.sh)"
  kubectl port-forward -n "$NS" "svc/$1" "$2:$3" >/dev/null 2>&1 &
  PF_PIDS="$PF_PIDS $!"
  until port_open "$2"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || die "port-forward to svc/$1 did not open 127.0.0.1:$2 within 30 s"
    sleep 1
  done
}

submit_smoke() {
  port_forward rpt-transfer-s3 "$S3_LOCAL_PORT" 8333
  port_forward rpt-transfer-mlflow "$MLFLOW_LOCAL_PORT" 5000
  (
    export RPT_STORE=s3://rpt-transfer/store
    export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_LOCAL_PORT"
    export MLFLOW_TRACKING_URI="http://127.0.0.1:$MLFLOW_LOCAL_PORT"
    export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
    AWS_ACCESS_KEY_ID="$(value_of rpt-transfer-credentials AWS_ACCESS_KEY_ID)"
    AWS_SECRET_ACCESS_KEY="$(value_of rpt-transfer-credentials AWS_SECRET_ACCESS_KEY)"
    MLFLOW_TRACKING_USERNAME="$(value_of rpt-transfer-credentials MLFLOW_TRACKING_USERNAME)"
    MLFLOW_TRACKING_PASSWORD="$(value_of rpt-transfer-credentials MLFLOW_TRACKING_PASSWORD)"
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD
    # The store's bucket, created if missing (the store never creates buckets).
    "$PYTHON" -c 'import boto3, botocore.exceptions as e, sys
s3 = boto3.client("s3")
try:
    s3.head_bucket(Bucket=sys.argv[1])
except e.ClientError:
    s3.create_bucket(Bucket=sys.argv[1])' rpt-transfer
    "$PYTHON" -m rpt_transfer submit studies/smoke.yaml -n "$NS" --watch
  )
}

main() {
  check_tools
  warn_userns_apparmor
  create_cluster
  say "Argo Workflows $ARGO_VERSION"
  install_argo
  say "KubeRay operator $KUBERAY_VERSION"
  install_kuberay
  say "images: $ROLES"
  load_images
  prepare_namespace
  create_secrets
  install_chart
  if [ "$SUBMIT" = 1 ]; then
    submit_smoke
  else
    say "SUBMIT=$SUBMIT: not submitting the smoke study"
  fi
}

main "$@"
