# Vigil — the two commands a new user needs: `make demo` and `make test`.
# Both install what is missing (uv, then the locked dependencies) before they run.

PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

.PHONY: help install demo test test-fast lint typecheck bench native docs clean

help:
	@echo "make demo   - run the whole pipeline locally on sample alerts (no Redis or Docker needed)"
	@echo "make test   - run the test suite against a real (private) Redis"
	@echo "make bench  - measure throughput and latency beside a plain-Redis ceiling"
	@echo "make lint   - ruff + mypy"

install:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		{ echo "installing uv $(UV_VERSION) with pip"; $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"; }
	@$(UV) sync --frozen --all-packages --quiet

demo: install
	$(UV) run vigil demo

test: install browser console-assets
	$(UV) run pytest

test-fast: install
	$(UV) run pytest -m "not e2e and not slow"

# The style gate: ruff over the whole tree, mypy --strict (config in pyproject.toml) over every package's
# sources. Both always run, so one report shows everything; the target fails if either found anything.
lint: install
	@status=0; \
	echo "ruff check ."; $(UV) run ruff check . || status=1; \
	echo "mypy shared/src services/*/src"; $(UV) run mypy shared/src services/*/src || status=1; \
	exit $$status

# the compiled builds (mypyc; vigil_shared/native.py) of the classifier's and notify's hot modules, as
# their images have them: built once per source digest into ~/.cache/vigil/{classify,notify}-native
# (tens of seconds each), then reused
native: install
	@echo "compiling the classifier's and notify's hot modules (mypyc; once per source version)"
	@$(UV) run vigil classify-compile
	@$(UV) run vigil notify-compile

bench: install native
	$(UV) run vigil bench

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache

# Operator console (services/console): its browser tests need Debian's chromium (no browser download),
# its offline map the npm package world-atlas (Natural Earth outlines, public domain). Both idempotent.
.PHONY: browser console-assets
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the console's browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "warning: chromium could not be installed; the browser tests will be skipped"; \
	fi

console-assets:
	@if [ ! -f services/console/node_modules/world-atlas/countries-110m.json ]; then \
		if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null) || true; \
		fi; \
		if command -v npm >/dev/null 2>&1; then \
			npm ci --prefix services/console --no-audit --no-fund --loglevel=error; \
		else echo "warning: npm not found; the console's map will show a graticule without country outlines"; fi; \
	fi
