#!/usr/bin/env bash
# Create the virtual environment that the RecBole comparisons run in. RecBole is never a project dependency.
# Usage: bash scripts/recbole_env.sh [VENV_DIR]   (default: .recbole-venv in the repository root)
# RecBole 1.2.1 predates numpy 2, pandas 3, scipy 1.13 and setuptools 81; these pins make it import and
# run with torch 2.13. Its checkpoints need TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 at run time (set by the
# scripts that call it).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.recbole-venv}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import recbole" 2>/dev/null; then
    echo "RecBole environment ready: $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q torch==2.13.0 recbole==1.2.1 "numpy<2" "pandas<3" "scipy<1.13" "setuptools<81"
"$venv/bin/python" -c "import recbole; print('RecBole', recbole.__version__, 'installed in $venv')"
