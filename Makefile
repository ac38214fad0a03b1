# The two promised commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
FLASK  := $(BIN)/flask --app wsgi

.PHONY: setup run test test-pg fuzz lint migrate demo worker bench bench-paid-message bench-live bench-guides soak clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP)

migrate: setup
	$(FLASK) db upgrade

demo: migrate
	$(FLASK) mall demo

run: demo  ## API on :8000 + RQ worker with scheduler (+ the embedded Redis when REDIS_URL is unset)
	$(BIN)/python scripts/run_local.py

worker: setup
	$(BIN)/python scripts/run_local.py --only worker

# On the embedded default every xdist worker has its own scratch SQLite and embedded Redis: the suite runs on
# the cores. With TEST_DATABASE_URL / TEST_REDIS_URL (PostgreSQL and a real Redis: `make test-pg`, `.ci/run`) each
# of TEST_PG_WORKERS xdist workers gets its own copy of the database and its own Redis db (tests/conftest.py);
# then the tests marked `serial` (they subscribe to Redis pub/sub, which no db number separates) run alone.
# Both passes run; the result fails if either failed.
TEST_PG_WORKERS ?= 3
PYTEST   := $(BIN)/python -m pytest -q
PG_SUITE := rc=0; $(PYTEST) -n $(TEST_PG_WORKERS) -m "not serial" || rc=$$?; $(PYTEST) -m serial || rc=$$?; exit $$rc

test: setup
	$(if $(TEST_DATABASE_URL),$(PG_SUITE),$(PYTEST) -n auto --maxprocesses 4)

# The PostgreSQL + Redis suite for developers: a throw-away database (created if missing, copied per worker) and
# Redis dbs n .. n + TEST_PG_WORKERS - 1 (at most 15), all emptied by the tests.
test-pg: export TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/mall_test
test-pg: export TEST_REDIS_URL ?= redis://127.0.0.1:6379/12
test-pg: setup
	$(PG_SUITE)

# Schemathesis against /api/openapi.json, every operation as each role and anonymous, in depth (`make test` runs
# the same module with 2 cases per operation, role and mode): FUZZ_EXAMPLES cases each; figures at the end.
FUZZ_EXAMPLES ?= 10
fuzz: setup
	MALL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTEST) -n 2 tests/api/test_schema_fuzz.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m bench

bench-paid-message: setup  ## payment -> 'paid' message at (fake) WeChat through the RQ worker, cron running
	$(BIN)/python -m bench paid_message --backend sqlite

bench-live: setup  ## viewer poll, cart link opens, 1,000 SSE streams and a pin's fan-out, each beside /livez (PostgreSQL)
	$(BIN)/python -m bench live --backend postgres

bench-guides: setup  ## checkout with a bound guide vs without, settling commission entries, a guide's summary (PostgreSQL)
	$(BIN)/python -m bench guides --backend postgres --time-limit 90

# A bounded mixed workload against gunicorn, an RQ worker and rq cron on PostgreSQL and Redis, then every invariant
# audited (soak/__main__.py). SOAK_SECONDS (default 300), SOAK_CLIENTS (12); SOAK_DATABASE_URL (an empty database)
# or a throw-away one via SOAK_PG_ADMIN_URL; SOAK_REDIS_URL (an empty Redis db, default redis://127.0.0.1:6379/14).
soak: setup  ## exits non-zero on a violated invariant or a failed request
	$(BIN)/python -m soak

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
