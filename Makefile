# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit browser bench-accuracy clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/califusion demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Browser tests drive Debian's Chromium; a fresh machine lacks it, so install it when we can.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium missing and not root: browser tests will be skipped"; fi; }

unit: $(STAMP) browser
	$(BIN)/pytest -q

test: lint unit

bench-accuracy: $(STAMP)
	$(BIN)/python bench/fedprox_synthetic.py

clean:
	rm -rf $(VENV) demo-output .mypy_cache .ruff_cache .pytest_cache
