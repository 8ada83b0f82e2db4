"""`amp-jax bench`: raw vmapped physics vs the whole AMP training step, per character and batch size.

Method: build the character's case at the given batch; compile (ahead of time, timed) (a) the raw
physics, `steps_per_iter` PD control steps of every environment under jit(scan(vmap(...))) and nothing
else, and (b) the whole training step (rollout, rewards, returns, every critic/actor/discriminator
minibatch epoch, normaliser update). Each runs once more as a warm-up, then `repeats` timed calls; the
median gives the throughput in control (env) steps per second. ratio = (b) / (a): 1 - ratio is the
cost of learning. Memory is XLA's own account of the compiled training step (arguments + outputs +
temporaries - donated aliases), plus the device's peak bytes in use where the backend reports it.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from amp_jax.catalog import case_path
from amp_jax.config import load_config
from amp_jax.learning.train_step import init_train_state, make_train_step
from amp_jax.training.build import build


@dataclasses.dataclass(frozen=True)
class BenchResult:
    character: str
    case: str
    num_envs: int
    backend: str
    device: str
    matmul_precision: str  # train.matmul_precision
    physics_steps_per_s: float  # control steps (each `substeps` physics steps) per second
    physics_compile_s: float
    # The training step (None with physics_only):
    train_steps_per_s: float | None  # env steps per second of the whole training step
    ratio: float | None
    train_compile_s: float | None
    train_step_memory_mb: float | None  # XLA's account of the compiled training step
    peak_device_memory_mb: float | None  # the device allocator's peak (None where not reported)


def median_rate(fn, arg, items: int, repeats: int) -> float:
    """items per second of fn(arg) -> arg: the median of `repeats` timed calls after one warm-up."""
    arg = jax.block_until_ready(fn(arg))  # warm-up: the first call after compiling can be slow
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        arg = jax.block_until_ready(fn(arg))
        times.append(time.perf_counter() - t)
    return items / statistics.median(times)


def compile_timed(jitted, *args):
    """(compiled, seconds) of compiling jitted ahead of time for args."""
    t = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - t


def physics_rollout(env, steps: int, targets):
    """data -> data after `steps` PD control steps toward targets [E, A] of every environment (MuJoCo
    data batched over environments), and nothing else: the raw physics."""
    control = jax.vmap(env.hold_targets)
    return lambda data: jax.lax.scan(lambda d, _: (control(d, targets), None), data, None, length=steps)[0]


def bench_case(case: str, num_envs: int, repeats: int = 5, backend: str = "jax",
               overrides: dict | None = None, physics_only: bool = False) -> BenchResult:
    """Benchmark one case at one batch size (see the module docstring for the method); physics_only
    skips the training step (for tuning the MJX model). The training step compiled here is the one
    `amp-jax train` compiles for the same config, so a persistent compilation cache serves both."""
    cfg = load_config(case_path(case), {"train.num_envs": num_envs, "env.physics.impl": backend, **(overrides or {})})
    character = Path(cfg.env.character).parent.name
    env, learner = build(cfg)
    state = init_train_state(learner, env, cfg.train.seed)
    steps = cfg.agent.steps_per_iter
    targets = jnp.zeros((num_envs, env.action_size))

    physics_fn, physics_compile = compile_timed(jax.jit(physics_rollout(env, steps, targets)), state.env_state.data)
    physics_rate = median_rate(physics_fn, state.env_state.data, steps * num_envs, repeats)
    result = dict(character=character, case=cfg.case, num_envs=num_envs, backend=backend,
                  device=jax.devices()[0].device_kind, matmul_precision=cfg.train.matmul_precision,
                  physics_steps_per_s=round(physics_rate, 1),
                  physics_compile_s=round(physics_compile, 1))
    if physics_only:
        return BenchResult(**result, train_steps_per_s=None, ratio=None, train_compile_s=None,
                           train_step_memory_mb=None, peak_device_memory_mb=None)

    train_fn, train_compile = compile_timed(make_train_step(learner, env), state)
    memory = train_fn.memory_analysis()
    memory_mb = (memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
                 - memory.alias_size_in_bytes) / 2**20
    train_rate = median_rate(lambda s: train_fn(s)[0], state, steps * num_envs, repeats)
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return BenchResult(
        **result, train_steps_per_s=round(train_rate, 1), ratio=round(train_rate / physics_rate, 3),
        train_compile_s=round(train_compile, 1), train_step_memory_mb=round(memory_mb, 1),
        peak_device_memory_mb=None if peak is None else round(peak / 2**20, 1))


def table(results: list[BenchResult]) -> str:
    """A Markdown table of results."""
    head = ("| character | envs | backend | physics (control steps/s) | training step (env steps/s) | ratio "
            "| compile physics / step (s) | step memory (MB) | peak device memory (MB) | matmul precision |")
    rows = [head, "|" + "---|" * 10]
    def fmt(x, spec=",.0f"):
        return "n/a" if x is None else format(x, spec)

    for r in results:
        rows.append(f"| {r.character} | {r.num_envs} | {r.backend} | {r.physics_steps_per_s:,.0f} "
                    f"| {fmt(r.train_steps_per_s)} | {fmt(r.ratio, '.2f')} | {r.physics_compile_s:.1f} / "
                    f"{fmt(r.train_compile_s, '.1f')} | {fmt(r.train_step_memory_mb)} | {fmt(r.peak_device_memory_mb)} "
                    f"| {r.matmul_precision} |")
    return "\n".join(rows)


def to_json(results: list[BenchResult]) -> str:
    return json.dumps([dataclasses.asdict(r) for r in results], indent=1)
