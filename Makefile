# Two commands do all the set-up:
#   make lab    create .venv, install course_utils and the notebook stack, start JupyterLab
#   make test   create/reuse .venv and run unit tests + every notebook (fast mode, nbval lax)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# CI pins exact versions; pass CONSTRAINTS= to let pip pick the newest allowed.
CONSTRAINTS ?= constraints/ci.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
KERNEL ?= course
PORT ?= 8888
# JupyterLab refuses to run as root (containers, some cloud VMs) unless told to.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=
STAMP := $(VENV)/.installed
# OpenMP threads that wait passively instead of spinning: a busy laptop (or CI
# runner) no longer slows PyTorch down many times over. See settings.py.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: venv lab test test-unit test-notebook notebooks benchmark release grade book slides clean-venv clean-cache

venv: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -n "$(PYTHON)" || { echo "No python3 found: install Python 3.11 first."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_C) -e ".[test,lab,faces,imagenet,book]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (course)" >/dev/null
	$(BIN)/python -c "import course_utils; course_utils.env_report()"
	touch $(STAMP)

lab: venv
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(LAB_ARGS)

test: venv
	COURSE_FAST=$${COURSE_FAST:-1} $(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: venv
	COURSE_FAST=1 $(BIN)/python -m pytest tests --ignore=tests/notebooks $(PYTEST_ARGS)

# Run one notebook (and its empty-data-directory run), e.g. `make test-notebook NB=01`
test-notebook: venv
	@test -n "$(NB)" || { echo "Say which notebook: make test-notebook NB=01"; exit 2; }
	COURSE_FAST=1 $(BIN)/python -m pytest notebooks/$(NB)_*.ipynb tests/test_notebooks_offline.py -k "$(NB)" $(PYTEST_ARGS)

# Regenerate the .ipynb files from their paired percent scripts.
notebooks: venv
	$(BIN)/python -m course_tools.nbtools

# The course site with executed outputs, from build/executed/<mode>/ (saved by the
# notebook tests; notebooks without a copy run once first): build/site/index.html.
# Fast mode by default; `COURSE_FAST=0 make book` for full-size results.
book: venv
	COURSE_FAST=$${COURSE_FAST:-1} $(BIN)/python -m course_tools.book site

# One reveal.js deck per notebook (local reveal.js 4 + MathJax from npm): build/slides/index.html
slides: venv
	COURSE_FAST=$${COURSE_FAST:-1} $(BIN)/python -m course_tools.book slides

benchmark: venv
	$(BIN)/python benchmarks/bench_fit.py

# Student copies in student/; a standalone student bundle with
#   make release RELEASE_ARGS="--bundle ../course-student --repo-url https://github.com/you/course-student"
release: venv
	$(BIN)/python -m course_tools.grading release $(RELEASE_ARGS)

# Grade submissions in the sandbox, e.g. `make grade SUBMISSIONS="subs/*.ipynb"`
grade: venv
	@test -n "$(SUBMISSIONS)" || { echo 'Say what to grade: make grade SUBMISSIONS="subs/*.ipynb"'; exit 2; }
	$(BIN)/python -m course_tools.grading grade $(SUBMISSIONS) --out grades

clean-venv:
	rm -rf $(VENV)

clean-cache:
	rm -rf .cache
