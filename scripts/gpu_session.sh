#!/usr/bin/env bash
# The GPU session: ONE call on a lent GPU machine turns its minutes into evidence (BENCHMARKS.md, "GPU").
#
# Here, before the call (PyPI and Debian are reachable here, not there):
#   bash scripts/gpu_session.sh fetch      # .whl/: MuJoCo, MJX and the rest the GPU image lacks (~20 MiB)
#   bash scripts/gpu_session.sh fetch-gl   # .gl/: glvnd's EGL/OpenGL loaders (Debian .debs, ~0.4 MiB)
# There (the device tool's run, carrying .whl and .gl, timeout_s 600):
#   bash scripts/gpu_session.sh [CASE]
#
# What the call does, within AMP_GPU_BUDGET_S seconds (default 530) of its start:
#   1. installs the carried wheels, unpacks the EGL loaders, makes a MuJoCo EGL context (where none can be made
#      it goes on without rendering, rather than ending with nothing);
#   2. picks the case: CASE, else the first case of models/queue.txt that has not reached its bar (no
#      models/CASE.eval.json whose bar passed); a committed learner state models/CASE.learner/ is continued;
#   3. `amp-jax bench --case CASE` at AMP_GPU_NUM_ENVS (4096) environments: raw physics and the whole training
#      step, one compile each; the persistent compilation cache hands the compiled step on to training;
#   4. trains the case until a deadline that leaves AMP_GPU_RESERVE_S (150) seconds for what follows, in a
#      fresh run directory (a second call on a warm machine never meets the first call's checkpoints);
#   5. saves the learner state (networks and normalisers; the optimisers restart next time), evaluates (the bar,
#      within the time left), renders a GIF of the policy beside the reference ghost (480x360, far under the
#      16 MiB a file may have).
# It leaves at most 8 files in $OUT (the most that comes back): session.log (the bench's log too), bench.json,
# metrics.jsonl, eval.json, policy.gif and learner/ (learner_state.yaml and one or two .npz parts of at most
# 15 MiB: 12.7 MiB for the full-size humanoid, 17.3 for G1 and SMPL). The exported policy and the learning-curve PNG are made from
# these here, at no GPU cost: `amp-jax export OUT/learner --out models/CASE.npz`, `amp-jax plot OUT --out DIR`. A stage that
# fails is logged and the next one still runs. CI runs this same script on the CPU at tiny sizes under the GPU image's software
# (tests/test_gpu_session.py), so that the first GPU call works.
#
# Settings (environment): AMP_GPU_NUM_ENVS, AMP_GPU_BUDGET_S, AMP_GPU_RESERVE_S, AMP_GPU_BENCH_REPEATS (5),
# AMP_GPU_EVAL_EPISODES (64), AMP_GPU_GIF_SECONDS (8), AMP_GPU_SET (extra `--set` overrides, space separated),
# AMP_GPU_PRECISION (train.matmul_precision for the bench and the run: highest, the default, or default=TF32).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)

PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform any"
# The wheels the GPU image lacks (Python 3.12, x86-64), without dependencies. mujoco-studio (12.8 MB) is not
# imported by training and stays behind.
WHEELS="mujoco==4.0.0 mujoco-core==4.0.0 mujoco-mjx==3.17.0 glfw==2.11.0 PyOpenGL==3.1.10 trimesh==5.2.0
  tensorboardX==2.6.5"
GL_DEBS="libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"

case "${1:-}" in
  fetch)
    rm -rf .whl && mkdir -p .whl
    # shellcheck disable=SC2086
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      $PLATFORMS -d .whl $WHEELS || exit 1
    du -sh .whl
    exit 0
    ;;
  fetch-gl)
    rm -rf .gl && mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -qq && (cd .gl && apt-get $o download $GL_DEBS) || exit 1
    du -sh .gl
    exit 0
    ;;
  -*|help)
    sed -n '2,30p' "$0"
    exit 2
    ;;
esac

OUT=${OUT:-output/gpu}
NUM_ENVS=${AMP_GPU_NUM_ENVS:-4096}
BUDGET=${AMP_GPU_BUDGET_S:-530}
RESERVE=${AMP_GPU_RESERVE_S:-150}
REPEATS=${AMP_GPU_BENCH_REPEATS:-5}
EVAL_EPISODES=${AMP_GPU_EVAL_EPISODES:-64}
GIF_SECONDS=${AMP_GPU_GIF_SECONDS:-8}
PRECISION=${AMP_GPU_PRECISION:-highest}
mkdir -p "$OUT"
LOG="$OUT/session.log"
: > "$LOG"
log() { echo "[gpu_session +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
run() { "$@" >> "$LOG" 2>&1; local rc=$?; [ $rc -eq 0 ] || log "FAILED (exit $rc): $*"; return $rc; }

# 1. Software. The carried wheels go to /tmp/site exactly as the device README says.
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >> "$LOG" 2>&1 || log "FAILED: installing the carried wheels"
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
if [ -d .gl ] && [ "$(id -u)" = 0 ] && [ -z "${AMP_GPU_DRY_RUN:-}" ]; then  # the device README's recipe
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] &&
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export MUJOCO_GL=egl XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export AMP_JAX_CACHE=${AMP_JAX_CACHE:-/tmp/amp-jax-xla}
RENDER=1
if ! python3 -c "import mujoco; c = mujoco.GLContext(16, 16); c.make_current(); c.free()" >> "$LOG" 2>&1; then
  log "no MuJoCo EGL context can be made: going on without rendering"
  RENDER=0
fi
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi") >> "$LOG"
if ! run python3 -c "import jax, mujoco, amp_jax.cli; print('python', __import__('sys').version.split()[0], 'jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)"; then
  log "the software does not import: nothing can be measured"
  exit 1
fi
amp_jax() { run python3 -m amp_jax.cli "$@"; }

# 2. The case.
CASE=${1:-$(python3 - <<'EOF'
import json, pathlib
for line in pathlib.Path("models/queue.txt").read_text().splitlines():
    case = line.split("#")[0].strip()
    report = pathlib.Path(f"models/{case}.eval.json")
    if case and not (report.is_file() and json.loads(report.read_text()).get("bar", {}).get("passed")):
        print(case)
        break
EOF
)}
[ -n "$CASE" ] || { log "every case of models/queue.txt has reached its bar"; exit 0; }
SETS=(--set "train.matmul_precision=$PRECISION")
for s in ${AMP_GPU_SET:-}; do SETS+=(--set "$s"); done
INIT=()
[ -d "models/$CASE.learner" ] && INIT=(--init_from "models/$CASE.learner")
log "case $CASE, $NUM_ENVS environments, precision $PRECISION, ${INIT[*]:-a fresh learner}"

# 3. Bench: the raw physics and the whole training step of the case at NUM_ENVS environments.
amp_jax bench --case "$CASE" --num_envs "$NUM_ENVS" --repeats "$REPEATS" --json "$OUT/bench.json" "${SETS[@]}"

# 4. Train until the deadline, in a fresh run directory.
RUN=$(mktemp -d /tmp/amp-jax-run.XXXXXX)/"$CASE"
limit=$(( $(left) - RESERVE ))
if [ "$limit" -gt 10 ]; then
  log "training for at most $limit s in $RUN"
  amp_jax train "$CASE" --out_dir "$RUN" --num_envs "$NUM_ENVS" --time_limit "$limit" "${INIT[@]}" "${SETS[@]}" \
    --set train.test_episodes=0 --set train.video_every=0 --set train.eval_every=20
else
  log "no time left to train ($limit s)"
fi
[ -f "$RUN/metrics.jsonl" ] && cp "$RUN/metrics.jsonl" "$OUT/"

# 5. What the next session continues from, and what a user wants to see.
if [ -d "$RUN/checkpoints" ]; then
  amp_jax export "$RUN" --format learner --networks_only --out "$OUT/learner"
  if [ "$(left)" -gt 30 ]; then  # each stage ends within the budget, so that the call returns what it made
    timeout "$(( $(left) - 10 ))" python3 -m amp_jax.cli eval --model_file "$RUN" --test_episodes "$EVAL_EPISODES" \
      --out "$RUN/eval/report.json" >> "$LOG" 2>&1 &&
      cp "$RUN/eval/report.json" "$OUT/eval.json" && cat "$RUN/eval/report.md" >> "$LOG" || log "FAILED: eval"
  else
    log "no time left to evaluate"
  fi
  if [ "$RENDER" = 1 ] && [ "$(left)" -gt 20 ]; then
    timeout "$(( $(left) - 5 ))" python3 -m amp_jax.cli render --model_file "$RUN" --out "$OUT/policy.gif" \
      --seconds "$GIF_SECONDS" --show_reference --width 480 --height 360 >> "$LOG" 2>&1 || log "FAILED: render"
  fi
fi
if [ "$(find "$OUT" -type f | wc -l)" -gt 8 ] && [ -f "$OUT/bench.json" ]; then  # 8 files come back, no more
  { echo "bench.json:"; cat "$OUT/bench.json"; } >> "$LOG" && rm "$OUT/bench.json"
fi
log "done: $(cd "$OUT" && find . -type f | sort | tr '\n' ' ')"
