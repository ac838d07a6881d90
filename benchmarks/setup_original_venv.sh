#!/usr/bin/env bash
# Build .orig-venv: the ORIGINAL PyPI loss-landscape-anim==0.1.10 with its dependencies,
# for benchmarks/original_runner.py. Idempotent; safe to rerun.
#
#   bash benchmarks/setup_original_venv.sh
#
# torch is pinned to the local CPU build (a plain `torch` would pull a CUDA build).
# The original requires torchvision 0.16 (torch 2.1); torchvision is NOT installed:
# the runner supplies a stub for the two names the original imports.
# ImageMagick (Debian) is the original's GIF writer; its resource limits are raised by
# benchmarks/imagemagick/policy.xml, which the runner selects via MAGICK_CONFIGURE_PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ORIG_VENV:-$ROOT/.orig-venv}"
PY="${PYTHON:-python3}"
TORCH="torch==2.13.0"

die() { echo "setup_original_venv: $*" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV" >&2
    "$PY" -m venv "$VENV" || die "cannot create venv with $PY"
fi
PIP=("$VENV/bin/python" -m pip install --quiet)

# torch first, so nothing below can swap it for another build.
"${PIP[@]}" "$TORCH" || die "cannot install $TORCH"
# The original itself, without its (unsatisfiable here) torchvision<0.17 requirement.
"${PIP[@]}" --no-deps "loss-landscape-anim==0.1.10" || die "cannot install loss-landscape-anim"
# Its other requirements, within the original's declared ranges; pytorch-lightning and
# torchmetrics are left to pip, with torch pinned so it picks releases that accept it.
"${PIP[@]}" "$TORCH" \
    "numpy>=1.26.3,<2" "matplotlib>=3.8.2,<4" "scikit-learn>=1.4,<2" "tqdm>=4.66.1,<5" \
    "pytorch-lightning>=2.1.3,<3" torchmetrics "importlib_resources>=6.1.1,<7" pillow \
    || die "cannot install the original's dependencies"

"$VENV/bin/python" -c "import torch, pytorch_lightning, torchmetrics, matplotlib, sklearn" \
    || die "the venv's packages do not import"
"$VENV/bin/python" -c "import torch; assert torch.__version__.startswith('2.13.0')" \
    || die "torch in $VENV is not 2.13.0"

# Real ImageMagick (not the /usr/local/bin/convert stand-in some machines carry).
if ! /usr/bin/convert -version 2>/dev/null | grep -q ImageMagick; then
    echo "installing imagemagick with apt-get" >&2
    [ "$(id -u)" -eq 0 ] || die "imagemagick missing and not root: apt-get install imagemagick"
    apt-get update -q >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends imagemagick >&2 \
        || die "apt-get install imagemagick failed"
fi
MAGICK_CONFIGURE_PATH="$ROOT/benchmarks/imagemagick" /usr/bin/convert -list resource \
    | grep -q "Memory: 4GiB" || die "benchmarks/imagemagick/policy.xml is not picked up"

echo "ready: MPLBACKEND=Agg $VENV/bin/python benchmarks/original_runner.py --repeats 3" >&2
