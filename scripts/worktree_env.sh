#!/usr/bin/env bash
# Give a second checkout (e.g. a git worktree that runs records while this one changes) its own
# environment, without reinstalling the packages: a venv that reads this checkout's .venv packages
# and holds an editable install of the other checkout. Putting the other checkout on PYTHONPATH is
# not enough: this .venv's editable install maps dpbench.envs and dpbench.baselines to *this*
# checkout, and the CLI refuses that mix (dpbench/source.py).
#
#   scripts/worktree_env.sh CHECKOUT [VENV]     (VENV default: CHECKOUT/.venv)
#   CHECKOUT/.venv/bin/dpbench run ...          (run from CHECKOUT)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
checkout="$(cd "${1:?usage: scripts/worktree_env.sh CHECKOUT [VENV]}" && pwd)"
venv="${2:-$checkout/.venv}"
site="$("$here/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$here/.venv/bin/python" -m venv --without-pip "$venv"
own="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$site" > "$own/zz_dpbench_shared_site.pth"  # read this .venv's packages (its .pth hooks stay off)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$checkout"
(cd /tmp && "$venv/bin/python" -c 'import dpbench.envs, dpbench.baselines
from dpbench.source import code_version, source_root
print(f"dpbench {code_version()} from {source_root()}")')
