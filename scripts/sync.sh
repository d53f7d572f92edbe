#!/usr/bin/env bash
# Create .venv and install the locked packages, including the local model.
set -euo pipefail
if ! uv run --no-sync python -c "import llama_cpp" >/dev/null 2>&1; then
  echo "Installing packages. The first time, llama-cpp-python is compiled from source:"
  echo "this takes about 4-6 minutes on 2 cores (uv caches the wheel afterwards)."
fi
# llama.cpp is built for a portable x86-64 (AVX2/FMA/F16C), not with -march=native: a VM can
# advertise CPU features its kernel will not run (AMX tiles here: `ldtilecfg` faults, and
# the model server dies with SIGSEGV on its first token).
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
uv sync --frozen --extra local "$@"
