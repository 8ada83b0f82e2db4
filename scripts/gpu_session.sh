#!/usr/bin/env bash
# Everything a lent GPU machine should measure, in one script (BENCHMARKS.md records what it prints).
#
#   bash scripts/gpu_session.sh bench    # bench table: six characters x 1024/4096/8192 envs (JAX backend)
#   bash scripts/gpu_session.sh warp     # the same on MuJoCo Warp, if its wheels were carried
#   bash scripts/gpu_session.sh train    # amp_humanoid for TRAIN_SECONDS, then eval and a video
#
# The device image has CUDA jax, flax, optax and orbax but no MuJoCo: carry the cp312 wheels of mujoco,
# mujoco-mjx (and mujoco-warp, warp-lang for `warp`), glfw, pyopengl and trimesh in .whl/ (see the device
# tool's README). Outputs go to $OUT (or output/gpu) as JSON, logs and videos.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-output/gpu}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export MUJOCO_GL=egl XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_DEFAULT_MATMUL_PRECISION=highest
export AMP_JAX_CACHE=${AMP_JAX_CACHE:-/tmp/amp-jax-xla}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import jax, mujoco; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)" | tee -a "$OUT/gpu.txt"
amp_jax() { python3 -m amp_jax.cli "$@"; }

case "${1:-bench}" in
  bench)
    amp_jax bench --num_envs 1024 4096 8192 --repeats 5 --json "$OUT/bench_jax.json" 2>&1 | tee "$OUT/bench_jax.log"
    ;;
  warp)
    amp_jax bench --backend warp --num_envs 1024 4096 8192 --repeats 5 --json "$OUT/bench_warp.json" 2>&1 | tee "$OUT/bench_warp.log"
    ;;
  train)
    seconds=${TRAIN_SECONDS:-900}
    run="$OUT/amp_humanoid"
    timeout --signal=TERM "$seconds" python3 -m amp_jax.cli train amp_humanoid --out_dir "$run" \
      --set train.eval_every=25 2>&1 | tail -n 400 > "$OUT/train.log" || true  # SIGTERM saves a checkpoint
    amp_jax eval --model_file "$run" --test_episodes 64 --out "$OUT/eval.json"
    amp_jax plot "$run" --out "$OUT"
    amp_jax render --model_file "$run" --out "$OUT/policy.mp4" --num_episodes 2 --show_reference
    ;;
  *)
    echo "usage: $0 bench|warp|train" >&2
    exit 2
    ;;
esac
