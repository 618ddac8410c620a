# tailorline: two commands do all the set-up on a fresh machine.
#   make demo   the whole loop on a synthetic manufacturer (creates .venv if missing)
#   make test   the test suite (creates .venv, fetches helm, regenerates nothing by hand)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HELM   := .tools/bin/helm
export RAY_AUTH_MODE ?= disabled
export RAY_USAGE_STATS_ENABLED ?= 0
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: venv demo test lint format typecheck check protos protos-check buf clean

venv: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(HELM):
	bash scripts/get-helm.sh .tools/bin

demo: $(STAMP)
	$(VENV)/bin/tailorline demo

test: $(STAMP) $(HELM)
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	bash scripts/sync-chart-files.sh --check

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP)
	$(VENV)/bin/mypy services optimizer

check: lint buf protos-check typecheck test

protos: $(STAMP)
	bash scripts/gen-protos.sh

protos-check: protos
	git diff --exit-code -- gen || (echo "generated code differs from protos/: run 'make protos'" && exit 1)
	test -z "$$(git status --porcelain -- gen)" || (echo "untracked generated files: run 'make protos' and commit" && exit 1)

# buf lint (STANDARD) and breaking-change detection (FILE) against BASE (default: the previous commit)
BASE ?= HEAD~1
buf:
	bash scripts/buf.sh lint
	if git cat-file -e $(BASE):protos/buf.yaml 2>/dev/null; then \
	  bash scripts/buf.sh breaking --against "$(CURDIR)/.git#ref=$$(git rev-parse $(BASE)),subdir=protos"; \
	else echo "buf breaking: $(BASE) has no protos/buf.yaml, nothing to compare"; fi

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
