"""Where a character's training step spends its time: one iteration (steps_per_iter control steps of
every environment) timed cumulatively, stage by stage, each compiled ahead of time, warmed up once and
the median of 2 calls reported.

  physics     PD control steps only (as `amp-jax bench`'s raw physics)
  env.step    + observations, rewards, terminations and resets (zero actions)
  rollout     + the policy's actions
  train step  + rewards, returns and every critic/actor/discriminator epoch (the whole iteration)

Usage: python scripts/train_step_stages.py CHARACTER [NUM_ENVS]   (characters: amp_jax.catalog.CHARACTER_CASES)
"""

import sys

import jax
import jax.numpy as jnp

from amp_jax.catalog import case_for_character
from amp_jax.config import load_config
from amp_jax.learning.train_step import init_train_state, make_train_step
from amp_jax.training.bench import compile_timed, median_rate, physics_rollout
from amp_jax.training.build import build


def report(name, fn, arg, items):
    compiled, compile_s = compile_timed(jax.jit(fn), arg)
    rate = median_rate(compiled, arg, items, repeats=2)
    print(f"| {name} | {items / rate:.2f} | {rate:,.0f} | {compile_s:.0f} |", flush=True)


def main(character: str, num_envs: int = 256):
    cfg = load_config(case_for_character(character), {"train.num_envs": num_envs})
    env, learner = build(cfg)
    state = init_train_state(learner, env, cfg.train.seed)
    steps, items = cfg.agent.steps_per_iter, cfg.agent.steps_per_iter * num_envs
    zeros = jnp.zeros((num_envs, env.action_size))
    vstep = jax.vmap(env.step)

    def rollout(s):
        def one(env_state, key):
            mean = learner.policy_mean(s.actor_params, s.obs_norm, env_state.obs)
            action = mean + jnp.exp(learner.log_std) * jax.random.normal(key, mean.shape)
            return vstep(env_state, action)[0], None
        return s.replace(env_state=jax.lax.scan(one, s.env_state, jax.random.split(s.key, steps))[0])

    train_step = make_train_step(learner, env)
    print(f"{character}, {num_envs} envs, {jax.devices()[0].device_kind}\n"
          "| stage | s / iteration | env steps/s | compile (s) |\n|---|---|---|---|")
    report("physics", physics_rollout(env, steps, zeros), state.env_state.data, items)
    report("env.step", lambda e: jax.lax.scan(lambda e, _: (vstep(e, zeros)[0], None), e, None, length=steps)[0],
           state.env_state, items)
    report("rollout", rollout, state, items)
    report("train step", lambda s: train_step(s)[0], state, items)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
