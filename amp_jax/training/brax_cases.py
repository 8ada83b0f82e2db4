"""Every case as a Brax environment by name, and Brax's PPO on a case's task reward as a baseline for AMP.

After `import amp_jax.training.brax_cases`, `brax.envs.get_environment("amp_location_humanoid")` builds the
case as an amp_jax.envs.brax_env.BraxEnv (keyword arguments are config overrides by dotted key, e.g.
**{"env.episode_length": 5.0}); Brax's wrappers (brax.envs.wrappers.training.wrap) and training code run it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from brax import envs

from amp_jax.catalog import case_names, case_path
from amp_jax.config import load_config
from amp_jax.envs.brax_env import BraxEnv
from amp_jax.training.build import build_env


def make_brax_env(case: str, **overrides) -> BraxEnv:
    """The case (a name or a config YAML) as a Brax environment."""
    return BraxEnv(build_env(load_config(case_path(case), overrides)))


def register_cases() -> list[str]:
    """Register every case of the catalog with Brax; returns their names."""
    names = case_names()
    for name in names:
        envs.register_environment(name, functools.partial(make_brax_env, name))
    return names


CASES = register_cases()


def _device_put_replicated(x, devices):
    """jax.device_put_replicated (removed in jax 0.11, still called by Brax 0.14's PPO): x stacked once per
    device; Brax's pmap places the copies."""
    return jax.tree.map(lambda a: jnp.stack([jnp.asarray(a)] * len(devices)), x)


def train_ppo_baseline(case: str, num_timesteps: int, overrides: dict | None = None, **ppo_kwargs):
    """Brax's PPO (brax.training.agents.ppo.train) on the case's task reward alone, without a discriminator:
    what AMP's task result is compared with. Episodes last the case's env.episode_length; ppo_kwargs go to
    Brax's train. Returns its (make_inference_fn, params, metrics)."""
    from brax.training.agents.ppo import train as ppo

    try:
        jax.device_put_replicated  # noqa: B018
    except AttributeError:
        jax.device_put_replicated = _device_put_replicated
    env = make_brax_env(case, **(overrides or {}))
    return ppo.train(environment=env, num_timesteps=num_timesteps, episode_length=env.amp.episode_steps, **ppo_kwargs)
