# mpslab: every target sets itself up (virtual environment in .venv, pinned by requirements.lock).
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= quick
DEVICE  ?= cpu
OUT     ?= reports

.PHONY: venv test lint report stress lab docs clean

## the virtual environment: requirements.lock pins the dependencies and every extra of pyproject.toml (fleet,
## widgets, lab, test, docs), so each target below is one command on a fresh checkout
venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mpslab)" >/dev/null
	touch $@

## lint (ruff check + ruff format --check), then the tests: what CI runs
test: lint
	@$(PY) -m compileall -q mpslab  # children import it from bytecode even where PYTHONDONTWRITEBYTECODE is set
	$(PY) -m pytest

## ruff: lint and formatting check over the whole tree (notebooks through their jupytext .py pairs)
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## the main job: the seed's 64x200 stress (in process, oracle on), then the notebook series
## executed headlessly with papermill; exits non-zero if either found a failure
report: venv
	@$(PY) -m mpslab stress --threads 64 --iterations 200 --sync-every 20 --workload seed --device $(DEVICE); s=$$?; \
	 echo; $(PY) -m mpslab run --profile $(PROFILE) --device $(DEVICE) --out $(OUT); r=$$?; \
	 exit $$(( s > r ? s : r ))

## the seed's 64-thread x 200-iteration ultimate stress, in process
stress: venv
	$(PY) -m mpslab stress --threads 64 --iterations 200 --sync-every 20 --workload seed --device $(DEVICE)

## JupyterLab on the notebooks, with the project's kernel. The jupytext .py twins stay on disk (reviews diff
## them; jupytext keeps them in step when a notebook is saved) but the file browser lists each notebook once.
## JupyterLab refuses to run as root without --allow-root (containers often are root).
LAB_HIDE := __pycache__ *.pyc *.pyo .DS_Store *~ .ipynb_checkpoints [0-9][0-9]_*.py
lab: venv
	$(PY) -m jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) \
	  $(foreach g,$(LAB_HIDE),'--ContentsManager.hide_globs=$(g)') $(LAB_ARGS)

## the documentation site, built offline into site/ (open site/index.html)
docs: venv
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache site .cache
