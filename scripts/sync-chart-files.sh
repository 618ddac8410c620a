#!/usr/bin/env bash
# Copy the project files the Helm chart embeds into the chart (Helm reads only files inside it).
#
#   bash scripts/sync-chart-files.sh          copy them
#   bash scripts/sync-chart-files.sh --check  exit 1 (and name the file) when a copy is stale
#
# Today: optimizer/serving/serve_config.yaml -> helm/tailorline/files/serve_config.yaml, which the
# chart's RayService embeds byte for byte as serveConfigV2 (tests/helm checks the rendered result).
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=(
  "optimizer/serving/serve_config.yaml:helm/tailorline/files/serve_config.yaml"
)
check=0
[[ "${1:-}" == "--check" ]] && check=1
stale=0
for pair in "${PAIRS[@]}"; do
  src="${pair%%:*}"
  dst="${pair#*:}"
  if [[ ! -f "$src" ]]; then
    echo "sync-chart-files: $src does not exist (yet); $dst left as it is" >&2
    continue
  fi
  if cmp -s "$src" "$dst"; then
    continue
  fi
  if ((check)); then
    echo "sync-chart-files: $dst differs from $src: run 'bash scripts/sync-chart-files.sh'" >&2
    stale=1
  else
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
    echo "sync-chart-files: copied $src -> $dst"
  fi
done
exit "$stale"
