"""Watchdog for a CPU deadlock of jax/jaxlib 0.10.x, the reason for the jax >= 0.11.2 pin.

Why this exists: with jax/jaxlib 0.10.2 on the CPU backend, a jitted, vmapped `mjx.step` of the humanoid at
batch >= 64 could hang forever inside `block_until_ready` (the process sits idle, no error, no progress): 12
hangs in about 1,000 steps on our 2-core machines, so a 5-step check caught it only 1 run in 9. 0.11.2 (also
the GPU image's version) did not hang in 20,000 steps at batch 64 and 256. amp-jax runs exactly this
computation in its CPU training and evaluation paths, so a hang there freezes training silently. This test
runs a few hundred steps in a subprocess with a timeout, so a regression fails it instead of freezing the
whole test session; keep it when changing jax, and pin away from a version that makes it time out.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 240
BATCH = 64
CALLS = 300  # at 0.10.2's rate of about one hang per 85 steps, 300 steps hang 97 runs in 100

SCRIPT = textwrap.dedent(f"""
    import jax, jax.numpy as jnp, numpy as np
    from mujoco import mjx
    from amp_jax import quat
    from amp_jax.characters import kinematics
    from amp_jax.characters.character import load_character

    assert jax.default_backend() == "cpu", jax.default_backend()
    ch = load_character("assets/humanoid/humanoid.xml",
                        ["head", "right_hand", "left_hand", "right_foot", "left_foot"],
                        ["right_foot", "left_foot"])
    layout = ch.layout
    model = mjx.put_model(ch.mj_model)
    rng = np.random.default_rng(0)
    dof = jnp.asarray(rng.uniform(-0.3, 0.3, ({BATCH}, layout.num_dof)), jnp.float32)
    root = jnp.tile(jnp.array([0.0, 0.0, 0.95]), ({BATCH}, 1))
    qpos = kinematics.to_qpos(layout, root, quat.identity(({BATCH},)), kinematics.dof_to_joint_rot(layout, dof))
    d0 = mjx.make_data(model)
    data = jax.vmap(lambda q: d0.replace(qpos=q.astype(d0.qpos.dtype)))(qpos)

    step = jax.jit(jax.vmap(mjx.step, in_axes=(None, 0)))
    for i in range({CALLS}):
        data = step(model, data)
        jax.block_until_ready(data)
        if (i + 1) % 50 == 0:
            print("call", i + 1, "ok", flush=True)
    assert data.qpos.shape == ({BATCH}, ch.mj_model.nq)
    assert bool(jnp.all(jnp.isfinite(data.qpos)))
    assert abs(float(data.time[0]) - {CALLS} * ch.mj_model.opt.timestep) < 1e-4  # float32 sums
    print("DONE", flush=True)
""")


def test_jit_vmap_mjx_step_does_not_deadlock_on_cpu():
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError(f"jit(vmap(mjx.step)) at batch {BATCH} hung for {TIMEOUT_S} s (CPU deadlock); "
                             f"output so far:\n{out}") from None
    assert proc.returncode == 0, f"subprocess failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert [line for line in proc.stdout.splitlines() if line.startswith("call ")] == [
        f"call {i} ok" for i in range(50, CALLS + 1, 50)]
    assert "DONE" in proc.stdout
