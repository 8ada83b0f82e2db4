"""Turn a validated Config into the environment and learner of a run (all input checks happen here,
before anything is compiled)."""

from __future__ import annotations

from pathlib import Path

from amp_jax import learner_state
from amp_jax.character import load_character
from amp_jax.config import Config, resolve_path
from amp_jax.env import AmpEnv
from amp_jax.errors import InputError
from amp_jax.motion import load_motion_set
from amp_jax.motion_library import build_motion_library
from amp_jax.train_step import Learner, make_learner


def check_backend(impl: str) -> None:
    """MuJoCo Warp needs its package and a CUDA GPU or the CPU; say so before anything is built."""
    if impl != "warp":
        return
    import jax

    try:
        import mujoco_warp  # noqa: F401
    except ImportError:
        raise InputError("env.physics.impl: warp needs MuJoCo Warp: pip install -e '.[warp]' in the amp-jax "
                         "checkout") from None
    if jax.default_backend() not in ("gpu", "cpu"):
        raise InputError(f"env.physics.impl: warp runs on NVIDIA GPUs (and the CPU), jax's backend is "
                         f"{jax.default_backend()}")


def set_matmul_precision(precision: str) -> None:
    """Set JAX's default float32 matmul precision (train.matmul_precision) for everything compiled after.

    "highest" is the default because TF32 matmuls inside MJX's constraint solver (Ampere and Hopper GPUs
    use TF32 at "default") are a known cause of MJX training failures; CPUs compute float32 either way.
    """
    import jax

    jax.config.update("jax_default_matmul_precision", precision)


def build_env(cfg: Config) -> AmpEnv:
    e = cfg.env
    check_backend(e.physics.impl)
    set_matmul_precision(cfg.train.matmul_precision)
    character = load_character(resolve_path(e.character), e.key_bodies, e.contact_bodies, e.physics,
                               e.zero_center_action)
    clips, weights, _ = load_motion_set(resolve_path(e.motion_file), character.layout.num_dof)
    return AmpEnv(character, build_motion_library(character.layout, clips, weights), e)


def build(cfg: Config) -> tuple[AmpEnv, Learner]:
    env = build_env(cfg)
    return env, make_learner(cfg.agent, env, cfg.train.num_envs)


def load_trained(model_file: str | Path) -> tuple[Config, AmpEnv, Learner, int, learner_state.Policy]:
    """The config, environment, learner, iteration and policy (actor, discriminator and their
    normalisers: what test, eval and render need) of a run directory's newest readable checkpoint, a
    learner state or an exported policy .npz (amp_jax.learner_state)."""
    import jax

    cfg = learner_state.read_config(model_file)
    env, learner = build(cfg)
    shapes = learner_state.policy_shapes(learner, env)
    saved = learner_state.read(model_file, shapes)
    policy = jax.device_put(learner_state.fill(shapes, saved, model_file), jax.devices()[0])  # as a train state's
    return cfg, env, learner, saved.iteration, policy
