"""Location and steering tasks: observations, rewards and target timers against hand-computed values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amp_jax import quat
from amp_jax.config import LocationConfig, SteeringConfig
from amp_jax.envs.tasks import LocationState, LocationTask, SteeringState, SteeringTask

DT = 1.0 / 30.0


def yaw(angle):
    return quat.from_axis_angle(jnp.array([0.0, 0.0, 1.0]), jnp.float32(angle))


def test_location_obs_is_the_target_in_the_heading_frame():
    task = LocationTask(LocationConfig())
    state = LocationState(target=jnp.array([1.0, 3.0]), change_time=jnp.float32(5.0))
    # Root at (1, 1) facing +y (yaw 90 deg): the target 2 m along +y is 2 m straight ahead (+x).
    obs = task.obs(state, jnp.array([1.0, 1.0, 0.9]), yaw(math.pi / 2))
    np.testing.assert_allclose(obs, [2.0, 0.0], atol=1e-6)


def test_location_reward_by_hand():
    task = LocationTask(LocationConfig())
    state = LocationState(target=jnp.array([3.0, 4.0]), change_time=jnp.float32(5.0))
    prev, root = jnp.array([0.0, 0.0, 0.9]), jnp.array([0.018, 0.024, 0.9])  # 0.9 m/s toward the target
    # Facing +x: cos(angle to target) = 3/5.
    r = task.reward(state, prev, root, yaw(0.0), DT)
    d = np.array([3.0 - 0.018, 4.0 - 0.024])
    e_pos = d @ d
    u = d / np.sqrt(e_pos)
    speed = u @ (np.array([0.018, 0.024]) / DT)
    expected = 0.5 * np.exp(-0.5 * e_pos) + 0.4 * np.exp(-4.0 * (1.0 - speed) ** 2) + 0.1 * max(0.0, u @ [1.0, 0.0])
    np.testing.assert_allclose(r, expected, rtol=1e-5)

    # Moving away: no velocity reward. Facing away: no facing reward.
    r_away = task.reward(state, root, prev, yaw(math.pi), DT)
    d0 = np.array([3.0, 4.0])
    np.testing.assert_allclose(r_away, 0.5 * np.exp(-0.5 * d0 @ d0), rtol=1e-5)


def test_location_reward_near_target_counts_velocity_and_facing_as_met():
    task = LocationTask(LocationConfig())
    state = LocationState(target=jnp.array([0.5, 0.0]), change_time=jnp.float32(5.0))
    root = jnp.array([0.0, 0.0, 0.9])  # squared distance 0.25 < 0.5
    r = task.reward(state, root, root, yaw(math.pi), DT)  # standing still, facing away
    np.testing.assert_allclose(r, 0.5 * np.exp(-0.5 * 0.25) + 0.4 + 0.1, rtol=1e-6)


def test_location_targets_redraw_on_the_timer_and_stay_in_range():
    cfg = LocationConfig()
    task = LocationTask(cfg)
    root = jnp.array([2.0, -1.0, 0.9])
    states = jax.vmap(lambda k: task.reset(k, root))(jax.random.split(jax.random.PRNGKey(0), 2000))
    dist = np.linalg.norm(np.asarray(states.target) - [2.0, -1.0], axis=-1)
    assert dist.min() >= 0.0 and dist.max() <= cfg.tar_dist_max + 1e-5
    change = np.asarray(states.change_time)
    assert change.min() >= cfg.tar_change_time_min and change.max() <= cfg.tar_change_time_max
    s = jax.tree.map(lambda x: x[0], states)
    before = task.update(jax.random.PRNGKey(1), s, s.change_time - DT, root)
    np.testing.assert_array_equal(before.target, s.target)  # not yet
    after = task.update(jax.random.PRNGKey(1), s, s.change_time, root)
    assert not np.allclose(after.target, s.target)
    assert cfg.tar_change_time_min <= float(after.change_time - s.change_time) <= cfg.tar_change_time_max


def test_steering_obs_by_hand():
    task = SteeringTask(SteeringConfig())
    state = SteeringState(direction=jnp.array([0.0, 1.0]), speed=jnp.float32(1.5),
                          facing=jnp.array([-1.0, 0.0]), change_time=jnp.float32(4.0))
    obs = task.obs(state, jnp.array([5.0, 5.0, 0.9]), yaw(math.pi / 2))  # facing +y
    np.testing.assert_allclose(obs, [1.0, 0.0, 1.5, 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("vel_scale", [0.5, 2.0])
def test_steering_reward_by_hand(vel_scale):
    task = SteeringTask(SteeringConfig(vel_scale=vel_scale))
    state = SteeringState(direction=jnp.array([1.0, 0.0]), speed=jnp.float32(1.5),
                          facing=jnp.array([0.0, 1.0]), change_time=jnp.float32(4.0))
    prev = jnp.array([0.0, 0.0, 0.9])
    root = prev + jnp.array([1.2, 0.3, 0.0]) * DT  # velocity (1.2, 0.3)
    facing = math.pi / 4
    r = task.reward(state, prev, root, yaw(facing), DT)
    err = (1.5 - 1.2) ** 2 + 0.3 ** 2
    expected = 0.7 * np.exp(-vel_scale * err) + 0.3 * max(0.0, math.sin(facing))
    np.testing.assert_allclose(r, expected, rtol=1e-5)
    # Moving against the target direction earns no velocity reward.
    r_back = task.reward(state, root, prev, yaw(facing), DT)
    np.testing.assert_allclose(r_back, 0.3 * math.sin(facing), rtol=1e-5)


def test_steering_draws_follow_the_config():
    cfg = SteeringConfig(rand_face_dir=True, tar_speed_min=1.4, tar_speed_max=1.7)
    task = SteeringTask(cfg)
    states = jax.vmap(lambda k: task.reset(k, jnp.zeros(3)))(jax.random.split(jax.random.PRNGKey(0), 2000))
    speed = np.asarray(states.speed)
    assert speed.min() >= 1.4 and speed.max() <= 1.7
    np.testing.assert_allclose(np.linalg.norm(np.asarray(states.direction), axis=-1), 1.0, atol=1e-6)
    # Independent facing: it differs from the direction; without rand_face_dir it equals it.
    assert np.mean(np.abs(np.asarray(states.facing) - np.asarray(states.direction)).sum(-1) > 1e-3) > 0.9
    same = SteeringTask(SteeringConfig()).reset(jax.random.PRNGKey(3), jnp.zeros(3))
    np.testing.assert_array_equal(same.facing, same.direction)
    change = np.asarray(states.change_time)
    assert change.min() >= cfg.tar_change_time_min and change.max() <= cfg.tar_change_time_max


def test_location_stats_by_hand():
    from amp_jax.eval.evaluate import location_stats

    # One env, 8 steps, segments [0..3] and [4..7]: the first target is reached at its 3rd step,
    # the second never.
    distance = np.array([[2.0], [1.0], [0.4], [0.3], [5.0], [4.0], [3.0], [2.0]])
    segment_end = np.zeros((8, 1), bool)
    segment_end[3] = True
    stats = location_stats(distance, segment_end, dt=0.1)
    assert stats["location_success_rate"] == 0.5
    np.testing.assert_allclose(stats["location_mean_time_to_reach"], 0.3)


def test_steering_metrics_by_hand():
    task = SteeringTask(SteeringConfig())
    state = SteeringState(direction=jnp.array([1.0, 0.0]), speed=jnp.float32(2.0),
                          facing=jnp.array([0.0, 1.0]), change_time=jnp.float32(4.0))
    prev = jnp.array([0.0, 0.0, 0.9])
    m = task.metrics(state, prev, prev + jnp.array([1.0, 0.0, 0.0]) * DT, yaw(0.0), DT)
    np.testing.assert_allclose(m["steering_velocity_error"], 1.0, rtol=1e-5)
    np.testing.assert_allclose(m["steering_facing_error"], math.pi / 2, rtol=1e-5)
