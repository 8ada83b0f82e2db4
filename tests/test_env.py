"""amp_jax.envs.amp_env.AmpEnv on MJX with the humanoid and the shipped spin-kick clip: reference-state
initialisation (reference §4.5-4.6), one step, timeouts, early termination and physics faults (§4.7).

Compiling `step` on the CPU takes most of this file's time (~50 s), so it is compiled once: the jitted
step takes the episode length in control steps as an argument (the only thing that differs between
EnvConfig() and EnvConfig(episode_length=2/30) inside `step`), and every test reuses it.
"""

import copy
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from amp_jax.characters import kinematics
from amp_jax.characters.character import BALL, HINGE
from amp_jax.config import EnvConfig
from amp_jax.envs import observations
from amp_jax.envs.amp_env import FAIL, NULL, TIME, AmpEnv
from amp_jax.motion.clip import load_clip
from amp_jax.motion.library import build_motion_library

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIP_FILE = REPO_ROOT / "motions/humanoid/humanoid_spinkick.npz"
N_HIST = 10


@pytest.fixture(scope="module")
def clip(humanoid):
    return load_clip(CLIP_FILE, humanoid.layout.num_dof)


@pytest.fixture(scope="module")
def motions(humanoid, clip):
    return build_motion_library(humanoid.layout, [clip])


@pytest.fixture(scope="module")
def env(humanoid, motions):
    return AmpEnv(humanoid, motions, EnvConfig())


@pytest.fixture(scope="module")
def reset_fn(env):
    return jax.jit(env.reset)


@pytest.fixture(scope="module")
def step_fn(env):
    """env.step compiled once, with the episode length (control steps) as a traced argument."""

    def step(state, action, episode_steps):
        e = copy.copy(env)
        e.episode_steps = episode_steps
        return e.step(state, action)

    return jax.jit(step)


@pytest.fixture(scope="module")
def zero_action(env):
    return jnp.zeros(env.action_size, jnp.float32)


def np_tree(x):
    return jax.tree.map(np.asarray, x)


# ---------------------------------------------------------------------------------------------
# Independent (numpy / scipy) evaluation of the clip, reference §2.3-2.4


def clip_lookup(clip, t):
    """(i0, i1, alpha, cycles) of a time in a clip."""
    n = clip.num_frames
    length = (n - 1) / clip.fps
    if clip.loop:
        cycles = np.floor(t / length)
        phase = t / length - cycles
    else:
        cycles = 0.0
        phase = t / length
    pos = np.clip(phase, 0.0, 1.0) * (n - 1)
    i0 = min(int(np.floor(pos)), n - 1)
    return i0, min(i0 + 1, n - 1), pos - i0, cycles


def ref_root_pos(clip, t):
    i0, i1, a, cycles = clip_lookup(clip, t)
    p = clip.root_pos.astype(np.float64)
    delta = (p[-1] - p[0]) * np.array([1.0, 1.0, 0.0]) if clip.loop else np.zeros(3)
    return (1 - a) * p[i0] + a * p[i1] + cycles * delta


def check_qpos_against_clip(layout, clip, qpos, t):
    """Root position, hinge angles (linear) and ball-joint quaternions (scipy slerp) of qpos at t."""
    qpos = np.asarray(qpos, np.float64)
    i0, i1, a, _ = clip_lookup(clip, t)
    np.testing.assert_allclose(qpos[:3], ref_root_pos(clip, t), atol=1e-4)
    root = Slerp([0.0, 1.0], Rotation.from_quat(clip.root_rot[[i0, i1]][:, [1, 2, 3, 0]].astype(np.float64)))([a])
    root_q = root.as_quat()[0, [3, 0, 1, 2]]
    np.testing.assert_allclose(qpos[3:7] * np.sign(np.dot(qpos[3:7], root_q)), root_q, atol=1e-4)
    dof = clip.dof_pos.astype(np.float64)
    for j, kind in enumerate(layout.joint_kind):
        s, adr = layout.dof_start[j], layout.qpos_adr[j]
        if j > 0 and kind == HINGE:
            np.testing.assert_allclose(qpos[adr], (1 - a) * dof[i0, s] + a * dof[i1, s], atol=1e-4)
        elif j > 0 and kind == BALL:
            r = Slerp([0.0, 1.0], Rotation.from_rotvec(dof[[i0, i1], s:s + 3]))([a])
            q = r.as_quat()[0, [3, 0, 1, 2]]
            got = qpos[adr:adr + 4]
            np.testing.assert_allclose(got * np.sign(np.dot(got, q)), q, atol=1e-4)


def reset_sample(motions, key):
    """The clip and start time env.reset draws from `key` (same splits as AmpEnv.reset)."""
    _, k_clip, k_time = jax.random.split(key, 3)
    clip_id = motions.sample_clips(k_clip)
    return clip_id, motions.sample_times(k_time, clip_id)


def reset_keys(motions, env):
    """Two seeds: one whose history window lies inside the clip, one whose window wraps before t=0."""
    inside = wrapping = None
    span = (N_HIST - 1) * env.control_dt
    for seed in range(200):
        _, t0 = reset_sample(motions, jax.random.key(seed))
        if inside is None and float(t0) > span + 0.05:
            inside = seed
        if wrapping is None and float(t0) < span - 0.05:
            wrapping = seed
        if inside is not None and wrapping is not None:
            return [inside, wrapping]
    raise AssertionError("no suitable seeds")


# ---------------------------------------------------------------------------------------------
# Reset


def test_sizes(env):
    assert env.obs_size == 140 and env.disc_obs_size == 1420 and env.action_size == 28
    assert env.substeps == 4 and env.episode_steps == 300
    assert env.control_dt == pytest.approx(1 / 30)


def test_reset_matches_reference(humanoid, clip, motions, env, reset_fn):
    layout = humanoid.layout
    assert clip.loop  # the spin-kick wraps: a window before t=0 carries a negative loop offset
    for seed in reset_keys(motions, env):
        key = jax.random.key(seed)
        state = reset_fn(key)
        clip_id, t0 = reset_sample(motions, key)
        t0f = float(t0)
        assert 0.0 <= t0f < float(motions.clip_length[0])
        ref = motions.state(clip_id, t0)
        qpos = np.asarray(state.data.qpos)
        np.testing.assert_allclose(qpos, np.asarray(kinematics.to_qpos(layout, ref.root_pos, ref.root_rot, ref.joint_rot)),
                                   atol=1e-5)
        np.testing.assert_allclose(np.asarray(state.data.qvel), np.asarray(
            kinematics.to_qvel(ref.root_rot, ref.root_vel, ref.root_ang_vel, ref.dof_vel)), atol=1e-5)
        check_qpos_against_clip(layout, clip, qpos, t0f)
        # Velocities: forward differences of frame i0 (independent, for the root and the hinges).
        i0, _, _, _ = clip_lookup(clip, t0f)
        i0 = min(i0, clip.num_frames - 2)
        qvel = np.asarray(state.data.qvel)
        np.testing.assert_allclose(qvel[:3], clip.fps * (clip.root_pos[i0 + 1].astype(np.float64) - clip.root_pos[i0]),
                                   rtol=1e-4, atol=1e-3)
        for j, kind in enumerate(layout.joint_kind):
            if j > 0 and kind == HINGE:
                s = layout.dof_start[j]
                np.testing.assert_allclose(qvel[6 + s], clip.fps * (float(clip.dof_pos[i0 + 1, s]) - float(clip.dof_pos[i0, s])),
                                           rtol=1e-4, atol=1e-3)
        assert int(state.step_count) == 0

        # History: the reference at t0 - 9 dt, ..., t0, oldest first.
        hist = np_tree(state.history)
        assert hist.root_pos.shape == (N_HIST, 3) and hist.joint_rot.shape == (N_HIST, 15, 4)
        for k in range(N_HIST):
            t = t0f + env.control_dt * (k - (N_HIST - 1))
            np.testing.assert_allclose(hist.root_pos[k], ref_root_pos(clip, t), atol=1e-4)
        window = np_tree(env.motion_window(clip_id, t0))
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), hist, window)

        # Observation: policy obs of the newest history frame, and of the simulator's own reading.
        newest = jax.tree.map(lambda x: x[-1], state.history)
        obs = np.asarray(state.obs)
        assert obs.shape == (140,)
        np.testing.assert_allclose(obs, np.asarray(observations.policy_obs(newest, env.cfg.global_obs)), atol=1e-5)
        sim_frame, _ = env.read_frame(state.data)
        np.testing.assert_allclose(obs, np.asarray(observations.policy_obs(sim_frame, env.cfg.global_obs)), atol=1e-4)
        np.testing.assert_allclose(np.asarray(sim_frame.key_pos), hist.key_pos[-1], atol=1e-5)


def test_reset_without_rand_reset_starts_at_zero(humanoid, clip, motions):
    env0 = AmpEnv(humanoid, motions, EnvConfig(rand_reset=False))
    state = jax.jit(env0.reset)(jax.random.key(7))
    qpos = np.asarray(state.data.qpos)
    np.testing.assert_allclose(qpos[:3], clip.root_pos[0], atol=1e-5)
    check_qpos_against_clip(humanoid.layout, clip, qpos, 0.0)
    hist = np_tree(state.history)
    for k in range(N_HIST):  # times -9 dt .. 0: wrapped to the clip's end, minus one loop offset
        np.testing.assert_allclose(hist.root_pos[k], ref_root_pos(clip, env0.control_dt * (k - 9)), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Step


@pytest.fixture(scope="module")
def start(reset_fn):
    return reset_fn(jax.random.key(0))


def test_step_zero_action(humanoid, env, start, step_fn, zero_action):
    nxt, out = step_fn(start, zero_action, env.episode_steps)
    next_obs, disc = np.asarray(out.next_obs), np.asarray(out.disc_obs)
    assert next_obs.shape == (140,) and disc.shape == (1420,)
    assert np.all(np.isfinite(next_obs)) and np.all(np.isfinite(disc))
    assert int(out.done) in (NULL, FAIL, TIME)
    assert int(out.done) == NULL  # one step from a reference pose neither falls nor times out
    assert not bool(out.physics_fault) and float(out.reward) == 0.0
    assert int(nxt.step_count) == 1
    # The new observation is that of the simulated frame after the step.
    frame, _ = env.read_frame(nxt.data)
    np.testing.assert_allclose(next_obs, np.asarray(observations.policy_obs(frame, True)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(nxt.obs), next_obs, atol=0)
    # The history shifted by one: the old frames 1..9 then the new frame.
    blocks = disc.reshape(N_HIST, 142)
    old = np_tree(start.history)
    for k in range(N_HIST - 1):
        tn = np.asarray(observations.policy_obs(jax.tree.map(lambda x: x[k + 1], start.history), True))[13:97]
        np.testing.assert_allclose(blocks[k, 9:93], tn, atol=1e-5)
        np.testing.assert_allclose(blocks[k, 108:111], old.root_vel[k + 1], atol=1e-5)
        np.testing.assert_allclose(blocks[k, 0:2], old.root_pos[k + 1, :2] - np.asarray(frame.root_pos)[:2], atol=1e-5)
    np.testing.assert_allclose(blocks[-1, 0:3], [0.0, 0.0, float(frame.root_pos[2])], atol=1e-6)
    np.testing.assert_allclose(np.asarray(nxt.history.root_pos[-1]), np.asarray(nxt.data.qpos[:3]), atol=0)
    np.testing.assert_allclose(np.asarray(nxt.history.root_pos[:-1]), old.root_pos[1:], atol=0)


def test_timeout(humanoid, motions, env, step_fn, zero_action):
    short = AmpEnv(humanoid, motions, EnvConfig(episode_length=2 / 30, rand_reset=False))
    assert short.episode_steps == 2
    assert (short.substeps, short.control_dt) == (env.substeps, env.control_dt)
    state = jax.jit(short.reset)(jax.random.key(1))
    state, out1 = step_fn(state, zero_action, short.episode_steps)
    assert int(out1.done) == NULL and int(state.step_count) == 1
    state, out2 = step_fn(state, zero_action, short.episode_steps)
    assert int(out2.done) == TIME and not bool(out2.physics_fault)
    assert int(state.step_count) == 0  # reset after the timeout


def lying_state(humanoid, start, step_count=0):
    """The character lying on its back along x at root height 0.05: head and torso on the floor."""
    layout = humanoid.layout
    root_pos = jnp.array([0.0, 0.0, 0.05])
    root_rot = jnp.array([np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0])  # 90 deg about y
    joint_rot = jnp.tile(jnp.array([1.0, 0.0, 0.0, 0.0]), (layout.num_bodies, 1))
    qpos = kinematics.to_qpos(layout, root_pos, root_rot, joint_rot)
    body_pos, body_rot = kinematics.forward_kinematics(layout, root_pos, root_rot, joint_rot)
    head = layout.body_names.index("head")
    assert abs(float(body_pos[head, 2]) - 0.05) < 1e-5  # the head lies at floor level
    assert float(kinematics.lowest_fail_geom_height(layout, body_pos, body_rot)) < 0.0
    data = start.data.replace(qpos=qpos, qvel=jnp.zeros_like(start.data.qvel))
    return start.replace(data=data, step_count=jnp.int32(step_count))


@pytest.mark.parametrize("step_count", [0, 299])  # 299: FAIL wins over the timeout
def test_early_termination(humanoid, env, start, step_fn, zero_action, step_count):
    state = lying_state(humanoid, start, step_count)
    nxt, out = step_fn(state, zero_action, env.episode_steps)
    assert int(out.done) == FAIL and not bool(out.physics_fault)
    assert int(nxt.step_count) == 0
    # next_obs is the terminal (lying) observation; the returned state is a fresh reference pose.
    assert float(out.next_obs[0]) < 0.1
    assert float(nxt.data.qpos[2]) > 0.5
    newest = jax.tree.map(lambda x: x[-1], nxt.history)
    np.testing.assert_allclose(np.asarray(nxt.obs), np.asarray(observations.policy_obs(newest, True)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(nxt.history.root_pos[-1]), np.asarray(nxt.data.qpos[:3]), atol=1e-5)


def test_physics_fault(env, start, step_fn, zero_action):
    bad = start.replace(data=start.data.replace(qvel=start.data.qvel.at[10].set(jnp.nan)))
    nxt, out = step_fn(bad, zero_action, env.episode_steps)
    assert int(out.done) == FAIL and bool(out.physics_fault)
    assert np.all(np.isfinite(np.asarray(out.next_obs))) and np.all(np.isfinite(np.asarray(out.disc_obs)))
    assert int(nxt.step_count) == 0
    assert np.all(np.isfinite(np.asarray(nxt.data.qpos))) and np.all(np.isfinite(np.asarray(nxt.data.qvel)))
    assert np.all(np.isfinite(np.asarray(nxt.obs)))


# ---------------------------------------------------------------------------------------------
# root_height_obs = False (not used by the nine cases; reference §4.3 item 1 and §4.5 item 1)


def test_disc_obs_size_without_root_height(humanoid, motions):
    env_nh = AmpEnv(humanoid, motions, EnvConfig(root_height_obs=False))
    demo = jax.eval_shape(env_nh.demo_disc_obs, jax.random.key(0))
    assert demo.shape == (env_nh.disc_obs_size,)


def test_policy_obs_without_root_height(humanoid, motions):
    env_nh = AmpEnv(humanoid, motions, EnvConfig(root_height_obs=False))
    state = jax.eval_shape(env_nh.reset, jax.random.key(0))
    assert state.obs.shape == (139,) and env_nh.obs_size == 139
