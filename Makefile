# Everything runs in .venv, created on first use from a plain Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

LINTED := $(wildcard src tests benchmarks examples fuzz)

.PHONY: demo test lint typecheck docs browser pytest faults fuzz bench kafka-jars clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/eventwire demo

test: lint typecheck docs pytest

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tests/typing

# kafka-jars first: on a fresh machine Maven's download then shows, outside any test timeout.
pytest: $(STAMP) browser kafka-jars
	PYTHONASYNCIODEBUG=1 $(BIN)/pytest -q --durations=20

# The documentation site, into site/ (tests/docs/test_site.py builds it again and opens it).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Debian's headless Chromium (and a font) for the docs screenshot test; CI runs as root.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium with apt-get (the docs screenshot test needs it)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else \
	    echo "the docs screenshot test needs Debian's chromium: sudo apt-get install chromium" \
	         "fonts-dejavu-core (or run 'make browser' as root)"; \
	    exit 1; \
	  fi; }

# The fault suite at full size (tests/faults and the outbox's; CI runs them with a small
# event count), the property-based campaign at full size (tests/properties; CI runs a small,
# derandomized number of examples), then coverage-guided fuzzing for FUZZ_SECONDS per harness (fuzz/).
FAULT_EVENTS ?= 100000
FUZZ_EXAMPLES ?= 10000
FUZZ_SECONDS ?= 60
faults: $(STAMP) kafka-jars
	EVENTWIRE_FAULT_EVENTS=$(FAULT_EVENTS) PYTHONASYNCIODEBUG=1 $(BIN)/pytest -q -rA tests/faults tests/outbox/test_faults.py
	EVENTWIRE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -rA -p no:cacheprovider \
	  -o timeout=7200 --hypothesis-show-statistics tests/properties
	$(MAKE) fuzz

fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

# Apache Kafka's jars for KafkaCluster, through Maven into its local repository (first time
# only), after checking for Java >= 17. The first test that starts a cluster would fetch them too.
kafka-jars: $(STAMP)
	$(BIN)/python -c 'import logging; logging.basicConfig(level=logging.INFO, format="%(message)s"); \
	from eventwire.testing._kafka_jars import KAFKA_VERSION, cache_dir, java_executable, kafka_classpath; \
	java = java_executable(); jars = kafka_classpath().split(":"); \
	print(f"Apache Kafka {KAFKA_VERSION}: {len(jars)} jars (classpath in {cache_dir()}), {java}")'

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache site
