"""Code generated from protos/ by `make protos` (scripts/gen-protos.sh). Never edit by hand."""
