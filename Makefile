# The two commands: `make run` starts the platform, `make test` runs the suite
# (`make lint`: ruff, makemigrations --check and mypy; CI runs it before the tests).
export PATH := $(HOME)/.local/bin:$(PATH)
.DEFAULT_GOAL := run
.PHONY: run test test-browser lint install bench faults

install:
	@bash scripts/ensure_uv.sh
	@bash scripts/sync.sh
	@bash scripts/ensure_ffmpeg.sh

run: install
	@uv run --no-sync python scripts/ensure_env.py
	@bash scripts/ensure_redis.sh
	@uv run --no-sync python manage.py migrate --noinput
	@uv run --no-sync python manage.py setup_platform
	@echo "Starting web (http://127.0.0.1:$${PORT:-8000}), worker, beat, connectors and the local model. Ctrl-C stops them all."
	@bash scripts/run.sh

test: install
	@bash scripts/ensure_redis.sh
	@uv run --no-sync pytest $(PYTEST_ARGS)

# Only the browser tests (Playwright driving Debian's chromium; no browser download).
test-browser: install
	@bash scripts/ensure_redis.sh
	@command -v chromium >/dev/null || { echo "The browser tests need Debian's chromium: apt-get install -y chromium"; exit 1; }
	@uv run --no-sync pytest -m browser $(PYTEST_ARGS)

# ruff, migrations in step with the models, mypy (django-stubs, DRF stubs) on apps/ and
# assistant/. DEBUG=true: the settings load without a .env (a clean clone, CI).
lint: install
	@uv run --no-sync ruff check .
	@uv run --no-sync ruff format --check .
	@DEBUG=true uv run --no-sync python manage.py makemigrations --check --dry-run
	@DEBUG=true uv run --no-sync mypy

# Load benchmark: the real stack (Procfile's web and worker, beat, PostgreSQL, Redis)
# beside a bare relay, against loopback fakes; results in bench/RESULTS.md. Under 10 min.
# Quick look (leaves RESULTS.md alone): make bench BENCH_ARGS=--quick; knobs:
# BENCH_ARGS=--help. Needs PostgreSQL at 127.0.0.1:5432 (drops/creates assistant_bench).
bench: install
	@bash scripts/ensure_redis.sh
	@uv run --no-sync python bench/run.py $(BENCH_ARGS)

# Faults: SIGKILLed workers, a restarted Redis, 429/5xx bursts from Telegram and the model,
# duplicated updates, on the real stack; counts answers lost or repeated (bench/RESULTS.md).
# Needs PostgreSQL at 127.0.0.1:5432 (drops/creates assistant_faults); ~10 min.
faults: install
	@uv run --no-sync python bench/faults.py $(FAULTS_ARGS)
