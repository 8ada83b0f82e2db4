"""Mirror images of clips (amp_jax.motion_tools.mirror) and the humanoid locomotion dataset built from them."""

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from amp_jax.characters.kinematics import dof_to_joint_rot, to_qpos
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip, load_clip, load_motion_set
from amp_jax.motion_tools.mirror import dof_mirror_map, mirror_clip

MOTIONS = Path(__file__).resolve().parent.parent / "motions" / "humanoid"
DATASET = MOTIONS / "dataset_humanoid_locomotion.yaml"
M = np.diag([1.0, -1.0, 1.0])
LOCOMOTION = ("humanoid_walk", "humanoid_run", "humanoid_walker_forward", "humanoid_walker_turn_left0",
              "humanoid_walker_turn_left1", "humanoid_walker_turn_right0", "humanoid_walker_turn_right1")


def _clip(name, humanoid):
    return load_clip(MOTIONS / f"{name}.npz", humanoid.layout.num_dof)


def _assert_same_clip(a, b, atol=0.0):
    assert a.fps == b.fps and a.loop == b.loop and a.character == b.character and a.dof_names == b.dof_names
    np.testing.assert_allclose(a.root_pos, b.root_pos, atol=atol, rtol=0)
    np.testing.assert_allclose(a.dof_pos, b.dof_pos, atol=atol, rtol=0)
    # Quaternions q and -q are the same rotation.
    sign = np.where(np.sum(a.root_rot * b.root_rot, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    np.testing.assert_allclose(a.root_rot, sign * b.root_rot, atol=atol, rtol=0)


def _world_frames(character, clip):
    """World positions [N, B, 3] and rotation matrices [N, B, 3, 3] of the bodies, by MuJoCo."""
    layout, model = character.layout, character.mj_model
    qpos = np.asarray(to_qpos(layout, jnp.asarray(clip.root_pos), jnp.asarray(clip.root_rot),
                              dof_to_joint_rot(layout, jnp.asarray(clip.dof_pos))), np.float64)
    data = mujoco.MjData(model)
    pos, rot = [], []
    for q in qpos:
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        pos.append(data.xpos[1:].copy())
        rot.append(data.xmat[1:].reshape(-1, 3, 3).copy())
    return np.stack(pos), np.stack(rot)


def _heading_change(clip):
    q = clip.root_rot.astype(np.float64)
    forward = Rotation.from_quat(q[:, [1, 2, 3, 0]]).apply([1.0, 0.0, 0.0])
    yaw = np.unwrap(np.arctan2(forward[:, 1], forward[:, 0]))
    return np.degrees(yaw[-1] - yaw[0])


def test_dof_map_of_the_humanoid(humanoid):
    layout = humanoid.layout
    source, sign = dof_mirror_map(layout)
    names = layout.dof_names
    expect = {  # DoF: (its source DoF, sign)
        "abdomen_x": ("abdomen_x", -1), "abdomen_y": ("abdomen_y", 1), "abdomen_z": ("abdomen_z", -1),
        "right_shoulder_x": ("left_shoulder_x", -1), "left_shoulder_y": ("right_shoulder_y", 1),
        "right_elbow": ("left_elbow", -1), "left_elbow": ("right_elbow", -1),  # hinges about z
        "right_knee": ("left_knee", 1), "left_knee": ("right_knee", 1),  # hinges about y
        "left_ankle_z": ("right_ankle_z", -1), "right_hip_y": ("left_hip_y", 1),
    }
    for dof, (src, s) in expect.items():
        k = names.index(dof)
        assert (names[source[k]], sign[k]) == (src, s), dof
    assert sorted(source) == list(range(layout.num_dof))  # a permutation


@pytest.mark.parametrize("name", ["humanoid_walk", "humanoid_walker_turn_left0"])
def test_mirroring_twice_is_the_identity(humanoid, name):
    clip = _clip(name, humanoid)
    twice = mirror_clip(mirror_clip(clip, humanoid.layout), humanoid.layout)
    _assert_same_clip(twice, clip, atol=1e-7)


def test_mirroring_twice_is_the_identity_for_any_pose(humanoid):
    layout = humanoid.layout
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 4))
    clip = Clip(fps=30.0, loop=False, root_pos=rng.normal(size=(5, 3)).astype(np.float32),
                root_rot=(q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32),
                dof_pos=rng.uniform(-1, 1, size=(5, layout.num_dof)).astype(np.float32))
    once = mirror_clip(clip, layout)
    assert not np.allclose(once.dof_pos, clip.dof_pos)
    _assert_same_clip(mirror_clip(once, layout), clip, atol=1e-7)


def test_mirrored_walk_is_the_reflected_walk(humanoid):
    """Every body (head, hands and feet among them) moves as its twin's reflection: y negated, sides swapped."""
    layout = humanoid.layout
    clip = _clip("humanoid_walk", humanoid)
    pos, rot = _world_frames(humanoid, clip)
    mpos, mrot = _world_frames(humanoid, mirror_clip(clip, layout))
    names = layout.body_names
    twin = [names.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")) for n in names]
    for body in ("head", "right_hand", "left_hand", "right_foot", "left_foot"):
        i = names.index(body)
        np.testing.assert_allclose(mpos[:, i], pos[:, twin[i]] @ M, atol=1e-5, rtol=0, err_msg=body)
    np.testing.assert_allclose(mpos, pos[:, twin] @ M, atol=1e-5, rtol=0)
    np.testing.assert_allclose(mrot, M @ rot[:, twin] @ M, atol=1e-5, rtol=0)
    # The feet really do swap: the mirrored left foot is on the left (+y) of the mirrored right foot on average.
    assert np.mean(mpos[:, names.index("left_foot"), 1] - mpos[:, names.index("right_foot"), 1]) > 0.1


@pytest.mark.parametrize("name, degrees", [("humanoid_walker_turn_left0", 30.0), ("humanoid_walker_turn_right0", -99.2)])
def test_mirror_turns_the_other_way(humanoid, name, degrees):
    clip = _clip(name, humanoid)
    mirror = mirror_clip(clip, humanoid.layout)
    assert _heading_change(clip) == pytest.approx(degrees, abs=1.0)
    assert _heading_change(mirror) == pytest.approx(-degrees, abs=1.0)
    assert _heading_change(_clip(f"{name}_mirror", humanoid)) == pytest.approx(-degrees, abs=1.0)


def test_locomotion_dataset(humanoid):
    clips, weights, names = load_motion_set(DATASET, num_dof=28)
    expected = {}
    for name in LOCOMOTION:
        w = 3.0 if name in ("humanoid_walk", "humanoid_run") else 1.0
        expected[name] = expected[f"{name}_mirror"] = w
    assert len(clips) == 14 and dict(zip(names, weights)) == expected and sum(weights) == 22.0
    by_name = dict(zip(names, clips))
    for name in LOCOMOTION:
        # Each committed mirror is exactly the mirror of its committed original.
        _assert_same_clip(by_name[f"{name}_mirror"], mirror_clip(by_name[name], humanoid.layout))
        assert by_name[name].loop and by_name[name].character == "humanoid"


def _renamed(layout, old, new):
    return dataclasses.replace(layout, body_names=tuple(new if n == old else n for n in layout.body_names))


def test_unpaired_left_body_raises(humanoid):
    layout = _renamed(humanoid.layout, "right_hand", "rhand")
    clip = _clip("humanoid_walk", humanoid)
    with pytest.raises(InputError, match="'left_hand' has no mirror twin 'right_hand'"):
        mirror_clip(clip, layout)


def test_asymmetric_character_raises(humanoid):
    layout = humanoid.layout
    body_pos = layout.body_pos.copy()
    body_pos[layout.body_names.index("left_thigh"), 1] += 0.02
    clip = _clip("humanoid_walk", humanoid)
    with pytest.raises(InputError, match="not mirror symmetric"):
        mirror_clip(clip, dataclasses.replace(layout, body_pos=body_pos))
    axis = layout.joint_axis.copy()
    axis[layout.body_names.index("left_shin")] = [1.0, 0.0, 0.0]
    with pytest.raises(InputError, match="hinge axis"):
        mirror_clip(clip, dataclasses.replace(layout, joint_axis=axis))


def test_wrong_width_raises(humanoid):
    clip = _clip("humanoid_walk", humanoid)
    with pytest.raises(InputError, match="27 DoFs"):
        mirror_clip(dataclasses.replace(clip, dof_pos=clip.dof_pos[:, :27], dof_names=()), humanoid.layout)
