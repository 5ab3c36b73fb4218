# trialcds — every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo demo-down bench serve fhir-up fhir-down clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# HAPI + seeds + the service, every seed patient through patient-view; the service keeps running.
demo: $(STAMP)
	$(PY) scripts/demo.py

demo-down:
	-[ -f var/serve.pid ] && kill -TERM -- -$$(cat var/serve.pid) 2>/dev/null; rm -f var/serve.pid
	bash scripts/fhir-down.sh

serve: $(STAMP)
	$(VENV)/bin/trialcds serve --dev

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis var

# The local HAPI FHIR JPA server (hapi/): built with Maven on first use.
fhir-up:
	bash scripts/fhir-up.sh

fhir-down:
	bash scripts/fhir-down.sh
