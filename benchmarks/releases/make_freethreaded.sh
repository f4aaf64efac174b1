#!/usr/bin/env bash
# One-time set-up for the free-threaded runs (not in CI: the interpreter build alone takes about 17 minutes
# on 2 cores): CPython 3.13 built with --disable-gil from Debian trixie's source package of python3.13, then one
# venv per torch release that publishes cp313t wheels, for `python -m mpslab matrix --pythons ...` and
# `python -m mpslab compare --a ... --b ...`.
#
# Usage (as root, on Debian): benchmarks/releases/make_freethreaded.sh [ROOT] [VERSION...]
#   ROOT defaults to /work/ft (the interpreter under ROOT/py313t, sources under ROOT/src, venvs ROOT/torch-V-313t);
#   VERSIONS default to 2.11.0 2.12.0 (torch publishes cp313t wheels up to 2.12.0).
# Rerunnable: each step is skipped when its result is already there.
#
# What a trial's child needs: torch, numpy, pandas, pyyaml (mpslab itself is loaded by path). numpy must come
# as a wheel (--only-binary=:all:, 2.4.x). PyYAML publishes no cp313t wheel, so it is built from its source
# distribution (its pure-Python fallback is enough here). torch comes from the registry as its CUDA build
# (about 5.5 GB with the nvidia wheels); it runs on a CPU-only machine all the same.
set -euo pipefail
root="${1:-/work/ft}"
shift || true
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.11.0 2.12.0)
prefix="$root/py313t"
py="$prefix/bin/python3.13t"
jobs="${JOBS:-2}"

if [ ! -x "$py" ]; then
  src_list=/etc/apt/sources.list.d/trixie-src.sources
  if [ ! -f "$src_list" ]; then
    cat > "$src_list" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -q
  apt-get install -y -q build-essential pkg-config libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev \
    libsqlite3-dev libreadline-dev uuid-dev libncurses-dev xz-utils
  mkdir -p "$root/src"
  cd "$root/src"
  ls python3.13_*.orig.tar.xz >/dev/null 2>&1 || apt-get source --download-only python3.13
  orig="$(ls python3.13_*.orig.tar.xz | sort -V | tail -n 1)"
  tree="$(tar tf "$orig" | head -n 1 | cut -d/ -f1)"
  [ -d "$tree" ] || tar xf "$orig"
  cd "$tree"
  # The upstream tree as released (Debian's patches are not applied): only the GIL is switched off.
  [ -f Makefile ] || nice -n 10 ./configure --disable-gil --prefix="$prefix" --without-ensurepip
  nice -n 10 make -j"$jobs"
  nice -n 10 make install
fi
"$py" -m pip --version >/dev/null 2>&1 || "$py" -m ensurepip
PYTHON_GIL=0 "$py" -c 'import sys; assert not sys._is_gil_enabled(), "PYTHON_GIL=0 but the GIL is on"'
PYTHON_GIL=1 "$py" -c 'import sys; assert sys._is_gil_enabled(), "PYTHON_GIL=1 but the GIL is off"'
echo "interpreter: $py ($("$py" -c 'import sys; print(sys.version.split()[0], sys.abiflags)'))"

for v in "${versions[@]}"; do
  dir="$root/torch-$v-313t"
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import torch, numpy, pandas, yaml, sys; sys.exit(torch.__version__.split('+')[0] != '$v')" 2>/dev/null; then
    echo "torch $v: $dir (already there)"; continue
  fi
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "torch==$v" "numpy>=2.4,<2.5" "pandas>=2.0"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "pyyaml>=6.0"
  echo "torch $v: $dir ($("$dir/bin/python" -c 'import torch; print(torch.__version__)'))"
done
