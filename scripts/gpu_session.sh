#!/usr/bin/env bash
# Everything a lent GPU machine should measure, in one script (BENCHMARKS.md records what it prints).
#
# Here, before the first call (PyPI is reachable here, not there):
#   bash scripts/gpu_session.sh fetch        # .whl/: MuJoCo, MJX and the rest the image lacks (~34 MB)
#   bash scripts/gpu_session.sh fetch-warp   # .whl_warp/: mujoco-warp and warp-lang split in three 52 MiB parts
# There (the device tool's run, carrying .whl; one call is at most 10 minutes):
#   bash scripts/gpu_session.sh bench humanoid         # one character at 1024/4096/8192 envs (JAX)
#   bash scripts/gpu_session.sh bench go2 pi_plus      # ...the others, two per call
#   bash scripts/gpu_session.sh train                  # amp_humanoid for TRAIN_SECONDS (360), eval, curves, GIF
#   bash scripts/gpu_session.sh train amp_location_humanoid    # (or amp_steering_humanoid): a task case
#   bash scripts/gpu_session.sh warp humanoid          # the same table on MuJoCo Warp (see below), and
#                                                      # scripts/warp_fidelity.py step for its solver budget
#
# Each character at three sizes compiles six programs (about a minute each on the CPU), so one call
# fits one or two characters. The image has CUDA jax, flax, optax, orbax and imageio but no MuJoCo,
# tensorboardX or imageio-ffmpeg (68 MB, over the 64 MB a call carries): videos there are GIFs.
# warp-lang is 149 MB: carry .whl_warp/part-aa, then -ab, then -ac (one path each) in three calls less
# than 30 s apart (the machine stays warm that long), each running `bash scripts/gpu_session.sh
# stash-warp`, which keeps the part in /tmp/warp-parts; a `warp` call (carrying .whl) then joins and
# installs them.
# Outputs go to $OUT (or output/gpu) as JSON, logs and GIFs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-output/gpu}
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform any"

download() {  # download DIR PACKAGE==VERSION...: cp312 x86-64 wheels, without dependencies
  local dir=$1
  shift
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    $PLATFORMS -d "$dir" "$@"
}

case "${1:-}" in
  fetch)
    download .whl mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 mujoco-mjx==3.17.0 glfw==2.11.0 \
      PyOpenGL==3.1.10 trimesh==5.2.0 websockets==15.0.1 tensorboardX==2.6.5
    du -sh .whl
    exit 0
    ;;
  fetch-warp)
    tmp=$(mktemp -d)
    download "$tmp" mujoco-warp==3.17.0 warp-lang==1.19.0
    mkdir -p .whl_warp
    tar -C "$tmp" -cf - . | split -b 52M - .whl_warp/part-
    rm -rf "$tmp"
    ls -la .whl_warp
    exit 0
    ;;
  stash-warp)
    mkdir -p /tmp/warp-parts
    cp .whl_warp/part-* /tmp/warp-parts/
    ls /tmp/warp-parts
    exit 0
    ;;
  bench|warp|train) ;;
  *)
    echo "usage: $0 fetch|fetch-warp|stash-warp|bench|warp|train [CHARACTER...]" >&2
    exit 2
    ;;
esac

mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
# float32 matmuls in full precision (train.matmul_precision, default highest); PRECISION=default lets Hopper
# use TF32: run `bench humanoid` both ways to see what the networks' precision costs.
PRECISION=${PRECISION:-highest}
export MUJOCO_GL=egl XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export AMP_JAX_CACHE=${AMP_JAX_CACHE:-/tmp/amp-jax-xla}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
echo "train.matmul_precision=$PRECISION" | tee -a "$OUT/gpu.txt"
python3 -c "import jax, mujoco; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)" | tee -a "$OUT/gpu.txt"
amp_jax() { python3 -m amp_jax.cli "$@"; }

mode=$1
shift
characters=("$@")
[ ${#characters[@]} -gt 0 ] || characters=(humanoid)
name=$(IFS=_; echo "${characters[*]}")

case "$mode" in
  bench)
    amp_jax bench --character "${characters[@]}" --num_envs 1024 4096 8192 --repeats 5 \
      --set train.matmul_precision="$PRECISION" --json "$OUT/bench_jax_$name.json" 2>&1 | tee "$OUT/bench_jax_$name.log"
    ;;
  warp)
    mkdir -p /tmp/warp-whl
    cat /tmp/warp-parts/part-* | tar -C /tmp/warp-whl -xf -
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site /tmp/warp-whl/*.whl
    amp_jax bench --backend warp --character "${characters[@]}" --num_envs 1024 4096 8192 --repeats 5 \
      --set train.matmul_precision="$PRECISION" --json "$OUT/bench_warp_$name.json" 2>&1 | tee "$OUT/bench_warp_$name.log"
    # one step against MuJoCo per solver budget, on the GPU's kernels (BENCHMARKS.md, "MuJoCo Warp")
    python3 scripts/warp_fidelity.py step "${characters[0]}" 256 2>&1 | tee "$OUT/warp_fidelity.log"
    ;;
  train)  # train [CASE]: at most 8 files come back from $OUT, so the run itself stays in /tmp
    case_name=${1:-amp_humanoid}
    seconds=${TRAIN_SECONDS:-360}  # + eval, render compiles: within one 10-minute call
    run=/tmp/$case_name
    timeout --signal=TERM "$seconds" python3 -m amp_jax.cli train "$case_name" --out_dir "$run" \
      --set train.eval_every=25 --set train.matmul_precision="$PRECISION" 2>&1 | tail -n 400 > "$OUT/train.log" || true  # SIGTERM saves a checkpoint
    amp_jax eval --model_file "$run" --test_episodes 64 --out "$OUT/eval.json"
    amp_jax plot "$run" --out /tmp/plots
    cp /tmp/plots/learning_curves.png "$run/metrics.jsonl" "$OUT/"
    amp_jax render --model_file "$run" --out "$OUT/policy.gif" --num_episodes 1 --show_reference
    ;;
esac
