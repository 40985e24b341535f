# The two commands a newcomer needs: `make demo` and `make test`.
# Both set everything up on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSOLE := gateway/console
LEAFLET := $(CONSOLE)/node_modules/leaflet/dist/leaflet.js

.PHONY: demo test lint setup demo-setup system-deps clean

# The whole system on this machine: broker, gateway with the console, 50 simulated units.
# It needs less of the system than the tests: without mosquitto (and without root to
# install it) it runs its embedded broker.
demo: demo-setup
	$(BIN)/balise demo $(DEMO_ARGS)

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

setup: system-deps $(STAMP) $(LEAFLET)

demo-setup:
	@bash scripts/system-deps.sh demo
	@$(MAKE) --no-print-directory $(STAMP) $(LEAFLET)

system-deps:
	@bash scripts/system-deps.sh test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The console's map library, from the npm registry, served by the gateway itself.
$(LEAFLET): $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	npm ci --prefix $(CONSOLE) --no-audit --no-fund --loglevel=error
	touch $(LEAFLET)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(CONSOLE)/node_modules
