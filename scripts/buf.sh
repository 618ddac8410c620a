#!/usr/bin/env bash
# Run the buf CLI on protos/ (installing it from npm into .tools/buf if it is missing).
#   bash scripts/buf.sh                 buf lint (STANDARD, see protos/buf.yaml)
#   bash scripts/buf.sh lint [ARGS]     the same, with extra arguments
#   bash scripts/buf.sh breaking --against '.git#branch=main,subdir=protos'
#   bash scripts/buf.sh ARGS...         any other buf sub-command, run inside protos/
# BUF_VERSION pins the npm package version (default below); BUF overrides the binary entirely.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUF_VERSION=${BUF_VERSION:-1.75.0}
prefix="$root/.tools/buf"
BUF=${BUF:-$prefix/node_modules/.bin/buf}
if [ ! -x "$BUF" ]; then
  command -v npm >/dev/null || { echo "buf.sh: npm is needed to install @bufbuild/buf" >&2; exit 1; }
  echo "buf.sh: installing @bufbuild/buf@$BUF_VERSION into $prefix" >&2
  npm install --silent --no-fund --no-audit --prefix "$prefix" "@bufbuild/buf@$BUF_VERSION" >&2
fi
cmd=${1:-lint}
[ $# -gt 0 ] && shift
cd "$root/protos"
exec "$BUF" "$cmd" "$@"
