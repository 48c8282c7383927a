#!/usr/bin/env bash
# Getting ssltk onto a GPU machine without network (the GPU issue; ../shared/gpu/README.md).
#
#   bash examples/benchmarks/gpu_setup.sh prepare    # here, before a device call: fills .whl/ and .data/
#   bash examples/benchmarks/gpu_setup.sh install    # there, first thing in a call (carry .whl and .data)
#
# prepare copies into folders git ignores: the wheels the GPU image lacks (jsonargparse and its two pure-Python
# dependencies) into .whl/, and the CIFAR-10 JPEG archive and the papers' reference pipeline into .data/.
# install puts the wheels in .site/ (first on PYTHONPATH: `export PYTHONPATH=$PWD/.site` in the same call), installs
# the project and its plugins editable with no index and no dependencies (the image has torch, torchvision, timm,
# pluggy, rich, safetensors, PyYAML, numpy, scikit-learn, scipy, matplotlib and pytest), and extracts the images to
# .data/train. PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
SHARED=${SHARED:-../shared}

case "${1:-}" in
  prepare)
    mkdir -p .whl .data
    cp "$SHARED"/gpu/wheels/*.whl .whl/
    cp "$SHARED"/datasets/cifar10-train-jpg.tar.gz "$SHARED"/datasets/cifar10-test-half-jpg.tar.gz \
        "$SHARED"/tools/reference_relational.py .data/
    du -sh .whl .data
    ;;
  install)
    [ -d .whl ] && [ -f .data/cifar10-train-jpg.tar.gz ] || { echo "gpu_setup.sh: run 'prepare' here first, and carry .whl and .data" >&2; exit 2; }
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target .site --upgrade .whl/*.whl
    export PYTHONPATH="$PWD/.site${PYTHONPATH:+:$PYTHONPATH}"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation -e . -e plugins/relational \
        -e plugins/structured_mi -e plugins/baselines -e plugins/sela -e plugins/momentum -e plugins/decorrelation
    [ -d .data/train ] || tar -xzf .data/cifar10-train-jpg.tar.gz -C .data
    [ -d .data/test ] || [ ! -f .data/cifar10-test-half-jpg.tar.gz ] || tar -xzf .data/cifar10-test-half-jpg.tar.gz -C .data
    "$PYTHON" -c "import jsonargparse, ssltk, torch; print('ssltk', ssltk.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| jsonargparse from', jsonargparse.__file__)"
    echo "images: $(find .data/train -name '*.jpg' | wc -l) in .data/train"
    ;;
  *)
    echo "usage: bash examples/benchmarks/gpu_setup.sh prepare|install" >&2
    exit 2
    ;;
esac
