#!/bin/sh
# The pure-Python wheels benchmarks/gpu_check.py needs beyond a CUDA PyTorch image (torch, numpy, pandas, tqdm,
# filelock): the peers' optimizers, at the versions the project is tested with. Run where pip reaches PyPI; carry
# benchmarks/wheels/ (git-ignored, about 100 kB) to the GPU machine beside the checkout. gpu_check.py puts each
# wheel on its path from there: nothing is installed.
set -eu
cd "$(dirname "$0")"
rm -rf wheels
python3 -m pip wheel --quiet --no-deps --wheel-dir wheels \
    prodigyopt==1.1.2 dadaptation==3.2 dog-optimizer==1.0.3 schedulefree==1.4.1
ls -l wheels
