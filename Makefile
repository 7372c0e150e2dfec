# Everything runs in .venv, created on first use from a plain Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

LINTED := $(wildcard src tests benchmarks examples)

.PHONY: demo test lint typecheck pytest faults bench kafka-jars clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/eventwire demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tests/typing

# kafka-jars first: on a fresh machine Maven's download then shows, outside any test timeout.
pytest: $(STAMP) kafka-jars
	PYTHONASYNCIODEBUG=1 $(BIN)/pytest -q

# The fault suite at full size (tests/faults; CI runs it with a small event count).
FAULT_EVENTS ?= 100000
faults: $(STAMP) kafka-jars
	EVENTWIRE_FAULT_EVENTS=$(FAULT_EVENTS) PYTHONASYNCIODEBUG=1 $(BIN)/pytest -q -rA tests/faults

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
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
