#!/usr/bin/env bash
# Regenerate gen/ from protos/ (the one command; never edit gen/ by hand).
# protoc names each module after its proto package (tailorline.v1, tailorline.optimizer.v1), so the
# generated code is the importable package `tailorline` under gen/ (pyproject.toml maps it): its own
# imports, and the class paths that Ray Serve pickles, need no rewriting and no aliases.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PATH="$PWD/.venv/bin:$PATH"   # protoc-gen-mypy and protoc-gen-mypy_grpc live there
out=gen
rm -rf "$out/tailorline"
mkdir -p "$out"
mapfile -t files < <(cd protos && find . -name '*.proto' | sed 's|^\./||' | sort)
[ ${#files[@]} -gt 0 ] || { echo "no .proto files under protos/"; exit 0; }
"$PY" -m grpc_tools.protoc -I protos \
  --python_out="$out" --grpc_python_out="$out" --mypy_out="$out" --mypy_grpc_out="$out" \
  "${files[@]}"
# package markers (protoc writes modules only)
find "$out/tailorline" -type d -exec sh -c 'test -f "$1/__init__.py" || : > "$1/__init__.py"' _ {} \;
echo "generated $(find "$out" -name '*_pb2*.py' | wc -l) modules into $out/tailorline"
