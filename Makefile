# One entry point for humans and CI. Only python3 is assumed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.PHONY: demo test typecheck test-fault test-pg bench browser postgres clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
# the newest litellm in our range, as a fresh install gets it (tests/test_dependencies.py)
	$(BIN)/pip install --quiet --upgrade 'litellm>=1.106,<2'
	touch $(STAMP)

# The example agent, offline: ScriptedLLM plays examples/research_assistant/script.json and
# the piped line answers the agent's question, as a user at the terminal would.
demo: $(STAMP)
	printf 'structured concurrency in trio\n' | \
	  $(BIN)/hive-actors run examples/research_assistant --scripted --storage .demo-storage
	$(BIN)/hive-actors sessions examples/research_assistant --storage .demo-storage

# Debian's chromium for the dashboard test; skipped (the test then skips) without root/apt.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium install failed: the dashboard browser test will skip"; \
	  else echo "no root/apt-get: the dashboard browser test will skip"; fi; \
	fi

# Debian's PostgreSQL server for tests/postgres (each test module starts its own on a socket);
# without root/apt those tests skip (under CI they fail).
postgres:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	      || echo "postgresql install failed: the PostgreSQL tests will skip (fail under CI)"; \
	  else echo "no root/apt-get: the PostgreSQL tests will skip (fail under CI)"; fi; \
	fi

# mypy, pinned in the test extra and configured in pyproject.toml ([tool.mypy]); a type error
# fails `make test`, and so CI.
typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) browser postgres typecheck
	$(PYTEST) -q -p no:cacheprovider

test-fault: $(STAMP)
	$(PYTEST) -q -p no:cacheprovider -m slow tests/fault

test-pg: $(STAMP) postgres
	$(PYTEST) -q -p no:cacheprovider -m slow tests/postgres

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,compare,plot]'
	$(BIN)/hive-actors bench --out benchmarks/results/latest.json

clean:
	rm -rf $(VENV) .demo-storage build dist
