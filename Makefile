# selectseg: `make demo` runs the main job on built-in synthetic data, `make test` runs lint and the tests.
# Both create the virtual environment (.venv) and install the package with constraints.txt if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint format bench clean browser-deps

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/selectseg demo --out demo_output

lint: install
	$(PY) -m ruff check src tests benchmarks experiments
	$(PY) -m ruff format --check src tests benchmarks experiments
	$(PY) -m mypy

format: install
	$(PY) -m ruff format src tests benchmarks experiments
	$(PY) -m ruff check --fix src tests benchmarks experiments

# Headless Chromium for the report's browser test (tests/report/test_browser.py): Debian's chromium and its driver.
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	elif command -v sudo >/dev/null 2>&1; then \
		sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null || \
		echo "browser-deps: could not install chromium chromium-driver with sudo -n; the browser test will be skipped."; \
	else \
		echo "browser-deps: /usr/bin/chromium or /usr/bin/chromedriver is missing and there is no root or sudo;" \
			"install the Debian packages chromium and chromium-driver (the browser test is skipped without them)."; \
	fi

test: install lint browser-deps
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/bench_ranking_loss.py
	$(PY) benchmarks/bench_dice_curve.py
	$(PY) benchmarks/bench_train_step.py --regime untrained
	$(PY) benchmarks/bench_train_step.py --regime trained
	$(PY) benchmarks/bench_ensemble_forward.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .mypy_cache .ruff_cache
