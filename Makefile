# Two commands matter: `make study` (the canary study, offline) and `make test` (everything, fresh machine).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch goes in first, on its own, so that one setting picks its build (docs/setup.md). PyPI's Linux x86_64
# torch is the CUDA build (a 527 MB wheel plus the CUDA 13 packages it requires); PyTorch's CPU index has
# the CPU build. TORCH_INDEX empty (the default) leaves the choice to pip's own configuration: this project's
# machines find a CPU wheel in their local wheel folder, elsewhere that gives PyPI's CUDA build. For the CPU
# build anywhere: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu (in a fresh .venv).
TORCH_PIN ?= torch==2.13.0
TORCH_INDEX ?=
# pytest-xdist workers of `make test`; each test file runs whole in one worker (module fixtures are shared), in
# collection order (conftest puts files marked slow first) rather than xdist's largest-file-first
TEST_WORKERS ?= 2

.PHONY: install study smoke test lint format clean

install: $(STAMP)

# OpenRLHF goes in without its dependencies (ray, deepspeed, vllm: a GPU stack): the flag contract test
# reads its parser, and the OpenRLHF backend's tests run against its real argument checks.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url "$(TORCH_INDEX)") "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps "openrlhf>=0.11,<0.12"
	$(BIN)/python -c "import torch; cuda = torch.version.cuda; \
	  print('torch', torch.__version__, f'(CUDA {cuda} build)' if cuda else '(CPU build)')"
	touch $(STAMP)

study: install
	$(BIN)/rpt-transfer run studies/canary.yaml

smoke: install
	$(BIN)/rpt-transfer run studies/smoke.yaml

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf .rpt

# The Argo objects under workflows/ come from src/rpt_transfer/argo/templates.py: regenerate after changing it.
.PHONY: workflows
workflows: install
	$(BIN)/python -m rpt_transfer.argo.templates --write

# The pod images (images/: runner, evaluator, trainer), tagged [REGISTRY/]rpt-transfer/<role>:<version>; needs
# docker (buildx when installed). REGISTRY=registry.example.org/rpt PUSH=1 pushes them; ROLES=runner builds one.
.PHONY: images
images:
	bash images/build.sh $(if $(PUSH),--push)
