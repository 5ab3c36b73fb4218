# trialcds — every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo demo-down bench bench-screen serve fhir-up fhir-down clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	bash scripts/system-deps.sh
	$(PY) -m pytest

# HAPI + seeds + the service, every seed patient through patient-view; the service keeps running.
demo: $(STAMP)
	$(PY) scripts/demo.py

demo-down: $(STAMP)
	$(PY) scripts/demo.py --stop
	bash scripts/fhir-down.sh

serve: $(STAMP)
	$(VENV)/bin/trialcds serve --dev

# Ours vs a HealthChain peer (in its own venv, bench/.venv) and a plain-HTTP baseline; see
# the README's Performance section. BENCH_ARGS: e.g. --quick, --skip-hapi, --seed p01-eligible-gem-nabpac.
BENCH_VENV := bench/.venv
bench: $(STAMP) $(BENCH_VENV)/.installed
	$(PY) bench/run.py $(BENCH_ARGS)

$(BENCH_VENV)/.installed: bench/requirements-peer.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements-peer.txt
	touch $@

# trialcds screen on 1 000, 10 000 and 100 000 patients (Synthea background + seed PDAC patients,
# replicated; cached in .cache/population): local engine with 1 and 2 workers and Spark on local[2]
# next to the orjson parse-only floor; docs/performance.md. BENCH_SCREEN_ARGS: e.g. --sizes 1000,10000.
bench-screen: $(STAMP)
	$(PY) bench/screen.py $(BENCH_SCREEN_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis var

# The local HAPI FHIR JPA server (hapi/): built with Maven on first use.
fhir-up:
	bash scripts/fhir-up.sh

fhir-down:
	bash scripts/fhir-down.sh
