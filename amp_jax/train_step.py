"""ONE compiled AMP training iteration over ONE TrainState pytree.

train_step(state) -> (state, metrics) does, in order (MimicKit's update order):
  1. rollout: lax.scan over steps_per_iter, vmap over environments, stochastic actions;
  2. style reward from the discriminator as it was before this iteration, mixed with the task reward;
  3. TD(lambda) returns and normalised advantages from the critic as it was;
  4. push the agent's discriminator observations into the replay buffer; draw demo windows;
  5. critic epochs, then actor epochs, then discriminator epochs (minibatch scans);
  6. merge this iteration's samples into the observation normalisers (until normalizer_samples).

The environment is anything that fulfils amp_jax.env_contract.Env (amp_jax.env.AmpEnv does).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from amp_jax import discriminator, networks, normalizer, ppo, replay_buffer, sharding
from amp_jax.config import AgentConfig, OptimizerConfig
from amp_jax.env_contract import FAIL, NULL, Env, EnvState
from amp_jax.errors import InputError
from amp_jax.normalizer import Normalizer
from amp_jax.replay_buffer import ReplayBuffer


@struct.dataclass
class TrainState:
    actor_params: dict
    critic_params: dict
    disc_params: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    disc_opt: optax.OptState
    obs_norm: Normalizer
    disc_norm: Normalizer
    replay: ReplayBuffer
    env_state: EnvState  # batched over environments
    episode_return: jax.Array  # [E] task return of the running episodes
    episode_length: jax.Array  # [E]
    key: jax.Array
    iteration: jax.Array  # completed iterations
    samples: jax.Array  # float64-safe count of env steps (float32 is exact up to 2^24 * batch)


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


def init_train_state(learner: Learner, env: Env, seed: int, mesh: Mesh | None = None) -> TrainState:
    """A fresh TrainState (placed over the mesh's devices when one is given)."""
    key = jax.random.PRNGKey(seed)
    key, k_actor, k_critic, k_disc, k_env = jax.random.split(key, 5)
    obs = jnp.zeros((1, env.obs_size))
    disc_obs = jnp.zeros((1, env.disc_obs_size))
    actor_params = learner.actor.init(k_actor, obs)
    critic_params = learner.critic.init(k_critic, obs)
    disc_params = learner.disc.init(k_disc, disc_obs)
    env_state = jax.jit(env.reset_batch)(jax.random.split(k_env, learner.num_envs))
    state = TrainState(
        actor_params=actor_params,
        critic_params=critic_params,
        disc_params=disc_params,
        actor_opt=learner.actor_tx.init(actor_params),
        critic_opt=learner.critic_tx.init(critic_params),
        disc_opt=learner.disc_tx.init(disc_params),
        obs_norm=normalizer.init(env.obs_size),
        disc_norm=normalizer.init(env.disc_obs_size),
        replay=replay_buffer.init(learner.cfg.disc_buffer_size, env.disc_obs_size),
        env_state=env_state,
        episode_return=jnp.zeros(learner.num_envs),
        episode_length=jnp.zeros(learner.num_envs, jnp.int32),
        key=key,
        iteration=jnp.int32(0),
        samples=jnp.float32(0.0),
    )
    return state if mesh is None else jax.device_put(state, sharding.state_shardings(TrainState, mesh))


def _minibatch_epochs(key, data, minibatch_steps: int, epochs: int, update, carry):
    """Run `update(carry, batch) -> (carry, stats)` over `epochs` passes through data [T, E, ...]; mean stats.

    Each pass shuffles every environment's T samples independently and cuts them into T // minibatch_steps
    minibatches of minibatch_steps samples from every environment (minibatch_steps * E samples): a shuffle
    stratified by environment, so that with environments split over devices each device's part of a
    minibatch is already local.
    """
    T, E = jax.tree.leaves(data)[0].shape[:2]
    num_mb = T // minibatch_steps

    def take(x, idx):  # x [T, E, ...], idx [b, E] -> [E * b, ...], each environment's rows together
        return x[idx, jnp.arange(E)].swapaxes(0, 1).reshape(-1, *x.shape[2:])

    def epoch(c, k):
        perm = jax.vmap(lambda ke: jax.random.permutation(ke, T))(jax.random.split(k, E))  # [E, T]
        idx = perm[:, : num_mb * minibatch_steps].reshape(E, num_mb, minibatch_steps).transpose(1, 2, 0)
        return jax.lax.scan(lambda c2, i: update(c2, jax.tree.map(lambda x: take(x, i), data)), c, idx)

    carry, stats = jax.lax.scan(epoch, carry, jax.random.split(key, epochs))
    return carry, jax.tree.map(jnp.mean, stats)


def make_train_step(learner: Learner, env: Env, mesh: Mesh | None = None):
    """The jitted training iteration: train_step(TrainState) -> (TrainState, metrics).

    With a mesh (amp_jax.sharding), the environments are split over its devices and the state must be
    placed over them (init_train_state with the same mesh).
    """
    cfg = learner.cfg

    def split_envs(x, env_axis: int):
        """Keep x's environment (or sample) axis split over the mesh (a no-op on one device)."""
        if mesh is None:
            return x
        spec = PartitionSpec(*([None] * env_axis), sharding.ENVS)
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
    E, T = learner.num_envs, cfg.steps_per_iter
    N = E * T
    vstep = jax.vmap(env.step)

    def rollout(state: TrainState, key):
        def one_step(carry, k):
            env_state, ep_ret, ep_len = carry
            obs = env_state.obs
            mean = learner.policy_mean(state.actor_params, state.obs_norm, obs)
            action = mean + jnp.exp(learner.log_std) * jax.random.normal(k, mean.shape)
            log_prob = ppo.gaussian_log_prob(mean, learner.log_std, action)
            env_state, out = vstep(env_state, action)
            ep_ret = ep_ret + out.reward
            ep_len = ep_len + 1
            ended = out.done != NULL
            episode = {
                "ended": ended, "return": jnp.where(ended, ep_ret, 0.0), "length": jnp.where(ended, ep_len, 0),
                "fell": out.done == FAIL, "fault": out.physics_fault, "task": out.task_metrics,
            }
            ep_ret = jnp.where(ended, 0.0, ep_ret)
            ep_len = jnp.where(ended, 0, ep_len)
            step = {"obs": obs, "action": action, "log_prob": log_prob, "next_obs": out.next_obs,
                    "disc_obs": out.disc_obs, "task_reward": out.reward, "done": out.done}
            return (env_state, ep_ret, ep_len), (step, episode)

        carry = (state.env_state, state.episode_return, state.episode_length)
        (env_state, ep_ret, ep_len), (traj, episodes) = jax.lax.scan(one_step, carry, jax.random.split(key, T))
        return env_state, ep_ret, ep_len, traj, episodes

    def train_step(state: TrainState):
        key, k_roll, k_demo, k_replay, k_critic, k_actor, k_disc = jax.random.split(state.key, 7)
        obs_norm, disc_norm = state.obs_norm, state.disc_norm
        env_state, ep_ret, ep_len, traj, episodes = rollout(state, k_roll)

        # A transition whose physics faulted (NaN or exploding; the env has reset it) is left out of every
        # loss, the replay buffer and the normalisers, and earns no reward.
        traj["valid"] = (~episodes["fault"]).astype(jnp.float32)
        disc_logits = learner.disc_logits(state.disc_params, disc_norm, traj["disc_obs"])
        style = discriminator.style_reward(disc_logits, cfg.disc_loss, cfg.disc_reward_scale)
        style = jnp.where(traj["valid"] > 0, style, 0.0)
        reward = cfg.task_reward_weight * traj["task_reward"] + cfg.disc_reward_weight * style

        values = learner.value(state.critic_params, obs_norm, traj["obs"])
        next_values = learner.value(state.critic_params, obs_norm, traj["next_obs"])
        returns = ppo.td_lambda_returns(reward, next_values, traj["done"], cfg.discount, cfg.td_lambda)
        adv_raw = returns - values
        adv = ppo.normalize_advantages(adv_raw, cfg.norm_adv_clip, traj["valid"])

        demo_keys = split_envs(jax.random.split(k_demo, (T, E)), 1)
        demo_obs = jax.vmap(jax.vmap(env.demo_disc_obs))(demo_keys)  # [T, E, D]
        windows, windows_valid = traj["disc_obs"].reshape(N, -1), traj["valid"].reshape(N)
        order = jax.random.permutation(k_replay, N)
        some = order[: cfg.disc_replay_samples]
        replay = jax.lax.cond(  # all of this iteration's windows while filling, then disc_replay_samples
            state.replay.count < state.replay.data.shape[0],
            lambda r: replay_buffer.add(r, windows[order], windows_valid[order]),
            lambda r: replay_buffer.add(r, windows[some], windows_valid[some]),
            state.replay,
        )

        def critic_update(carry, batch):
            params, opt = carry
            def loss_fn(p):
                return ppo.critic_loss(learner.value(p, obs_norm, batch["obs"]), batch["returns"], batch["valid"])
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt = learner.critic_tx.update(grads, opt, params)
            return (optax.apply_updates(params, updates), opt), {"critic_loss": loss}

        def actor_update(carry, batch):
            params, opt = carry
            def loss_fn(p):
                mean = learner.policy_mean(p, obs_norm, batch["obs"])
                return ppo.actor_loss(mean, learner.log_std, batch["action"], batch["log_prob"], batch["adv"],
                                      cfg.ppo_clip_ratio, cfg.action_bound_weight, batch["valid"])
            (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt = learner.actor_tx.update(grads, opt, params)
            return (optax.apply_updates(params, updates), opt), stats

        def disc_update(carry, batch):
            params, opt, key = carry
            key, k = jax.random.split(key)
            replayed = split_envs(replay_buffer.sample(replay, k, batch["disc_obs"].shape[0]), 0)
            agent = normalizer.normalize(disc_norm, jnp.concatenate([batch["disc_obs"], replayed], axis=0))
            demo = normalizer.normalize(disc_norm, batch["demo_obs"])
            # An empty buffer (every transition so far faulted) gives no replayed windows.
            agent_mask = jnp.concatenate([batch["valid"], jnp.full(replayed.shape[0], replay.count > 0, jnp.float32)])
            def loss_fn(p):
                return discriminator.loss(learner.disc.apply, p, agent, demo, cfg.disc_loss,
                                          cfg.disc_grad_penalty, cfg.disc_logit_reg, agent_mask)
            (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt = learner.disc_tx.update(grads, opt, params)
            return (optax.apply_updates(params, updates), opt, key), stats

        ppo_data = {"obs": traj["obs"], "action": traj["action"], "log_prob": traj["log_prob"],
                    "returns": returns, "adv": adv, "valid": traj["valid"]}
        disc_data = {"disc_obs": traj["disc_obs"], "demo_obs": demo_obs, "valid": traj["valid"]}
        (critic_params, critic_opt), critic_stats = _minibatch_epochs(
            k_critic, ppo_data, cfg.critic_batch_size, cfg.critic_epochs, critic_update,
            (state.critic_params, state.critic_opt))
        (actor_params, actor_opt), actor_stats = _minibatch_epochs(
            k_actor, ppo_data, cfg.actor_batch_size, cfg.actor_epochs, actor_update,
            (state.actor_params, state.actor_opt))
        k_disc_mb, k_disc_replay = jax.random.split(k_disc)
        (disc_params, disc_opt, _), disc_stats = _minibatch_epochs(
            k_disc_mb, disc_data, cfg.disc_batch_size, cfg.disc_epochs, disc_update,
            (state.disc_params, state.disc_opt, k_disc_replay))

        active = state.samples < cfg.normalizer_samples
        new_obs_norm = normalizer.update(obs_norm, traj["obs"], traj["valid"])
        new_disc_norm = normalizer.update(disc_norm, jnp.stack([traj["disc_obs"], demo_obs]),
                                          jnp.stack([traj["valid"], jnp.ones((T, E))]))
        obs_norm = jax.tree.map(lambda a, b: jnp.where(active, a, b), new_obs_norm, obs_norm)
        disc_norm = jax.tree.map(lambda a, b: jnp.where(active, a, b), new_disc_norm, disc_norm)

        new_state = TrainState(
            actor_params=actor_params, critic_params=critic_params, disc_params=disc_params,
            actor_opt=actor_opt, critic_opt=critic_opt, disc_opt=disc_opt,
            obs_norm=obs_norm, disc_norm=disc_norm, replay=replay, env_state=env_state,
            episode_return=ep_ret, episode_length=ep_len, key=key,
            iteration=state.iteration + 1, samples=state.samples + N,
        )
        metrics = {
            **critic_stats, **actor_stats, **disc_stats,
            "disc_reward_mean": jnp.mean(style), "disc_reward_std": jnp.std(style),
            "task_reward_mean": jnp.mean(traj["task_reward"]),
            "adv_mean": jnp.mean(adv_raw), "adv_std": jnp.std(adv_raw),
            "episodes": jnp.sum(episodes["ended"]),
            "episode_return_sum": jnp.sum(episodes["return"]),
            "episode_length_sum": jnp.sum(episodes["length"]),
            "falls": jnp.sum(episodes["fell"]),
            "physics_faults": jnp.sum(episodes["fault"]),
            "nonfinite_params": sum(jnp.sum(~jnp.isfinite(x)) for x in
                                    jax.tree.leaves((actor_params, critic_params, disc_params))),
            "obs_norm_mean": jnp.mean(jnp.abs(obs_norm.mean)), "obs_norm_std": jnp.mean(obs_norm.std),
            **{k: jnp.mean(v) for k, v in episodes["task"].items()},
        }
        return new_state, metrics

    if mesh is None:
        return jax.jit(train_step, donate_argnums=0)
    shardings = sharding.state_shardings(TrainState, mesh)
    return jax.jit(train_step, in_shardings=(shardings,), out_shardings=(shardings, sharding.replicated(mesh)),
                   donate_argnums=0)
