#!/usr/bin/env bash
# Regenerate services/api/ from protos/ (the one command; never edit services/api by hand).
# Generated modules import each other as `services.api.tailorline...` so no sys.path tricks are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PATH="$PWD/.venv/bin:$PATH"   # protoc-gen-mypy and protoc-gen-mypy_grpc live there
out=services/api
find "$out" -mindepth 1 ! -name '__init__.py' -delete 2>/dev/null || true
mapfile -t files < <(cd protos && find . -name '*.proto' | sed 's|^\./||' | sort)
[ ${#files[@]} -gt 0 ] || { echo "no .proto files under protos/"; exit 0; }
"$PY" -m grpc_tools.protoc -I protos \
  --python_out="$out" --grpc_python_out="$out" --mypy_out="$out" --mypy_grpc_out="$out" \
  "${files[@]}"
# package markers and absolute imports rooted at services.api
find "$out" -type d -exec sh -c 'test -f "$1/__init__.py" || : > "$1/__init__.py"' _ {} \;
find "$out" -name '*.py' -o -name '*.pyi' | xargs sed -i -E \
  's/^from tailorline(\.[a-z0-9_.]+)? import/from services.api.tailorline\1 import/; s/^import tailorline\./import services.api.tailorline./'
# The descriptor pool names message classes by their module path; Ray Serve pickles requests by it.
find "$out" -name '*_pb2.py' | xargs sed -i -E \
  "s/(BuildTopDescriptorsAndMessages\(DESCRIPTOR, ')tailorline\./\1services.api.tailorline./"
echo "generated $(find "$out" -name '*_pb2*.py' | wc -l) modules into $out"
