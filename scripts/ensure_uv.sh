#!/usr/bin/env bash
# uv manages .venv and the lock; install it with pip when it is missing.
set -euo pipefail
if ! command -v uv >/dev/null; then
  echo "Installing uv (pip install --user uv)…"
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
fi
