"""Throughput of the whole AMP training step vs the raw vmapped physics step on the same batch.

    python benchmarks/train_step_throughput.py --config configs/amp_humanoid.yaml --num_envs 256

Prints JSON: compile seconds, env steps/s of the training step (median of repeats after a warm-up),
control steps/s of jit(vmap(env control step)) alone, and their ratio (1 - ratio = learning overhead).
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

from amp_jax import pd
from amp_jax.build import build
from amp_jax.config import load_config
from amp_jax.train_step import init_train_state, make_train_step


def _median_rate(fn, arg, items: int, repeats: int):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        arg = fn(arg)
        jax.block_until_ready(arg)
        times.append(time.perf_counter() - t)
    return items / statistics.median(times), arg


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/amp_humanoid.yaml")
    p.add_argument("--num_envs", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    a = p.parse_args()
    overrides = {"train.num_envs": a.num_envs}
    for o in a.overrides:
        k, v = o.split("=", 1)
        overrides[k] = json.loads(v)
    cfg = load_config(a.config, overrides)
    env, learner = build(cfg)
    state = init_train_state(learner, env, cfg.train.seed)

    # Raw physics: the PD control step (all substeps) of every env, steps_per_iter times, nothing else.
    targets = jnp.zeros((a.num_envs, env.action_size))
    T = cfg.agent.steps_per_iter

    def physics(data):
        def body(d, _):
            return jax.vmap(lambda di, ti: pd.control_step(env.model, env.layout, di, ti, env.substeps))(d, targets), None
        return jax.lax.scan(body, data, None, length=T)[0]

    physics = jax.jit(physics)
    data = state.env_state.data
    t = time.perf_counter(); data = physics(data); jax.block_until_ready(data); physics_compile = time.perf_counter() - t
    physics_rate, _ = _median_rate(physics, data, T * a.num_envs, a.repeats)

    step = make_train_step(learner, env)
    t = time.perf_counter(); state, m = step(state); jax.block_until_ready(m); step_compile = time.perf_counter() - t
    step_rate, _ = _median_rate(lambda s: step(s)[0], state, T * a.num_envs, a.repeats)
    print(json.dumps({
        "device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(), "num_envs": a.num_envs,
        "physics_control_steps_per_s": round(physics_rate, 1), "train_env_steps_per_s": round(step_rate, 1),
        "ratio": round(step_rate / physics_rate, 3), "physics_compile_s": round(physics_compile, 1),
        "train_step_compile_s": round(step_compile, 1),
    }))


if __name__ == "__main__":
    main()
