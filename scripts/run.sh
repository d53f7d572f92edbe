#!/usr/bin/env bash
# `make run`'s last step: the Procfile's processes under honcho until Ctrl-C.
#
# Job control (set -m) runs honcho as the terminal's foreground job in a process group
# of its own, so Ctrl-C reaches honcho, which stops every process, and not make, which
# would report the interrupt as a failure ("make: *** ... Interrupt" / "Error 130").
set -m
port="${PORT:-8000}"
# honcho sends SIGKILL 5 s after SIGTERM. A worker's warm shutdown takes a second or two
# after it stops waiting for its turns in flight, so it waits 1 s for them here (the
# sweeper answers the rest after the next start) instead of the production 30 s.
export WORKER_SHUTDOWN_GRACE_SECONDS="${WORKER_SHUTDOWN_GRACE_SECONDS:-1}"
# honcho gives each process a PORT of its own; the banner (Procfile's `ready`) needs the web's.
export WEB_PORT="$port"
# Prometheus multiprocess mode: web, worker, beat and connectors write their metrics here
# and the web's /metrics sums them. Emptied at every start, as prometheus-client requires.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/.prometheus-multiproc}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
uv run --no-sync honcho start -f Procfile --port "$port"
status=$?
# 130: honcho stopped everything on Ctrl-C, as asked.
if [ "$status" -eq 130 ]; then exit 0; fi
exit "$status"
