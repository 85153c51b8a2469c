#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for leaf_ssl: the audio tools the demo corpus is made
# with (apt), and a virtual environment in .venv with the package and its test and peer extras
# (torch: the learning-parity benchmark's independent COLA, which the tests check) and the HEAR
# tools the tests run (launch/hear_clients.txt).
# Idempotent: a second run only checks. Run from anywhere; works on the repo root.
set -euo pipefail
cd "$(dirname "$0")/.."

# The shellcheck package: the tests lint the pod and cluster launchers with it. ffmpeg: decodes the m4a/opus/webm
# files that AudioSet downloaders write, which libsndfile cannot read.
APT_PACKAGES=(espeak-ng fluidsynth fluid-soundfont-gm sox shellcheck ffmpeg
  asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav
  asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "[setup] error: leaf_ssl needs Python 3.11 or newer (jax >= 0.8 does); $PYTHON is" \
    "$("$PYTHON" --version 2>&1 || echo missing). Run with PYTHON=python3.11 (or newer)." >&2
  exit 2
fi
# A .venv left without pip by a creation that failed (Debian's python3 without python3-venv) is
# made again rather than reused.
if [ -x .venv/bin/python ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "[setup] .venv has no pip (an earlier creation failed): creating it again"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's pip bootstrap apart: python3-venv (python3.X-venv for a python3.X).
    venv_package=python3-venv
    [ "$PYTHON" = python3 ] || venv_package="$(basename "$PYTHON")-venv"
    echo "[setup] installing $venv_package ($PYTHON cannot create a virtual environment without it)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$venv_package"
  fi
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# The editable install (at the versions of launch/constraints.txt, the ones the suite last passed
# with) is redone only when pyproject.toml or a version list changed since the last one: re-running
# pip would rewrite the package's .pth file under any Python process importing it meanwhile.
STAMP=.venv/leaf_ssl_pyproject.sha256
if ! sha256sum --status -c "$STAMP" 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c launch/constraints.txt -e ".[test,peer]"
  .venv/bin/python -m pip install -q --no-deps --ignore-requires-python -r launch/hear_clients.txt
  sha256sum pyproject.toml launch/constraints.txt launch/hear_clients.txt > "$STAMP"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import jax, flax; print("jax", jax.__version__, "flax", flax.__version__)')"
