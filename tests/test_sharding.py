"""Data parallelism: the training step split over two (forced host) CPU devices learns the same as on one."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from amp_jax.errors import InputError

# Runs in a fresh interpreter: XLA's host device count must be set before jax starts.
SCRIPT = r"""
import json, sys, tempfile
import jax, numpy as np
from amp_jax.training.build import build
from amp_jax.catalog import CONFIG_DIR
from amp_jax.config import load_config
from amp_jax.learning.sharding import make_mesh
from amp_jax.learning.train_step import init_train_state, make_train_step
from amp_jax.training.trainer import train

assert len(jax.devices()) == 2, jax.devices()
cfg = load_config(CONFIG_DIR / "amp_humanoid.yaml", {
    "train.num_envs": 4, "agent.steps_per_iter": 4, "agent.hidden_sizes": [16],
    "agent.disc_buffer_size": 32, "agent.disc_replay_samples": 4})
env, learner = build(cfg)


def refusal(fn):
    try:
        fn()
        return "accepted"
    except Exception as e:
        return str(e)


warp = load_config(CONFIG_DIR / "amp_humanoid.yaml", {"env.physics.impl": "warp", "train.num_devices": 2})
out = {"uneven": refusal(lambda: make_mesh(2, 5)), "warp": refusal(lambda: train(warp, tempfile.mkdtemp()))}
for devices in (1, 2):
    mesh = make_mesh(devices, cfg.train.num_envs)
    state = init_train_state(learner, env, cfg.train.seed, mesh)
    step = make_train_step(learner, env, mesh)
    rows = []
    for _ in range(3):
        state, metrics = step(state)
        rows.append({k: float(v) for k, v in metrics.items()})
    shards = {str(s.device) for s in state.env_state.data.qpos.addressable_shards}
    out[devices] = {"metrics": rows, "shards": len(shards),
                    "actor": [np.asarray(x).tolist() for x in jax.tree.leaves(state.actor_params)],
                    "disc": [np.asarray(x).tolist() for x in jax.tree.leaves(state.disc_params)]}
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def one_vs_two_devices():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def test_environments_are_split_over_two_devices(one_vs_two_devices):
    assert one_vs_two_devices["1"]["shards"] == 1
    assert one_vs_two_devices["2"]["shards"] == 2


def test_two_devices_learn_the_same_as_one(one_vs_two_devices):
    one, two = one_vs_two_devices["1"], one_vs_two_devices["2"]
    for r1, r2 in zip(one["metrics"], two["metrics"]):
        assert r1.keys() == r2.keys()
        for k in r1:
            np.testing.assert_allclose(r2[k], r1[k], rtol=1e-3, atol=1e-4, err_msg=k)
    for net in ("actor", "disc"):
        for a, b in zip(one[net], two[net]):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-3, atol=1e-5)


def test_mesh_refuses_uneven_splits_and_missing_devices(one_vs_two_devices):
    from amp_jax.learning.sharding import make_mesh

    assert "5 environments do not split evenly over 2 devices" in one_vs_two_devices["uneven"]
    assert "MuJoCo Warp (env.physics.impl: warp) runs on one device" in one_vs_two_devices["warp"]
    assert make_mesh(1, 6) is None
    with pytest.raises(InputError, match="visible"):
        make_mesh(64, 64)
