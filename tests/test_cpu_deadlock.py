"""Regression test for a CPU deadlock in jax/jaxlib 0.10.2.

Why this exists: with jax/jaxlib 0.10.2 on the CPU backend, running a jitted, vmapped `mjx.step` of
the humanoid at a moderate batch size could hang forever inside `block_until_ready` (the process
sits idle, no error, no progress). amp-jax runs exactly this computation in its CPU training and
evaluation paths, so a hang there freezes training silently. The repro runs in a subprocess with a
timeout, so a regression fails this test instead of freezing the whole test session; keep it when
upgrading jax, and if it starts timing out, pin jax/jaxlib away from the affected version.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 240
BATCH = 64
CALLS = 5

SCRIPT = textwrap.dedent(f"""
    import jax, jax.numpy as jnp, numpy as np
    from mujoco import mjx
    from amp_jax import kinematics, quat
    from amp_jax.character import load_character

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
        print("call", i, "ok", flush=True)
    assert data.qpos.shape == ({BATCH}, ch.mj_model.nq)
    assert bool(jnp.all(jnp.isfinite(data.qpos)))
    assert abs(float(data.time[0]) - {CALLS} * ch.mj_model.opt.timestep) < 1e-6
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
        f"call {i} ok" for i in range(CALLS)]
    assert "DONE" in proc.stdout
