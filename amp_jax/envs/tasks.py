"""Task objectives mixed with the style reward: reach a location, or steer at a speed and facing.

Each task is pure functions over its own state pytree (MimicKit's TaskLocationEnv and
TaskSteeringEnv): `reset` draws the first target, `update` redraws it when its timer runs out (before
the step's observation and reward), `obs` is the target in the character's heading frame, `reward`
scores the step from the root displacement over the control step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from amp_jax import quat
from amp_jax.config import LocationConfig, SteeringConfig


def _planar_facing(root_rot):
    """Unit xy direction of the root's heading."""
    h = quat.heading(root_rot)
    return jnp.stack([jnp.cos(h), jnp.sin(h)], axis=-1)


def _to_heading_xy(root_rot, v_xy):
    """A world xy vector in the root's heading frame."""
    v = jnp.concatenate([v_xy, jnp.zeros_like(v_xy[..., :1])], axis=-1)
    return quat.rotate(quat.heading_quat_inv(root_rot), v)[..., :2]


def _next_change(key, time, lo: float, hi: float):
    return time + jax.random.uniform(key, minval=lo, maxval=hi)


def _changed(old, new):
    """Whether update() drew a new target (every redraw sets a later change time)."""
    return new.change_time != old.change_time


# -- location ---------------------------------------------------------------------------------------
@struct.dataclass
class LocationState:
    target: jax.Array  # [2] world xy
    change_time: jax.Array  # seconds since reset when the target is redrawn


class LocationTask:
    """Reach a target location on the ground (MimicKit's TaskLocationEnv); observation: the target's xy (2)."""

    def __init__(self, cfg: LocationConfig):
        self.cfg = cfg

    def _draw(self, key, time, root_pos) -> LocationState:
        k_dist, k_angle, k_time = jax.random.split(key, 3)
        c = self.cfg
        dist = jax.random.uniform(k_dist, minval=c.tar_dist_min, maxval=c.tar_dist_max)
        angle = jax.random.uniform(k_angle, minval=0.0, maxval=2 * jnp.pi)
        target = root_pos[:2] + dist * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        return LocationState(target, _next_change(k_time, time, c.tar_change_time_min, c.tar_change_time_max))

    def reset(self, key, root_pos) -> LocationState:
        return self._draw(key, jnp.float32(0.0), root_pos)

    def update(self, key, state: LocationState, time, root_pos) -> LocationState:
        fresh = self._draw(key, time, root_pos)
        return jax.tree.map(lambda f, s: jnp.where(time >= state.change_time, f, s), fresh, state)

    changed = staticmethod(_changed)

    def obs(self, state: LocationState, root_pos, root_rot):
        return _to_heading_xy(root_rot, state.target - root_pos[:2])

    def reward(self, state: LocationState, prev_root_pos, root_pos, root_rot, dt: float):
        c = self.cfg
        diff = state.target - root_pos[:2]
        err = jnp.sum(diff * diff)
        r_pos = jnp.exp(-c.pos_err_scale * err)
        direction = diff / jnp.maximum(jnp.sqrt(err), 1e-6)
        speed = jnp.dot(direction, (root_pos[:2] - prev_root_pos[:2]) / dt)
        r_vel = jnp.where(speed > 0, jnp.exp(-c.vel_err_scale * jnp.square(jnp.maximum(0.0, c.tar_speed - speed))), 0.0)
        r_face = jnp.maximum(0.0, jnp.dot(direction, _planar_facing(root_rot)))
        near = err < c.dist_threshold
        r_vel, r_face = jnp.where(near, 1.0, r_vel), jnp.where(near, 1.0, r_face)
        return c.pos_reward_w * r_pos + c.vel_reward_w * r_vel + c.face_reward_w * r_face

    def metrics(self, state: LocationState, prev_root_pos, root_pos, root_rot, dt: float) -> dict:
        """Planar distance to the target (success: within 0.5 m before the target changes)."""
        return {"location_distance": jnp.linalg.norm(state.target - root_pos[:2])}


# -- steering ---------------------------------------------------------------------------------------
@struct.dataclass
class SteeringState:
    direction: jax.Array  # [2] unit world xy
    speed: jax.Array
    facing: jax.Array  # [2] unit world xy
    change_time: jax.Array


class SteeringTask:
    """Move in a target direction at a target speed while facing a target direction (MimicKit's
    TaskSteeringEnv); observation: direction (2), speed (1), facing (2)."""

    def __init__(self, cfg: SteeringConfig):
        self.cfg = cfg

    def _draw(self, key, time) -> SteeringState:
        k_dir, k_speed, k_face, k_time = jax.random.split(key, 4)
        c = self.cfg
        theta = jax.random.uniform(k_dir, minval=-jnp.pi, maxval=jnp.pi) if c.rand_tar_dir else jnp.float32(0.0)
        direction = jnp.stack([jnp.cos(theta), jnp.sin(theta)])
        speed = jax.random.uniform(k_speed, minval=c.tar_speed_min, maxval=c.tar_speed_max)
        if c.rand_face_dir:
            phi = jax.random.uniform(k_face, minval=-jnp.pi, maxval=jnp.pi)
            facing = jnp.stack([jnp.cos(phi), jnp.sin(phi)])
        else:
            facing = direction
        return SteeringState(direction, speed, facing,
                             _next_change(k_time, time, c.tar_change_time_min, c.tar_change_time_max))

    def reset(self, key, root_pos) -> SteeringState:
        return self._draw(key, jnp.float32(0.0))

    def update(self, key, state: SteeringState, time, root_pos) -> SteeringState:
        fresh = self._draw(key, time)
        return jax.tree.map(lambda f, s: jnp.where(time >= state.change_time, f, s), fresh, state)

    changed = staticmethod(_changed)

    def obs(self, state: SteeringState, root_pos, root_rot):
        return jnp.concatenate([_to_heading_xy(root_rot, state.direction), state.speed[None],
                                _to_heading_xy(root_rot, state.facing)])

    def reward(self, state: SteeringState, prev_root_pos, root_pos, root_rot, dt: float):
        c = self.cfg
        vel = (root_pos[:2] - prev_root_pos[:2]) / dt
        err = jnp.sum(jnp.square(state.speed * state.direction - vel))
        r_tar = jnp.where(jnp.dot(state.direction, vel) < 0, 0.0, jnp.exp(-c.vel_scale * err))
        r_face = jnp.maximum(0.0, jnp.dot(state.facing, _planar_facing(root_rot)))
        return c.tar_reward_w * r_tar + c.face_reward_w * r_face

    def metrics(self, state: SteeringState, prev_root_pos, root_pos, root_rot, dt: float) -> dict:
        """Velocity error (m/s) and facing error (radians)."""
        vel = (root_pos[:2] - prev_root_pos[:2]) / dt
        cos = jnp.clip(jnp.dot(state.facing, _planar_facing(root_rot)), -1.0, 1.0)
        return {"steering_velocity_error": jnp.linalg.norm(state.speed * state.direction - vel),
                "steering_facing_error": jnp.arccos(cos)}


# -- no task ----------------------------------------------------------------------------------------
class NoTask:
    """Style-only cases: no observation, zero task reward."""

    def reset(self, key, root_pos):
        return jnp.zeros(())

    def update(self, key, state, time, root_pos):
        return state

    def changed(self, old, new):
        return jnp.bool_(False)

    def obs(self, state, root_pos, root_rot):
        return jnp.zeros(0)

    def reward(self, state, prev_root_pos, root_pos, root_rot, dt: float):
        return jnp.float32(0.0)

    def metrics(self, state, prev_root_pos, root_pos, root_rot, dt: float) -> dict:
        return {}


def make_task(env_cfg):
    """The task of an EnvConfig (env.task: none | location | steering)."""
    return {"none": NoTask, "location": lambda: LocationTask(env_cfg.location),
            "steering": lambda: SteeringTask(env_cfg.steering)}[env_cfg.task]()
