# Two commands for a newcomer: `make demo` (main job on the built-in dataset) and `make test`.
# While editing: `make check`: lint, the house check and the unit tests not marked slow (2.5 min on 2 idle cores; 18 min while a training runs beside it).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Cell timeout for nbval (seconds); each FAST notebook should finish in a few minutes.
NB_TIMEOUT ?= 600

.PHONY: lab-edition demo test check house lint unit browser nbtest nbtest-released nbtest-fast nbtimes lab notebooks retrain bench install clean

# No `ipykernel install --user`: the venv's own kernel (.venv/share/jupyter/kernels) serves `make lab`, and
# the user's kernels, which other projects' notebooks use, are left alone.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m mfjle_lib demo

unit: $(STAMP)
	$(PY) -m pytest tests -q --timeout=900

# The browser test alone (tests/test_browser.py, also part of `unit`): lesson 08 in JupyterLab in headless Chromium,
# one slider moved. Needs Debian's `apt-get install -y chromium chromium-driver` (.ci/run installs them); its
# screenshots stay under $(BROWSER_TMP) (pytest empties that folder first).
BROWSER_TMP ?= /tmp/mfjle-browser
browser: $(STAMP)
	$(PY) -m pytest tests -q -m browser --timeout=900 -p no:cacheprovider --basetemp=$(BROWSER_TMP)

# The fast tier: everything in tests/ except @pytest.mark.slow (benchmark, allocator, deploy,
# training and CLI subprocesses). `make test` runs these too, plus the slow ones and the notebooks.
check: house
	$(PY) -m pytest tests -q -m "not slow" --timeout=300

# The house rules, read from the code (nothing is imported or written): the part order of docs/MODULES.md
# (imports flow one way, no cycles), its generated module table and command list current; then `lint`.
# Python files over 400 lines are listed as a smell. `make check` and `make test` run it first.
house: lint
	$(PY) -m tools.make_module_map --check
	$(PY) -m tools.lab_edition --check

# ruff, lint and format, configured in pyproject.toml: the package, tools, tests and benchmarks.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every lesson twice under nbval. First as a student opens it (RUNS=released: the committed full-mode
# runs in results/lessons; MFJLE_RELEASED_ONLY=1 stops a lesson that would train a full run), then in
# FAST mode (tiny runs through every training path).
# The lab edition (notebooks/lab) is executed by tests/test_lab_edition.py, which also reads its graders' verdicts.
NBVAL = $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=$(NB_TIMEOUT) -p no:cacheprovider notebooks --ignore=notebooks/lab -q

nbtest: nbtest-released nbtest-fast

nbtest-released: $(STAMP)
	MFJLE_RUNS=released MFJLE_RELEASED_ONLY=1 MFJLE_NO_PROGRESS=1 $(NBVAL) $(NBVAL_ARGS)

nbtest-fast: $(STAMP)
	MFJLE_FAST=1 MFJLE_NO_PROGRESS=1 $(NBVAL) $(NBVAL_ARGS)

test: house unit nbtest

# Both editions: the lessons (instructor edition, with solutions and outputs) and notebooks/lab (the lab edition).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

# The lab edition, written from the lessons (blanks graded by mfjle_lib.course.grading; `make house` checks it is current).
lab-edition: $(STAMP)
	$(PY) -m tools.lab_edition

# Committed outputs: every lesson as a student opens it (RUNS=released), in place; each lesson's time
# goes to notebooks/lesson_times.json ("released"). Lesson 00 runs again so its table shows them.
notebooks: $(STAMP)
	MFJLE_RUNS=released MFJLE_NO_PROGRESS=1 $(PY) -m tools.notebook_tools execute --record released notebooks/*.ipynb
	MFJLE_RUNS=released MFJLE_NO_PROGRESS=1 $(PY) -m tools.notebook_tools execute notebooks/00_start_here.ipynb
	$(PY) -m tools.lab_edition

# Retrain the released runs: every lesson in full mode (cpu preset on 2 cores; docs/DESIGN.md §5: hours),
# each lesson's time, runs and FLOP-based Colab estimate into lesson_times.json ("full_cpu"), then the
# finished runs into results/lessons (compact: no weights). Run `make notebooks` after it. One CPU thread:
# the released runs were trained with one, and the thread count changes the CPU's rounding (docs/DESIGN.md §4).
retrain: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MFJLE_RUNS=full MFJLE_NO_PROGRESS=1 $(PY) -m tools.notebook_tools execute --record full_cpu --timeout 3600 notebooks/*.ipynb
	$(PY) -m tools.notebook_tools release runs/full_synthetic

# The FAST and default columns of that table from nbval's JUnit reports, summed per lesson (use a fresh
# clone: runs and caches left by an earlier run would be reused and make the times look shorter).
nbtimes: $(STAMP)
	$(MAKE) nbtest-released NBVAL_ARGS=--junitxml=.nbtimes-released.xml
	$(MAKE) nbtest-fast NBVAL_ARGS=--junitxml=.nbtimes-fast.xml
	$(PY) -m tools.notebook_tools fast-times .nbtimes-released.xml --record released
	$(PY) -m tools.notebook_tools fast-times .nbtimes-fast.xml --record fast
	MFJLE_RUNS=released MFJLE_NO_PROGRESS=1 $(PY) -m tools.notebook_tools execute notebooks/00_start_here.ipynb

bench: $(STAMP)
	$(PY) benchmarks/bench.py

clean:
	rm -rf data/cache runs figures .pytest_cache
