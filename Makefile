# Two commands matter: `make study` (the canary study, offline) and `make test` (everything, fresh machine).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch lies on local disk here; pinning it first keeps pip from pulling a CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: install study smoke test lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

study: install
	$(BIN)/rpt-transfer run studies/canary.yaml

smoke: install
	$(BIN)/rpt-transfer run studies/smoke.yaml

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf .rpt
