#!/usr/bin/env bash
# Builds the pod images, one per role (runner, evaluator, trainer), from the repository root as context,
# tagged [REGISTRY/]rpt-transfer/<role>:<version> with the version from pyproject.toml: the names the Helm
# chart's `images.<role>` values use. `make images` calls this.
#
#   images/build.sh [--push]
#
# Environment: REGISTRY (optional prefix, e.g. ghcr.io/org), ROLES (default "runner evaluator trainer"),
# PLATFORMS (buildx only, e.g. linux/amd64; default: the builder's own), REVISION (default: git HEAD,
# with "-dirty" when the work tree has changes), SOURCE_URL (default: the origin remote, without
# credentials). Uses `docker buildx build` where buildx is installed, else `docker build`.
set -euo pipefail

usage() {
  sed -n '2,11s/^# \{0,1\}//p' "$0"
}

push=0
for arg in "$@"; do
  case "$arg" in
    --push) push=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument '$arg' (accepted: --push, --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."

# The [project] table's version, read without Python.
version=$(awk -F'"' '/^\[/ { in_project = ($0 == "[project]") } in_project && /^version *=/ { print $2; exit }' pyproject.toml)
if [ -z "$version" ]; then
  echo "build.sh: no version in pyproject.toml's [project] table" >&2
  exit 1
fi

revision=${REVISION:-}
if [ -z "$revision" ]; then
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  if [ "$revision" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    revision="$revision-dirty"
  fi
fi

source_url=${SOURCE_URL:-$(git remote get-url origin 2>/dev/null || echo unknown)}
source_url=${source_url%.git}
source_url=$(printf '%s' "$source_url" | sed -E 's#^git@([^:]+):#https://\1/#; s#^(https?://)[^@/]*@#\1#')

roles=${ROLES:-runner evaluator trainer}
prefix=${REGISTRY:+${REGISTRY%/}/}

if docker buildx version >/dev/null 2>&1; then
  builder=(docker buildx build)
  buildx=1
else
  builder=(docker build)
  buildx=0
  if [ -n "${PLATFORMS:-}" ]; then
    echo "build.sh: PLATFORMS needs docker buildx, which is not installed" >&2
    exit 2
  fi
fi

for role in $roles; do
  dockerfile=images/$role/Dockerfile
  if [ ! -f "$dockerfile" ]; then
    echo "build.sh: unknown role '$role' (no $dockerfile; roles: runner evaluator trainer)" >&2
    exit 2
  fi
  image="${prefix}rpt-transfer/$role:$version"
  args=(--file "$dockerfile" --tag "$image"
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE_URL=$source_url")
  if [ "$buildx" = 1 ]; then
    if [ -n "${PLATFORMS:-}" ]; then args+=(--platform "$PLATFORMS"); fi
    if [ "$push" = 1 ]; then args+=(--push); else args+=(--load); fi
  fi
  echo "build.sh: $image (revision $revision)"
  "${builder[@]}" "${args[@]}" .
  if [ "$push" = 1 ] && [ "$buildx" = 0 ]; then
    docker push "$image"
  fi
done
