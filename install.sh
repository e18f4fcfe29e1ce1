#!/usr/bin/env bash
# Install fashiongan into ./.venv on a Debian or Ubuntu machine: the data set (and, with --test,
# headless Chromium) from apt, then torch's CPU build, then the package with the pinned set of
# versions in constraints.txt. Works as root without sudo, as a user with sudo, and beside an
# externally managed system Python (PEP 668): nothing is installed into the system's Python.
#
#   bash install.sh           # the package, to run `fashiongan ...`
#   bash install.sh --test    # the package and its test tools
#
# Environment: PYTHON (default python3), VENV (default .venv), TORCH_INDEX_URL (default
# https://download.pytorch.org/whl/cpu; empty: take torch from pip's configured index).
set -euo pipefail
cd "$(dirname "$0")"

extras=""
case "${1:-}" in
  "") ;;
  --test) extras="[test]" ;;
  *) echo "install.sh: unknown option '$1'; expected nothing or --test" >&2; exit 2 ;;
esac
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_INDEX_URL="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "install.sh: '$*' needs root, and sudo is not installed; run this script as root" >&2
    exit 1
  fi
}

if command -v apt-get >/dev/null 2>&1; then
  packages=(dataset-fashion-mnist)
  [ -n "$extras" ] && packages+=(chromium chromium-driver)
  # Debian's python3 creates virtual environments only with python3-venv installed
  "$PYTHON" -c "import ensurepip, venv" 2>/dev/null || packages+=(python3-venv)
  echo "apt: ${packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
else
  echo "no apt-get here: the data set comes from 'fashiongan download' below"
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

# torch first: a bare `torch` requirement can pull a CUDA build of several GB. PyTorch's own
# index serves the CPU build; where it is out of reach, pip's configured index is used.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  torch_index=()
  if [ -n "$TORCH_INDEX_URL" ] && "$VENV/bin/python" - "$TORCH_INDEX_URL" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=10)
EOF
  then
    torch_index=(--extra-index-url "$TORCH_INDEX_URL")
  fi
  echo "pip: torch==2.13.0 ${torch_index[*]:-from the configured index}"
  "${pip[@]}" "${torch_index[@]}" torch==2.13.0
fi
echo "pip: fashiongan$extras (versions pinned by constraints.txt)"
"${pip[@]}" -c constraints.txt -e ".$extras"

# --test: torch-fidelity (the reference Inception network, and the library whose extractor API
# the tests check) imports torchvision, and PyPI's torchvision does not import beside torch's CPU
# build 2.13.0. Its tests run in a second venv with PyPI's torch 2.14.1 + torchvision 0.29.1 (a
# CUDA build of ~5.6 GB that runs on the CPU; FIDELITY_VENV= skips it, and those tests then fail).
FIDELITY_VENV="${FIDELITY_VENV-.venv-fidelity}"
if [ -n "$extras" ] && [ -n "$FIDELITY_VENV" ]; then
  [ -x "$FIDELITY_VENV/bin/python" ] || "$PYTHON" -m venv "$FIDELITY_VENV"
  if ! "$FIDELITY_VENV/bin/python" -c "import torch_fidelity, fashiongan" 2>/dev/null; then
    echo "pip: torch==2.14.1 torchvision==0.29.1 torch-fidelity into $FIDELITY_VENV (its tests)"
    fpip=("$FIDELITY_VENV/bin/python" -m pip install -q --disable-pip-version-check)
    "${fpip[@]}" torch==2.14.1 torchvision==0.29.1
    "${fpip[@]}" -c constraints.txt -e ".[inception]"
  fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
  "$VENV/bin/fashiongan" download
fi
echo "installed: $("$VENV/bin/fashiongan" --version) in $VENV (activate: . $VENV/bin/activate)"
