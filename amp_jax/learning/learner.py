"""The learner's static parts (networks, optimisers, hyper-parameters) and what acts: the Policy, the
fields of a TrainState that deterministic rollouts need."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax
from flax import struct

from amp_jax.config import AgentConfig, OptimizerConfig
from amp_jax.envs.contract import Env
from amp_jax.errors import InputError
from amp_jax.learning import discriminator, networks, normalizer
from amp_jax.learning.normalizer import Normalizer


@dataclasses.dataclass(frozen=True, eq=False)
class Learner:
    """The static parts of the AMP learner: networks, optimisers and hyper-parameters."""

    cfg: AgentConfig
    num_envs: int
    actor: networks.MLP
    critic: networks.MLP
    disc: networks.MLP
    actor_tx: optax.GradientTransformation
    critic_tx: optax.GradientTransformation
    disc_tx: optax.GradientTransformation
    log_std: jax.Array

    @property
    def batch_size(self) -> int:
        return self.cfg.steps_per_iter * self.num_envs

    def policy_mean(self, params, norm: Normalizer, obs):
        return self.actor.apply(params, normalizer.normalize(norm, obs))

    def value(self, params, norm: Normalizer, obs):
        return self.critic.apply(params, normalizer.normalize(norm, obs))[..., 0]

    def disc_logits(self, params, norm: Normalizer, disc_obs):
        return self.disc.apply(params, normalizer.normalize(norm, disc_obs))[..., 0]

    def style_reward(self, params, norm: Normalizer, disc_obs):
        """The discriminator's style reward [...] of discriminator observations [..., D] (disc_loss's form, disc_reward_scale)."""
        return discriminator.style_reward(self.disc_logits(params, norm, disc_obs), self.cfg.disc_loss,
                                          self.cfg.disc_reward_scale)


def make_optimizer(cfg: OptimizerConfig) -> optax.GradientTransformation:
    """SGD with momentum and coupled weight decay (torch.optim.SGD), or AdamW."""
    if cfg.type == "sgd":
        return optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.sgd(cfg.learning_rate, momentum=cfg.momentum))
    return optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay)


def make_learner(cfg: AgentConfig, env: Env, num_envs: int) -> Learner:
    n = cfg.steps_per_iter * num_envs
    for name in ("actor", "critic", "disc"):
        mb = getattr(cfg, f"{name}_batch_size") * num_envs
        if mb > n:
            raise InputError(f"agent.{name}_batch_size: {name}_batch_size * num_envs = {mb} exceeds the {n} samples "
                             "of an iteration (steps_per_iter * num_envs)")
    return Learner(
        cfg=cfg,
        num_envs=num_envs,
        actor=networks.actor(cfg.hidden_sizes, env.action_size),
        critic=networks.critic(cfg.hidden_sizes),
        disc=networks.discriminator(cfg.hidden_sizes),
        actor_tx=make_optimizer(cfg.actor_optimizer),
        critic_tx=make_optimizer(cfg.critic_optimizer),
        disc_tx=make_optimizer(cfg.disc_optimizer),
        log_std=jnp.full(env.action_size, math.log(cfg.action_std), jnp.float32),
    )


@struct.dataclass
class Policy:
    """What deterministic rollouts need (the same fields as a TrainState's): the actor and its observation
    normaliser for actions, the discriminator and its normaliser for the style reward."""

    actor_params: dict
    obs_norm: Normalizer
    disc_params: dict
    disc_norm: Normalizer


def policy_of(state) -> Policy:
    """The Policy of a TrainState (or a Policy): rollouts compiled for it serve both."""
    return Policy(state.actor_params, state.obs_norm, state.disc_params, state.disc_norm)


def policy_shapes(learner, env) -> Policy:
    """A Policy of ShapeDtypeStructs for a learner and environment (nothing is computed)."""
    def init():
        key = jax.random.PRNGKey(0)
        return Policy(learner.actor.init(key, jnp.zeros((1, env.obs_size))), normalizer.init(env.obs_size),
                      learner.disc.init(key, jnp.zeros((1, env.disc_obs_size))), normalizer.init(env.disc_obs_size))

    return jax.eval_shape(init)
