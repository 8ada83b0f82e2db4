"""The cross-device collectives in the compiled training step split over N devices (CPU host devices
forced by XLA): how many of each kind, and each all-gather's shape and source operation. Data
parallelism should need all-reduces (gradients, statistics) and few all-gathers.

Usage: python scripts/sharded_step_collectives.py [NUM_DEVICES]   (the smoke case, tiny networks)
"""

import os
import re
import sys
from collections import Counter

DEVICES = int(sys.argv[1]) if len(sys.argv) > 1 else 2
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={DEVICES} --xla_backend_optimization_level=0"
os.environ["JAX_PLATFORMS"] = "cpu"

from amp_jax.catalog import CONFIG_DIR
from amp_jax.config import load_config
from amp_jax.learning import sharding
from amp_jax.learning.train_step import init_train_state, make_train_step  # noqa: E402
from amp_jax.training.build import build  # noqa: E402

envs = 4 * DEVICES
cfg = load_config(CONFIG_DIR / "amp_humanoid_smoke.yaml", {
    "train.num_envs": envs, "train.num_devices": DEVICES, "agent.steps_per_iter": 4, "agent.hidden_sizes": [16],
    "agent.disc_buffer_size": 64, "agent.disc_replay_samples": 8})
env, learner = build(cfg)
mesh = sharding.make_mesh(DEVICES, envs)
hlo = make_train_step(learner, env, mesh).lower(init_train_state(learner, env, 0, mesh)).compile().as_text()
kinds = r"(all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter)"
print(dict(Counter(re.findall(rf"= \S+ {kinds}(?:-start)?\(", hlo))))
for line in hlo.splitlines():
    if re.search(r" all-gather(-start)?\(", line):
        shape = line.split("=")[1].split()[0]
        source = re.search(r'op_name="([^"]*)"', line)
        print(f"  all-gather {shape} from {source.group(1)[-80:] if source else '?'}")
