"""The AMP environment as pure functions: reset(key) -> state, step(state, action) -> (state, output).

One environment; vmap for many (`reset_batch` starts a batch). Reference-state initialisation (a
random clip and time, with the discriminator history pre-filled from the clip), PD targets from
normalised actions, early termination when a body other than the contact bodies touches the floor,
timeouts, and automatic reset of finished episodes inside `step`. A physics fault (NaN or exploding
velocities) ends the episode like a fall, is reported in the output, and never reaches the observations.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct

from amp_jax.characters import kinematics, mjx_backend
from amp_jax.characters.character import Character
from amp_jax.characters.mjx_backend import mjx  # quiet about MuJoCo Warp
from amp_jax.characters.pose import Pose, with_key_bodies
from amp_jax.config import EnvConfig
from amp_jax.envs import observations, pd, tasks
from amp_jax.envs.contract import FAIL, NULL, TIME
from amp_jax.errors import InputError
from amp_jax.motion.library import MotionLibrary

MAX_QVEL = 1e3  # a velocity above this is a physics fault


@struct.dataclass
class EnvState:
    data: mjx.Data
    obs: jax.Array  # policy observation of the current frame
    history: Pose  # the last num_disc_obs_steps frames, oldest first
    step_count: jax.Array  # control steps since reset
    motion_id: jax.Array  # the clip the episode started from; its reference time is
    motion_start: jax.Array  # motion_start + step_count * control_dt (seconds)
    task: object  # the task's state pytree (see amp_jax.envs.tasks)
    key: jax.Array


@struct.dataclass
class StepOutput:
    """What one step produced, before any automatic reset."""

    next_obs: jax.Array  # policy observation after the step (the terminal one if done)
    disc_obs: jax.Array  # discriminator window ending after the step
    reward: jax.Array  # task reward (0 for style-only cases)
    done: jax.Array  # NULL, FAIL or TIME
    physics_fault: jax.Array  # bool
    task_metrics: dict  # per-step task measures (amp_jax.envs.tasks), empty for style-only cases
    target_changed: jax.Array  # bool: the task drew a new target this step


class AmpEnv:
    """Static description (character, motions, settings) with pure reset/step functions; fulfils
    amp_jax.envs.contract.Env, all the learner uses."""

    def __init__(self, character: Character, motions: MotionLibrary, cfg: EnvConfig):
        self.character = character
        self.layout = character.layout
        self.motions = motions
        self.cfg = cfg
        try:
            self.model = mjx_backend.put_model(character.mj_model, cfg.physics.impl)
            self._templates = {}  # one world's MuJoCo data to reset from, per batch size (see _make_data)
            self._make_data(1)
        except (NotImplementedError, ValueError, AssertionError, RuntimeError) as e:  # unsupported feature/device
            raise InputError(f"{character.xml_path}: MJX ({cfg.physics.impl}) cannot simulate this character: "
                             f"{e}") from None
        self.control_dt = 1.0 / cfg.physics.control_freq
        self.substeps = cfg.physics.substeps
        self.episode_steps = int(round(cfg.episode_length * cfg.physics.control_freq))
        low, high = self.layout.action_low, self.layout.action_high
        self._action_mean = jnp.asarray(0.5 * (high + low))
        self._action_scale = jnp.asarray(0.5 * (high - low))
        self.task = tasks.make_task(cfg)
        # Sizes by tracing (nothing is computed): the observations as written are their one definition.
        self.obs_size = jax.eval_shape(self.reset, jax.random.PRNGKey(0)).obs.shape[-1]
        self.disc_obs_size = jax.eval_shape(self.demo_disc_obs, jax.random.PRNGKey(0)).shape[-1]
        self.action_size = self.layout.num_dof

    # -- reference motion ---------------------------------------------------------------------
    def motion_window(self, clip_id, t0) -> Pose:
        """Reference frames at t0 - (n-1) dt, ..., t0 (oldest first)."""
        n = self.cfg.num_disc_obs_steps
        times = t0 + self.control_dt * jnp.arange(-(n - 1), 1, dtype=jnp.float32)
        return with_key_bodies(self.layout, self.motions.state(clip_id, times))

    def demo_disc_obs(self, key) -> jax.Array:
        """One discriminator observation of a random window of the reference motions."""
        k1, k2 = jax.random.split(key)
        clip = self.motions.sample_clips(k1)
        t0 = self.motions.sample_times(k2, clip)
        return observations.disc_obs(self.motion_window(clip, t0), self.cfg.global_obs, self.cfg.root_height_obs)

    @functools.cached_property
    def disc_feature_columns(self) -> dict:
        """The columns of a discriminator observation that each feature fills (observations.DISC_FEATURES),
        traced on first use (eval's style tells): training never needs them."""
        window = jax.eval_shape(self.motion_window, jnp.int32(0), jnp.float32(0.0))
        return observations.disc_feature_columns(window, self.cfg.global_obs, self.cfg.root_height_obs)

    # -- reset / step ---------------------------------------------------------------------------
    def _make_data(self, num_worlds: int) -> mjx.Data:
        """One world's MuJoCo data for a batch of num_worlds (amp_jax.characters.mjx_backend), made once."""
        if num_worlds not in self._templates:
            with jax.ensure_compile_time_eval():  # concrete arrays, even when first asked for inside a trace
                self._templates[num_worlds] = mjx_backend.make_world_data(self.character.mj_model,
                                                                          self.cfg.physics.impl, num_worlds)
        return self._templates[num_worlds]

    def reset_batch(self, keys) -> EnvState:
        """reset, vmapped over keys [E]: the states every batched rollout starts from."""
        return jax.vmap(self.reset, in_axes=(0, None))(keys, self._make_data(len(keys)))

    def reset(self, key, data_template: mjx.Data | None = None) -> EnvState:
        """A new episode from a random reference state (data_template: see reset_batch)."""
        key, k_clip, k_time, k_task = jax.random.split(key, 4)
        clip = self.motions.sample_clips(k_clip)
        t0 = self.motions.sample_times(k_time, clip) if self.cfg.rand_reset else jnp.float32(0.0)
        window = self.motion_window(clip, t0)
        cur = jax.tree.map(lambda x: x[-1], window)
        qpos = kinematics.to_qpos(self.layout, cur.root_pos, cur.root_rot, cur.joint_rot)
        qvel = kinematics.to_qvel(cur.root_rot, cur.root_vel, cur.root_ang_vel, cur.dof_vel)
        template = self._make_data(1) if data_template is None else data_template
        data = template.replace(qpos=qpos, qvel=qvel)
        task = self.task.reset(k_task, cur.root_pos)
        return EnvState(data=data, obs=self._policy_obs(cur, task), history=window,
                        step_count=jnp.int32(0), motion_id=clip, motion_start=t0, task=task, key=key)

    def _policy_obs(self, frame: Pose, task) -> jax.Array:
        """The character's observation followed by the task's (in the heading frame)."""
        return jnp.concatenate([observations.policy_obs(frame, self.cfg.global_obs, self.cfg.root_height_obs),
                                self.task.obs(task, frame.root_pos, frame.root_rot)])

    def pd_targets(self, action) -> jax.Array:
        """PD targets from a normalised action (+-1 reaches the bounds), clipped to the bounds."""
        target = action * self._action_scale + self._action_mean
        return jnp.clip(target, jnp.asarray(self.layout.action_low), jnp.asarray(self.layout.action_high))

    def read_frame(self, data: mjx.Data) -> tuple[Pose, jax.Array]:
        """The simulated frame and the lowest height of a geom that must not touch the floor."""
        qpos, qvel = data.qpos, data.qvel
        root_rot = qpos[3:7]
        joint_rot = kinematics.qpos_to_joint_rot(self.layout, qpos)
        body_pos, body_rot = kinematics.forward_kinematics(self.layout, qpos[:3], root_rot, joint_rot)
        frame = Pose(root_pos=qpos[:3], root_rot=root_rot, root_vel=qvel[:3],
                     root_ang_vel=kinematics.root_ang_vel_world(qpos, qvel), joint_rot=joint_rot,
                     dof_vel=qvel[6:], key_pos=body_pos[self.layout.key_body_ids])
        return frame, kinematics.lowest_fail_geom_height(self.layout, body_pos, body_rot)

    def step(self, state: EnvState, action) -> tuple[EnvState, StepOutput]:
        """One control step; an episode that ends starts again from a random reference state."""
        return self.finish_step(state, self._physics(state, action))

    def advance(self, state: EnvState, action) -> tuple[EnvState, StepOutput]:
        """One control step without the automatic reset (for wrappers that reset on their own: Brax's)."""
        return self._advance_to(state, self._physics(state, action))

    def _physics(self, state: EnvState, action) -> mjx.Data:
        """The simulation after holding the action's PD targets for one control step."""
        return self.hold_targets(state.data, self.pd_targets(action))

    def hold_targets(self, data: mjx.Data, targets) -> mjx.Data:
        """One world's physics after holding PD targets [D] for one control step (the raw physics)."""
        return pd.control_step(self.model, self.layout, data, targets, self.substeps,
                               self.cfg.physics.ball_axis_limits)

    def finish_step(self, state: EnvState, data: mjx.Data) -> tuple[EnvState, StepOutput]:
        """Everything after the physics of a control step from state to data (read: its qpos and qvel):
        observations, rewards, termination and the automatic reset."""
        stepped, out = self._advance_to(state, data)
        reset_key = jax.random.split(state.key, 3)[2]
        fresh = self.reset(reset_key, self._make_data(mjx_backend.batch_size(state.data, self.character.mj_model)))
        ended = out.done != NULL
        next_state = jax.tree.map(lambda r, s: jnp.where(ended, r, s), fresh.replace(data=None),
                                  stepped.replace(data=None))
        # Data.where keeps MuJoCo Warp's shared (not vmapped) buffers of the stepped data.
        return next_state.replace(data=stepped.data.where(ended, fresh.data)), out

    def _advance_to(self, state: EnvState, data: mjx.Data) -> tuple[EnvState, StepOutput]:
        """The state after a control step to data, and what the step gave: observations, rewards, termination."""
        prev_root_pos = state.data.qpos[:3]
        fault = ~(jnp.all(jnp.isfinite(data.qpos)) & jnp.all(jnp.isfinite(data.qvel))
                  & jnp.all(jnp.abs(data.qvel) < MAX_QVEL))
        frame, lowest = self.read_frame(data)
        history = jax.tree.map(lambda h, f: jnp.concatenate([h[1:], f[None]], axis=0), state.history, frame)
        step_count = state.step_count + 1
        key, task_key, _ = jax.random.split(state.key, 3)  # the third: finish_step's reset
        task = self.task.update(task_key, state.task, step_count * self.control_dt, frame.root_pos)
        obs = self._policy_obs(frame, task)
        disc = observations.disc_obs(history, self.cfg.global_obs, self.cfg.root_height_obs)
        reward = self.task.reward(task, prev_root_pos, frame.root_pos, frame.root_rot, self.control_dt)
        task_metrics = self.task.metrics(task, prev_root_pos, frame.root_pos, frame.root_rot, self.control_dt)
        changed = self.task.changed(state.task, task)
        obs, disc, reward = (jnp.where(fault, 0.0, jnp.nan_to_num(x)) for x in (obs, disc, reward))
        fell = (lowest < 0.0) & self.cfg.enable_early_termination
        done = jnp.where(fell | fault, FAIL, jnp.where(step_count >= self.episode_steps, TIME, NULL))

        stepped = EnvState(data=data, obs=obs, history=history, step_count=step_count, motion_id=state.motion_id,
                           motion_start=state.motion_start, task=task, key=key)
        return stepped, StepOutput(next_obs=obs, disc_obs=disc, reward=reward, done=done, physics_fault=fault,
                                   task_metrics=task_metrics, target_changed=changed)
