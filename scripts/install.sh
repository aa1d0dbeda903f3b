#!/usr/bin/env bash
# Create .venv and install dpbench with its test tools.
#
# torch: when .venv has none, we install torch==2.13.0 first (the project's machines resolve it to
# the CPU wheel from their local package index; on plain PyPI, Linux gets the CUDA build, so pass
# DPBENCH_TORCH with the CPU index URL there), so the project's torch range is already satisfied. GPU users either
# keep the torch they already have in the venv, or set DPBENCH_TORCH to the spec they want
# (e.g. DPBENCH_TORCH="torch" with their CUDA index), or DPBENCH_TORCH=skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
TORCH_SPEC=${DPBENCH_TORCH:-torch==2.13.0}
if [ "$TORCH_SPEC" != "skip" ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check "$TORCH_SPEC"
fi
# extras: test and robosuite (the robomimic tasks) by default; DPBENCH_EXTRAS=test,robosuite,ray
# adds the Ray backend (CI does); DPBENCH_EXTRAS=test skips robosuite (Push-T only, numpy 2).
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[${DPBENCH_EXTRAS:-test,robosuite}]"
echo "dpbench installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
