# Two commands for a newcomer: `make demo` (main job on the built-in dataset) and `make test`.
# While editing: `make check`, the unit tests not marked slow (at most 5 minutes on 2 cores).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Cell timeout for nbval (seconds); each FAST notebook should finish in a few minutes.
NB_TIMEOUT ?= 600

.PHONY: demo test check house unit nbtest nbtimes lab notebooks bench install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m mfjle_lib demo

unit: $(STAMP)
	$(PY) -m pytest tests -q --timeout=900

# The fast tier: everything in tests/ except @pytest.mark.slow (benchmark, allocator, deploy,
# training and CLI subprocesses). `make test` runs these too, plus the slow ones and the notebooks.
check: house
	$(PY) -m pytest tests -q -m "not slow" --timeout=300

# The house rules, read from the code (nothing is imported or written): imports flow one way
# (data → faces → models → evaluation → perf → training → course → cli), no cycles, no Python file
# over 300 lines, docs/MODULES.md's module table current. `make test` runs it first too.
house: $(STAMP)
	$(PY) docs/make_module_map.py --check

nbtest: $(STAMP)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		MFJLE_FAST=1 MFJLE_NO_PROGRESS=1 $(PY) -m pytest --nbval-lax --nbval-current-env \
			--nbval-cell-timeout=$(NB_TIMEOUT) -p no:cacheprovider notebooks -q $(NBVAL_ARGS); \
	else echo "no notebooks yet"; fi

test: house unit nbtest

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

# Committed outputs come from full runs (cpu preset on 2 cores; docs/DESIGN.md §5): about an hour.
# Each lesson's time, its runs and its FLOP-based Colab estimate go to notebooks/lesson_times.json.
# Lesson 00 runs again at the end, so the time table it shows holds the times just measured.
notebooks: $(STAMP)
	MFJLE_NO_PROGRESS=1 $(PY) -m mfjle_lib.course.notebook_tools execute --record full_cpu --timeout 3600 notebooks/*.ipynb
	MFJLE_NO_PROGRESS=1 $(PY) -m mfjle_lib.course.notebook_tools execute notebooks/00_start_here.ipynb

# The FAST column of that table: nbtest with a JUnit report, summed per lesson (use a fresh clone:
# runs and caches left by an earlier run would be reused and make the times look shorter).
nbtimes: $(STAMP)
	$(MAKE) nbtest NBVAL_ARGS=--junitxml=.nbtimes.xml
	$(PY) -m mfjle_lib.course.notebook_tools fast-times .nbtimes.xml
	MFJLE_NO_PROGRESS=1 $(PY) -m mfjle_lib.course.notebook_tools execute notebooks/00_start_here.ipynb

bench: $(STAMP)
	$(PY) benchmarks/bench.py

clean:
	rm -rf data/cache runs figures .pytest_cache
