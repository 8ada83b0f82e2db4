"""amp_jax.eval.motion_matching (pose features, weighting, stays-on / covers the data) and the spinkick's
kick measures, on constructed pose sequences: no training, no compiled rollout."""

import types

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from amp_jax import quat
from amp_jax.catalog import CONFIG_DIR
from amp_jax.characters import kinematics
from amp_jax.config import load_config
from amp_jax.envs.amp_env import NULL, TIME
from amp_jax.eval import motion_matching
from amp_jax.eval import report as eval_report
from amp_jax.eval.evaluate import EvalRollouts
from amp_jax.training.build import build_env

DT = 1.0 / 30.0


@pytest.fixture(scope="module")
def spinkick():
    """The amp_humanoid environment (character + spinkick library) and its motion-matching reference."""
    env = build_env(load_config(CONFIG_DIR / "amp_humanoid.yaml"))
    reference = motion_matching.library_reference(env.layout, env.motions, DT)
    return types.SimpleNamespace(env=env, layout=env.layout, motions=env.motions, reference=reference)


def _replay(motions, times):
    """The spinkick clip's states at times [...] (a looping clip carries on turning)."""
    times = jnp.asarray(times, jnp.float32)
    return motions.state(jnp.zeros(times.shape, jnp.int32), times)


def _features(layout, s):
    return motion_matching.pose_features(layout, s.root_pos, s.root_rot, s.joint_rot)


def _qpos(layout, s):
    return np.asarray(kinematics.to_qpos(layout, s.root_pos, s.root_rot, s.joint_rot))


# -- the score -------------------------------------------------------------------------------------
def test_replaying_the_clip_stays_on_the_data_and_covers_it(spinkick):
    length = float(spinkick.motions.clip_length[0])
    on_grid = _features(spinkick.layout, _replay(spinkick.motions, np.arange(0.0, length, DT)))
    scores = motion_matching.matching_scores(spinkick.reference, on_grid)
    assert scores["stay"] < 1e-5 and scores["cover"] == 1.0
    # Later cycles and reference-state resets fall between the reference's frames: still close.
    rng = np.random.default_rng(0)
    starts = rng.uniform(0.0, length, 6)
    off_grid = _features(spinkick.layout, _replay(spinkick.motions, starts[:, None] + DT * np.arange(45)))
    scores = motion_matching.matching_scores(spinkick.reference, off_grid)
    assert scores["stay"] < 0.05 and scores["cover"] == 1.0


def test_lying_down_is_far_from_the_data(spinkick):
    """The clip's joint angles on a character lying on its back (pitched 90 degrees, pelvis 15 cm up)."""
    s = _replay(spinkick.motions, np.arange(0.0, 2.0, DT))
    pitch = quat.from_axis_angle(jnp.array([0.0, 1.0, 0.0]), jnp.float32(-np.pi / 2))
    lying = s.replace(root_rot=quat.mul(pitch, s.root_rot), root_pos=s.root_pos.at[:, 2].set(0.15))
    scores = motion_matching.matching_scores(spinkick.reference, _features(spinkick.layout, lying))
    assert scores["stay"] > 2.0  # further than two random reference poses (sqrt 2)
    assert scores["cover"] == 0.0


def test_standing_still_stays_on_the_data_but_covers_little(spinkick):
    """The clip's first pose held: on the data, but near only the few reference poses around it."""
    still = _features(spinkick.layout, _replay(spinkick.motions, np.zeros(100)))
    scores = motion_matching.matching_scores(spinkick.reference, still)
    assert scores["stay"] < 1e-4
    assert 0.0 < scores["cover"] < 0.15
    # cover is the fraction of reference poses within NEAR of that one pose, by the documented d.
    d = np.linalg.norm(spinkick.reference.features - spinkick.reference.scaled(still[0]), axis=1)
    assert scores["cover"] == pytest.approx(np.mean(d <= motion_matching.NEAR))


def test_weighting_by_hand(spinkick):
    """Reference: one pose and the same pose 0.2 m higher. Only root_height varies (RMS spread 0.1 m);
    d between the two is sqrt(1/4 * (0.2 / 0.1)^2) = 1; a pose 0.05 m above the first is 0.25 from
    it and 0.75 from the other."""
    layout = spinkick.layout
    s = _replay(spinkick.motions, np.zeros(1))
    lift = lambda h: _features(layout, s.replace(root_pos=s.root_pos + jnp.array([0.0, 0.0, h])))  # noqa: E731
    ref = motion_matching.matching_reference(layout, np.concatenate([lift(0.0), lift(0.2)]))
    assert ref.spread["root_height"] == pytest.approx(0.1, rel=1e-5)
    moving_joints = int(np.sum(layout.joint_kind[1:] != 0))
    assert ref.spread["joint_rot"] == pytest.approx(0.1 * np.sqrt(moving_joints))  # floors
    assert ref.spread["root_tilt"] == pytest.approx(0.1)
    assert ref.spread["key_pos"] == pytest.approx(0.05 * np.sqrt(layout.num_key_bodies))
    assert np.linalg.norm(ref.features[1] - ref.features[0]) == pytest.approx(1.0, rel=1e-5)
    scores = motion_matching.matching_scores(ref, lift(0.05))
    assert scores["stay"] == pytest.approx(0.25, rel=1e-4)
    assert scores["cover"] == 0.5


def test_nearest_distances_in_blocks_equal_brute_force():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2 * motion_matching._CHUNK + 7, 5)), rng.normal(size=(300, 5))
    full = np.linalg.norm(a[:, None] - b[None], axis=-1)
    a_to_b, b_to_a = motion_matching.nearest_distances(a, b)
    np.testing.assert_allclose(a_to_b, full.min(axis=1), atol=1e-9)
    np.testing.assert_allclose(b_to_a, full.min(axis=0), atol=1e-9)


# -- the features, against MuJoCo ------------------------------------------------------------------
def test_pose_features_match_mujoco_forward_kinematics(spinkick, humanoid):
    """Random poses (random root rotations: tilted and turned), features of their qpos, against
    MuJoCo's body frames with the heading frame built by hand."""
    layout, model = spinkick.layout, humanoid.mj_model
    rng = np.random.default_rng(2)
    n = 4
    dof = rng.uniform(-1.0, 1.0, (n, layout.num_dof)).astype(np.float32)
    root_rot = Rotation.random(n, random_state=3).as_quat()[:, [3, 0, 1, 2]].astype(np.float32)
    root_pos = rng.uniform(-1.0, 1.0, (n, 3)).astype(np.float32) + np.float32([0.0, 0.0, 1.0])
    qpos = np.asarray(kinematics.to_qpos(layout, jnp.asarray(root_pos), jnp.asarray(root_rot),
                                         kinematics.dof_to_joint_rot(layout, jnp.asarray(dof))))
    features = np.asarray(motion_matching.qpos_pose_features(layout, jnp.asarray(qpos)))
    part = motion_matching.component_slices(layout)
    data = mujoco.MjData(model)
    for i in range(n):
        data.qpos[:] = qpos[i]
        mujoco.mj_kinematics(model, data)
        rmat = data.xmat[1:].reshape(-1, 3, 3)  # layout body b is MuJoCo body b + 1
        yaw = np.arctan2(rmat[0, 1, 0], rmat[0, 0, 0])
        to_heading = Rotation.from_euler("z", -yaw).as_matrix()
        joints = []
        for b in range(1, layout.num_bodies):
            local = Rotation.from_quat(model.body_quat[b + 1][[1, 2, 3, 0]]).as_matrix()
            joint = local.T @ rmat[layout.parents[b]].T @ rmat[b]
            joints.append(np.concatenate([joint[:, 0], joint[:, 2]]))
        tilt = to_heading @ rmat[0]
        key = (data.xpos[1:][layout.key_body_ids] - data.xpos[1]) @ to_heading.T
        np.testing.assert_allclose(features[i, part["joint_rot"]], np.concatenate(joints), atol=2e-5)
        np.testing.assert_allclose(features[i, part["root_tilt"]], np.concatenate([tilt[:, 0], tilt[:, 2]]), atol=2e-5)
        np.testing.assert_allclose(features[i, part["root_height"]], [data.xpos[1, 2]], atol=1e-6)
        np.testing.assert_allclose(features[i, part["key_pos"]], key.ravel(), atol=2e-5)


# -- the kick --------------------------------------------------------------------------------------
def _rollouts(qpos):
    """One environment's single episode of poses qpos [T, nq], ending by timeout."""
    t = len(qpos)
    done = np.full((t, 1), NULL)
    done[-1] = TIME
    zeros = np.zeros((t, 1), np.float32)
    return EvalRollouts(np.concatenate([qpos, qpos[-1:]])[:, None], None, done, zeros, zeros, {}, np.zeros((t, 1), bool),
                        None, [(0, 0, t - 1)])


def test_kick_of_the_replayed_clip_is_the_clips_own(spinkick, humanoid):
    """The clip's values against MuJoCo's right-foot height and scipy's yaw on the clip at the control
    rate; the clip replayed for three cycles kicks like it."""
    layout, model = spinkick.layout, humanoid.mj_model
    length = float(spinkick.motions.clip_length[0])
    clip_qpos = _qpos(layout, _replay(spinkick.motions, np.arange(int(np.floor(length / DT + 1e-6)) + 1) * DT))
    data = mujoco.MjData(model)
    foot = []
    for q in clip_qpos:
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        foot.append(data.xpos[model.body("right_foot").id, 2])
    yaw = np.unwrap(Rotation.from_quat(clip_qpos[:, [4, 5, 6, 3]]).as_euler("ZYX")[:, 0])

    replay = _qpos(layout, _replay(spinkick.motions, np.arange(0.0, 3 * length, DT)))
    kick = eval_report.kick_report(spinkick.env, _rollouts(replay))
    assert kick["foot"] == "right_foot"
    assert kick["clip_peak_height"] == pytest.approx(max(foot), abs=1e-5)
    assert kick["clip_spin"] == pytest.approx(yaw.max() - yaw.min(), abs=1e-4)
    assert kick["clip_spin"] == pytest.approx(2 * np.pi, abs=0.01)  # the spinkick turns once
    assert kick["peak_height_mean"] == pytest.approx(kick["clip_peak_height"], abs=0.02)
    assert kick["spin_mean"] == pytest.approx(kick["clip_spin"], abs=0.05)
    assert kick["kick_rate"] == 1.0


def test_no_kick_when_standing_still_or_too_short(spinkick):
    layout = spinkick.layout
    still = _qpos(layout, _replay(spinkick.motions, np.zeros(90)))
    kick = eval_report.kick_report(spinkick.env, _rollouts(still))
    assert kick["kick_rate"] == 0.0 and kick["spin_mean"] == pytest.approx(0.0, abs=1e-5)
    assert kick["peak_height_mean"] < 0.2  # the foot stays near the floor
    # An episode no longer than a clip length is measured as no kick (its start is the reset's).
    short = _qpos(layout, _replay(spinkick.motions, np.arange(0.0, 1.0, DT)))
    kick = eval_report.kick_report(spinkick.env, _rollouts(short))
    assert kick["kick_rate"] == 0.0 and kick["peak_height_mean"] is None


def test_spin_is_the_largest_heading_range_in_a_window():
    heading = np.array([0.0, 0.5, 1.0, 3.0, 3.1, -3.1, -3.0])  # past pi it wraps; unwrapped it keeps rising
    height = np.array([0.1, 0.4, 0.2, 0.1, 0.1, 0.1, 0.1])
    peak, spin = eval_report.spin_kick_measures(height, heading, window=3)
    assert peak == 0.4
    assert spin == pytest.approx(2.5)  # frames 1..3: 0.5 -> 3.0
    _, spin = eval_report.spin_kick_measures(height, heading, window=7)
    assert spin == pytest.approx(2 * np.pi - 3.0)  # 0 -> -3.0 + 2 pi


# -- the bar ---------------------------------------------------------------------------------------
def test_the_replayed_clip_reaches_the_bar_and_standing_still_does_not(spinkick):
    """The bar (eval_report.bar_report) of the clip replayed for three cycles: on the data, covering it,
    kicking like it; standing still in its first pose: on the data, but covering little and not kicking."""
    layout, motions, reference = spinkick.layout, spinkick.motions, spinkick.reference
    step = motion_matching.control_step_distance(layout, motions, DT, reference)
    assert 0.15 < step < 0.35  # the module docstring's "about 0.25 in the fast spinkick"
    length = float(motions.clip_length[0])
    no_falls = {"fall_rate": 0.0}
    for times, reached in ((np.arange(0.0, 3 * length, DT), True), (np.zeros(3 * int(length / DT)), False)):
        s = _replay(motions, times)
        mm = motion_matching.matching_scores(reference, _features(layout, s))
        kick = eval_report.kick_report(spinkick.env, _rollouts(_qpos(layout, s)))
        bar = eval_report.bar_report(no_falls, mm, step, kick)
        assert bar["passed"] == reached, bar
        assert bar["measures"]["mm_stay"]["passed"]  # both stay on the data
        assert bar["measures"]["kick_spin_mean"]["passed"] == reached
    falling = eval_report.bar_report({"fall_rate": 0.06}, {"stay": 0.0, "cover": 1.0}, step, None)
    assert not falling["passed"] and [k for k, m in falling["measures"].items() if not m["passed"]] == ["fall_rate"]
