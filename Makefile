# The two promised commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
FLASK  := $(BIN)/flask --app wsgi

.PHONY: setup run test test-pg lint migrate demo worker bench bench-paid-message bench-live bench-guides clean

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
# the cores. A TEST_DATABASE_URL / TEST_REDIS_URL (`.ci/run`) is one shared database: run serially there.
test: setup
	$(BIN)/python -m pytest -q $(if $(TEST_DATABASE_URL),,-n auto --maxprocesses 4)

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

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
