"""ONE compiled AMP training iteration over ONE TrainState pytree.

train_step(state) -> (state, metrics) runs these stages, each a function below, in MimicKit's order:
  collect                 steps_per_iter steps: lax.scan over time, vmap over environments, stochastic actions
  style_reward            the discriminator as it was before this iteration; mixed with the task reward
  returns_and_advantages  TD(lambda) returns and normalised advantages from the critic as it was
  demo_windows, push_replay   reference windows; the agent's windows into the replay buffer
  update_critic, update_actor, update_discriminator   minibatch epochs, each through gradient_update
  update_normalizers      this iteration's samples merged into the normalisers (until normalizer_samples)

The environment is anything that fulfils amp_jax.envs.contract.Env (amp_jax.envs.amp_env.AmpEnv does).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from amp_jax.envs.contract import FAIL, NULL, TIME, Env, EnvState
from amp_jax.learning import discriminator, normalizer, ppo, replay_buffer, sharding
from amp_jax.learning.learner import Learner
from amp_jax.learning.normalizer import Normalizer
from amp_jax.learning.replay_buffer import ReplayBuffer


@struct.dataclass
class TrainState:
    """Everything a training iteration reads and writes: networks, optimiser states, normalisers, the replay
    buffer, the environments, the rng key and counters (one pytree: checkpointed, donated, sharded)."""

    actor_params: dict
    critic_params: dict
    disc_params: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    disc_opt: optax.OptState
    obs_norm: Normalizer
    disc_norm: Normalizer
    replay: ReplayBuffer
    env_state: EnvState = sharding.per_env()  # batched over environments
    episode_return: jax.Array = sharding.per_env()  # [E] task return of the running episodes
    episode_length: jax.Array = sharding.per_env()  # [E]
    key: jax.Array
    iteration: jax.Array  # completed iterations
    samples: jax.Array  # float64-safe count of env steps (float32 is exact up to 2^24 * batch)


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


# -- the stages of one iteration, in order --------------------------------------------------------------
def split_envs(x, env_axis: int, mesh: Mesh | None):
    """Keep x's environment (or sample) axis split over the mesh (a no-op on one device)."""
    if mesh is None:
        return x
    spec = PartitionSpec(*([None] * env_axis), sharding.ENVS)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def collect(learner: Learner, env: Env, state: TrainState, key):
    """steps_per_iter steps of every environment with stochastic actions (lax.scan over time, vmap over
    environments). Returns the environments' carry (states, running returns and lengths), the transitions
    [T, E, ...] with their masks (valid: the physics did not fault; terminal: no future to bootstrap from;
    ended: any episode end) and the episodes that ended."""
    vstep = jax.vmap(env.step)

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
        # A transition whose physics faulted (NaN or exploding; the env has reset it) is left out of every
        # loss, the replay buffer and the normalisers, and earns no reward.
        step = {"obs": obs, "action": action, "log_prob": log_prob, "next_obs": out.next_obs,
                "disc_obs": out.disc_obs, "task_reward": out.reward, "valid": (~out.physics_fault).astype(jnp.float32),
                "terminal": ended & (out.done != TIME), "ended": ended}
        return (env_state, ep_ret, ep_len), (step, episode)

    carry = (state.env_state, state.episode_return, state.episode_length)
    carry, (traj, episodes) = jax.lax.scan(one_step, carry, jax.random.split(key, learner.cfg.steps_per_iter))
    return carry, traj, episodes


def style_reward(learner: Learner, state: TrainState, traj: dict):
    """The discriminator's style reward [T, E] (as it was before this iteration; 0 where the physics faulted)."""
    style = learner.style_reward(state.disc_params, state.disc_norm, traj["disc_obs"])
    return jnp.where(traj["valid"] > 0, style, 0.0)


def returns_and_advantages(learner: Learner, state: TrainState, traj: dict, reward):
    """TD(lambda) returns from the critic as it was, raw advantages, and normalised clipped advantages."""
    cfg = learner.cfg
    values = learner.value(state.critic_params, state.obs_norm, traj["obs"])
    next_values = learner.value(state.critic_params, state.obs_norm, traj["next_obs"])
    returns = ppo.td_lambda_returns(reward, next_values, traj["terminal"], traj["ended"], cfg.discount, cfg.td_lambda)
    adv_raw = returns - values
    return returns, adv_raw, ppo.normalize_advantages(adv_raw, cfg.norm_adv_clip, traj["valid"])


def demo_windows(env: Env, key, steps: int, num_envs: int, mesh: Mesh | None):
    """Discriminator windows [T, E, D] of the reference motion, one per agent window."""
    keys = split_envs(jax.random.split(key, (steps, num_envs)), 1, mesh)
    return jax.vmap(jax.vmap(env.demo_disc_obs))(keys)


def push_replay(learner: Learner, replay: ReplayBuffer, traj: dict, key) -> ReplayBuffer:
    """This iteration's agent windows into the replay buffer: all of them while it fills, then
    disc_replay_samples of them."""
    windows, windows_valid = traj["disc_obs"].reshape(-1, traj["disc_obs"].shape[-1]), traj["valid"].reshape(-1)
    order = jax.random.permutation(key, windows.shape[0])
    some = order[: learner.cfg.disc_replay_samples]
    return jax.lax.cond(
        replay.count < replay.data.shape[0],
        lambda r: replay_buffer.add(r, windows[order], windows_valid[order]),
        lambda r: replay_buffer.add(r, windows[some], windows_valid[some]),
        replay,
    )


def gradient_update(loss_fn, tx: optax.GradientTransformation, carry, batch):
    """One optimiser step on loss_fn(params, batch) -> (loss, stats): (params, opt_state) -> ((params,
    opt_state), stats)."""
    params, opt_state = carry
    (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), stats


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


def update_critic(learner: Learner, state: TrainState, data: dict, key):
    """critic_epochs of minibatch regression onto the returns: ((params, opt_state), stats)."""
    cfg = learner.cfg

    def loss(p, batch):
        value_loss = ppo.critic_loss(learner.value(p, state.obs_norm, batch["obs"]), batch["returns"], batch["valid"])
        return value_loss, {"critic_loss": value_loss}

    return _minibatch_epochs(key, data, cfg.critic_batch_size, cfg.critic_epochs,
                             functools.partial(gradient_update, loss, learner.critic_tx),
                             (state.critic_params, state.critic_opt))


def update_actor(learner: Learner, state: TrainState, data: dict, key):
    """actor_epochs of the clipped surrogate with the action-bound penalty: ((params, opt_state), stats)."""
    cfg = learner.cfg

    def loss(p, batch):
        mean = learner.policy_mean(p, state.obs_norm, batch["obs"])
        return ppo.actor_loss(mean, learner.log_std, batch["action"], batch["log_prob"], batch["adv"],
                              cfg.ppo_clip_ratio, cfg.action_bound_weight, batch["valid"])

    return _minibatch_epochs(key, data, cfg.actor_batch_size, cfg.actor_epochs,
                             functools.partial(gradient_update, loss, learner.actor_tx),
                             (state.actor_params, state.actor_opt))


def update_discriminator(learner: Learner, state: TrainState, replay: ReplayBuffer, data: dict, key,
                         mesh: Mesh | None):
    """disc_epochs of the discriminator loss: each minibatch's agent windows with as many replayed ones
    against demo windows. ((params, opt_state), stats)."""
    cfg = learner.cfg

    def loss(p, batch):
        return discriminator.loss(learner.disc.apply, p, batch["agent"], batch["demo"], cfg.disc_loss,
                                  cfg.disc_grad_penalty, cfg.disc_logit_reg, batch["agent_mask"])

    def update(carry, batch):
        params, opt_state, key = carry
        key, k = jax.random.split(key)
        replayed = split_envs(replay_buffer.sample(replay, k, batch["disc_obs"].shape[0]), 0, mesh)
        # An empty buffer (every transition so far faulted) gives no replayed windows.
        agent_mask = jnp.concatenate([batch["valid"], jnp.full(replayed.shape[0], replay.count > 0, jnp.float32)])
        inputs = {"agent": normalizer.normalize(state.disc_norm, jnp.concatenate([batch["disc_obs"], replayed], axis=0)),
                  "demo": normalizer.normalize(state.disc_norm, batch["demo_obs"]), "agent_mask": agent_mask}
        (params, opt_state), stats = gradient_update(loss, learner.disc_tx, (params, opt_state), inputs)
        return (params, opt_state, key), stats

    k_minibatches, k_replay = jax.random.split(key)
    (params, opt_state, _), stats = _minibatch_epochs(k_minibatches, data, cfg.disc_batch_size, cfg.disc_epochs,
                                                      update, (state.disc_params, state.disc_opt, k_replay))
    return (params, opt_state), stats


def update_normalizers(learner: Learner, state: TrainState, traj: dict, demo_obs):
    """The observation normalisers with this iteration's samples merged in, until normalizer_samples."""
    active = state.samples < learner.cfg.normalizer_samples
    obs_norm = normalizer.update(state.obs_norm, traj["obs"], traj["valid"])
    disc_norm = normalizer.update(state.disc_norm, jnp.stack([traj["disc_obs"], demo_obs]),
                                  jnp.stack([traj["valid"], jnp.ones_like(traj["valid"])]))
    keep = functools.partial(jax.tree.map, lambda new, old: jnp.where(active, new, old))
    return keep(obs_norm, state.obs_norm), keep(disc_norm, state.disc_norm)


def train_step(learner: Learner, env: Env, mesh: Mesh | None, state: TrainState) -> tuple[TrainState, dict]:
    """One AMP iteration (MimicKit's order), stage by stage."""
    cfg = learner.cfg
    key, k_collect, k_demo, k_replay, k_critic, k_actor, k_disc = jax.random.split(state.key, 7)
    (env_state, episode_return, episode_length), traj, episodes = collect(learner, env, state, k_collect)
    style = style_reward(learner, state, traj)
    reward = cfg.task_reward_weight * traj["task_reward"] + cfg.disc_reward_weight * style
    returns, adv_raw, adv = returns_and_advantages(learner, state, traj, reward)
    demo_obs = demo_windows(env, k_demo, cfg.steps_per_iter, learner.num_envs, mesh)
    replay = push_replay(learner, state.replay, traj, k_replay)

    ppo_data = {"obs": traj["obs"], "action": traj["action"], "log_prob": traj["log_prob"],
                "returns": returns, "adv": adv, "valid": traj["valid"]}
    (critic_params, critic_opt), critic_stats = update_critic(learner, state, ppo_data, k_critic)
    (actor_params, actor_opt), actor_stats = update_actor(learner, state, ppo_data, k_actor)
    disc_data = {"disc_obs": traj["disc_obs"], "demo_obs": demo_obs, "valid": traj["valid"]}
    (disc_params, disc_opt), disc_stats = update_discriminator(learner, state, replay, disc_data, k_disc, mesh)
    obs_norm, disc_norm = update_normalizers(learner, state, traj, demo_obs)

    new_state = TrainState(
        actor_params=actor_params, critic_params=critic_params, disc_params=disc_params,
        actor_opt=actor_opt, critic_opt=critic_opt, disc_opt=disc_opt,
        obs_norm=obs_norm, disc_norm=disc_norm, replay=replay, env_state=env_state,
        episode_return=episode_return, episode_length=episode_length, key=key,
        iteration=state.iteration + 1, samples=state.samples + learner.batch_size,
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


def make_train_step(learner: Learner, env: Env, mesh: Mesh | None = None):
    """The jitted training iteration: train_step(TrainState) -> (TrainState, metrics), its state donated.

    With a mesh (amp_jax.learning.sharding), the environments are split over its devices and the state must be
    placed over them (init_train_state with the same mesh).
    """
    step = functools.partial(train_step, learner, env, mesh)
    if mesh is None:
        return jax.jit(step, donate_argnums=0)
    shardings = sharding.state_shardings(TrainState, mesh)
    return jax.jit(step, in_shardings=(shardings,), out_shardings=(shardings, sharding.replicated(mesh)),
                   donate_argnums=0)
