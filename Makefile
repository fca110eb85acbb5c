# hrda: the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv in the repo if it is missing and install the package into it.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PROFILE ?= quick

.PHONY: setup test demo reproduce rehearsal rehearsal-fast forecast lab trained-models lint format benchmark gpu-check clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $@

test: setup
	$(PY) -m pytest -q

# The main job: the synthetic benchmark's reproduction of the paper's tables (quick profile),
# into demo/ (never over the committed results/), ending with each number beside the committed one.
demo: setup
	$(PY) -m hrda_lib.reproduction.demo

reproduce: setup
	$(PY) -m hrda_lib.reproduce --profile $(PROFILE)

# The paper profile rehearsed on mock GTA / Cityscapes at the real resolutions (MiT-b0, random
# init, 2 iterations per row): every notebook end to end on this CPU, into rehearsal/.
rehearsal: setup
	$(PY) -m hrda_lib.reproduce --profile rehearsal

rehearsal-fast: setup
	$(PY) -m hrda_lib.reproduce --profile rehearsal-fast

# What each table of the paper profile costs on a GPU: results/rehearsal/forecast*.csv.
forecast: setup
	$(PY) -m hrda_lib.reproduction.forecast

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

benchmark: setup
	$(PY) benchmarks/model_benchmark.py
	$(PY) benchmarks/speed_benchmark.py
	$(PY) benchmarks/cpu_speed.py
	$(PY) benchmarks/cpu_parallel.py

# On a machine with one CUDA GPU: smoke training, the full-size step and inference against their
# goals, into results/benchmarks/gpu_*.csv (about 8 minutes on an H100/H200), then HRDA's cost
# forecast beside the measured step (results/rehearsal/forecast_vs_gpu.csv). Uses .venv when it
# exists, else the machine's python3 (a lent GPU machine's, which has torch, without installing).
gpu-check:
	PYTHONPATH=. $(if $(wildcard $(PY)),$(PY),$(PYTHON)) benchmarks/gpu_check.py
	-PYTHONPATH=. $(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m hrda_lib.reproduction.rehearsal --gpu-check

# JupyterLab on notebooks/. A notebook run by hand reads the committed results/ (and the trained
# models committed there) but writes into scratch/; `make lab HRDA_RESULTS=$$PWD/results` to
# write the committed results instead.
lab: setup
	$(VENV)/bin/jupyter lab notebooks/

# The trained HRDA / DAFormer (LR data) of the synthetic profile, seed 0, committed as fp16 model
# files in results/03_scale_attention/runs/ and results/06_full_training/runs/ (about 10 minutes).
trained-models: setup
	$(PY) -m hrda_lib.reproduction.trained

clean-venv:
	rm -rf $(VENV)
