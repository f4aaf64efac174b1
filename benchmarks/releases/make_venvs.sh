#!/usr/bin/env bash
# One venv per torch release, outside the repository, for `python -m mpslab matrix --pythons ...`.
# Usage: benchmarks/releases/make_venvs.sh [ROOT] [VERSION...]
#   ROOT defaults to ../mpslab-venvs beside the checkout; VERSIONS default to the four of the casebook matrix.
# The children of a trial need torch, numpy, pandas and pyyaml: mpslab itself is loaded by path.
# 2.11.0 and 2.12.1 come from the registry as CUDA builds (about 5.5 GB each with their nvidia wheels); they run
# on a CPU-only machine all the same.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
root="${1:-$here/../mpslab-venvs}"
shift || true
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.11.0 2.12.1 2.13.0 2.14.1)
python="${PYTHON:-python3}"
mkdir -p "$root"
for v in "${versions[@]}"; do
  dir="$root/torch-$v"
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$v')" 2>/dev/null; then
    echo "torch $v: $dir (already there)"; continue
  fi
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$v" "numpy>=1.24" "pandas>=2.0" "pyyaml>=6.0"
  echo "torch $v: $dir ($("$dir/bin/python" -c 'import torch; print(torch.__version__)'))"
done
