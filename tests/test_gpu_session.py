"""The GPU session's dry run: scripts/gpu_session.sh on the CPU at tiny sizes, under the GPU image's software.

A GPU machine is lent rarely, for 15 minutes, with no network: its one call must work the first time. So CI
runs the same script here, with what that machine has (Python 3.12, jax 0.11.2, numpy 2.5, flax, optax, orbax,
no MuJoCo: a virtual environment made by .ci/run, named by AMP_JAX_GPU_IMAGE) and what the call carries (the
working tree and the wheels of `gpu_session.sh fetch`, installed by the script as it installs them there). A
missing wheel or dependency, an API break, a file too many or too big shows up here, never on the GPU.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
GPU_IMAGE = os.environ.get("AMP_JAX_GPU_IMAGE")  # bin/ of the emulated image's environment
MIB = 2**20
# The device tool's limits (its README): what travels, and what comes back from $OUT.
CARRY_LIMIT = 64 * MIB
FILES_BACK, FILE_LIMIT = 8, 16 * MIB
EXPECTED = {"session.log", "bench.json", "metrics.jsonl", "eval.json", "policy.gif", "learner/learner_state.yaml",
            "learner/part-000.npz"}  # and learner/part-001.npz where the networks are over 15 MiB (G1, SMPL)
LARGEST_LEARNER = 17.3 * MIB  # networks and normalisers of G1 and SMPL (export --networks_only)


def carried_files() -> list[Path]:
    """What a device call carries: tracked and untracked-not-ignored files, plus the wheels (.whl)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    files = [Path(f) for f in listed if f and (REPO_ROOT / f).is_file()]
    return files + sorted(p.relative_to(REPO_ROOT) for p in (REPO_ROOT / ".whl").glob("*.whl"))


@pytest.mark.skipif(not GPU_IMAGE, reason="AMP_JAX_GPU_IMAGE is not set (.ci/run makes the GPU image's environment)")
def test_the_gpu_session_runs_under_the_gpu_images_software_and_returns_what_fits(tmp_path):
    files = carried_files()
    assert any(f.parts[0] == ".whl" for f in files), "no wheels: run `bash scripts/gpu_session.sh fetch` first"
    size = sum((REPO_ROOT / f).stat().st_size for f in files)
    # The next session carries the learner state this one brings back (models/README.md: one at a time).
    assert size + LARGEST_LEARNER <= CARRY_LIMIT, f"the carried tree is {size / MIB:.1f} MiB"
    learners = sorted(p.name for p in (REPO_ROOT / "models").glob("*.learner"))
    assert len(learners) <= 1, f"{learners}: a case whose bar passed keeps its policy, not its learner state"
    repo = tmp_path / "repo"
    for f in files:
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / f, repo / f)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JAX_", "AMP_JAX"))}
    env.update(PATH=f"{GPU_IMAGE}{os.pathsep}{os.environ['PATH']}", OUT=str(out), JAX_PLATFORMS="cpu",
               AMP_GPU_DRY_RUN="1", AMP_GPU_NUM_ENVS="8", AMP_GPU_BUDGET_S="330", AMP_GPU_RESERVE_S="170",
               AMP_GPU_BENCH_REPEATS="1", AMP_GPU_EVAL_EPISODES="4", AMP_GPU_GIF_SECONDS="1",
               AMP_JAX_CACHE=str(tmp_path / "xla"),  # cold, as on a fresh machine
               XLA_FLAGS="--xla_backend_optimization_level=0")
    proc = subprocess.run(["bash", "scripts/gpu_session.sh"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=900)
    log = (out / "session.log").read_text() if (out / "session.log").is_file() else proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "FAILED" not in log, log[-6000:]

    back = [p for p in out.rglob("*") if p.is_file()]
    names = {p.relative_to(out).as_posix() for p in back}
    assert EXPECTED <= names <= EXPECTED | {"learner/part-001.npz"}, log[-3000:]
    assert len(back) <= FILES_BACK
    for p in back:
        assert p.stat().st_size <= FILE_LIMIT, (p.name, p.stat().st_size)
        assert all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in p.relative_to(out).parts)
        assert len(p.relative_to(out).parts) <= 3  # $OUT/a/b/file comes back, deeper does not
    assert "case amp_humanoid, 8 environments" in log  # the first case of models/queue.txt

    bench = json.loads((out / "bench.json").read_text())
    assert bench[0]["case"] == "amp_humanoid" and bench[0]["num_envs"] == 8 and bench[0]["train_steps_per_s"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and rows[-1]["samples"] == rows[-1]["iteration"] * 8 * 32
    report = json.loads((out / "eval.json").read_text())
    assert report["case"] == "amp_humanoid" and report["iteration"] == rows[-1]["iteration"]
    assert "passed" in report["bar"] and report["kick"] is not None
    # The learner state continues training here (what the next GPU session does with it).
    from amp_jax.training import learner_state

    assert learner_state.kind_of(out / "learner") == "learner"
    assert learner_state.read_config(out / "learner").case == "amp_humanoid"
    assert (out / "policy.gif").read_bytes()[:6] in (b"GIF87a", b"GIF89a")
