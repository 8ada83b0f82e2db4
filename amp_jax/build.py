"""Turn a validated Config into the environment and learner of a run (all input checks happen here,
before anything is compiled)."""

from __future__ import annotations

from amp_jax.character import load_character
from amp_jax.config import Config, resolve_path
from amp_jax.env import AmpEnv
from amp_jax.motion import load_motion_set
from amp_jax.motion_library import build_motion_library
from amp_jax.train_step import Learner, make_learner


def build_env(cfg: Config) -> AmpEnv:
    e = cfg.env
    character = load_character(resolve_path(e.character), e.key_bodies, e.contact_bodies, e.physics,
                               e.zero_center_action)
    clips, weights, _ = load_motion_set(resolve_path(e.motion_file), character.layout.num_dof)
    return AmpEnv(character, build_motion_library(character.layout, clips, weights), e)


def build(cfg: Config) -> tuple[AmpEnv, Learner]:
    env = build_env(cfg)
    return env, make_learner(cfg.agent, env, cfg.train.num_envs)
