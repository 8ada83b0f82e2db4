"""The DeepMimic importer: forward kinematics of the converted spinkick matches the source skeleton's."""

import json
from pathlib import Path

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from amp_jax.characters.kinematics import dof_to_joint_rot, to_qpos
from amp_jax.errors import InputError
from amp_jax.motion.clip import load_clip
from amp_jax.motion_tools.importers.deepmimic import (
    BODY_NAMES,
    deepmimic_body_positions,
    deepmimic_to_humanoid,
    read_deepmimic,
)

SPINKICK = Path("tests/data/humanoid3d_spinkick.txt")


@pytest.fixture(scope="module")
def spinkick(humanoid):
    motion = read_deepmimic(SPINKICK)
    return motion, deepmimic_to_humanoid(motion, humanoid.layout)


def _mujoco_frames(character, clip):
    """MjData after mj_kinematics, one per frame of the clip."""
    layout = character.layout
    qpos = to_qpos(layout, jnp.asarray(clip.root_pos), jnp.asarray(clip.root_rot),
                   dof_to_joint_rot(layout, jnp.asarray(clip.dof_pos)))
    for q in np.asarray(qpos):
        data = mujoco.MjData(character.mj_model)
        data.qpos[:] = q
        mujoco.mj_kinematics(character.mj_model, data)
        yield data


def test_spinkick_metadata(spinkick, humanoid):
    _, clip = spinkick
    assert clip.num_frames == 78 and clip.loop
    assert clip.fps == pytest.approx(1 / 0.016666)
    assert clip.character == "humanoid" and clip.dof_names == humanoid.layout.dof_names


def test_body_positions_match_source_skeleton(spinkick, humanoid):
    motion, clip = spinkick
    model = humanoid.mj_model
    assert tuple(model.body(i + 1).name for i in range(len(BODY_NAMES))) == BODY_NAMES
    expected = deepmimic_body_positions(motion)
    got = np.stack([data.xpos[1:].copy() for data in _mujoco_frames(humanoid, clip)])
    # All 15 bodies, the key bodies (head, hands, feet) among them, within 1 mm in every frame.
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)


def test_committed_clip_is_a_fresh_conversion(spinkick, humanoid):
    _, clip = spinkick
    saved = load_clip("motions/humanoid/humanoid_spinkick.npz", humanoid.layout.num_dof)
    assert saved.fps == pytest.approx(clip.fps) and saved.loop == clip.loop
    assert saved.character == clip.character and saved.dof_names == clip.dof_names
    for key in ("root_pos", "root_rot", "dof_pos"):
        np.testing.assert_allclose(getattr(saved, key), getattr(clip, key), atol=1e-6, rtol=0, err_msg=key)


def _lowest_foot_corner(character, clip):
    model = character.mj_model
    feet = [model.geom(name).id for name in ("right_foot", "left_foot")]
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    lowest = np.inf
    for data in _mujoco_frames(character, clip):
        for g in feet:
            corners = data.geom_xpos[g] + (signs * model.geom_size[g]) @ data.geom_xmat[g].reshape(3, 3).T
            lowest = min(lowest, corners[:, 2].min())
    return lowest


def test_feet_touch_the_floor(spinkick, humanoid):
    _, clip = spinkick
    assert -0.03 <= _lowest_foot_corner(humanoid, clip) <= 0.05


@pytest.mark.parametrize("name", ["walk", "run", "walker_forward", "walker_turn_left0", "walker_turn_left1",
                                  "walker_turn_right0", "walker_turn_right1"])
def test_committed_locomotion_clips_touch_but_do_not_enter_the_floor(humanoid, name):
    """scripts/make_motions.py raises a locomotion clip whose feet go below -1 cm, and grounds the run per frame."""
    for suffix in ("", "_mirror"):
        clip = load_clip(f"motions/humanoid/humanoid_{name}{suffix}.npz", humanoid.layout.num_dof)
        assert clip.num_frames >= 25 and clip.loop
        assert -0.01 <= _lowest_foot_corner(humanoid, clip) <= 0.02, name + suffix


def test_knee_and_elbow_signs(spinkick, humanoid):
    motion, clip = spinkick
    names = humanoid.layout.dof_names
    assert motion.frames[0, 20] == pytest.approx(-0.811415)  # DeepMimic's bent right knee
    assert clip.dof_pos[0, names.index("right_knee")] == pytest.approx(0.811415, abs=1e-5)
    assert motion.frames[0, 43] == pytest.approx(1.445205)  # DeepMimic's left elbow
    assert clip.dof_pos[0, names.index("left_elbow")] == pytest.approx(-1.445205, abs=1e-5)


@pytest.mark.parametrize("case, edit", [
    ("width43", lambda d: d["Frames"][3].pop()),
    ("nan", lambda d: d["Frames"][5].__setitem__(10, float("nan"))),
    ("zero_dt", lambda d: d["Frames"][0].__setitem__(0, 0.0)),
    ("negative_dt", lambda d: d["Frames"][2].__setitem__(0, -0.016666)),
    ("one_frame", lambda d: d.__setitem__("Frames", d["Frames"][:1])),
    ("no_frames", lambda d: d.pop("Frames")),
    ("bad_quat", lambda d: d["Frames"][4].__setitem__(4, 2.0)),
])
def test_bad_files_raise_input_error(tmp_path, case, edit):
    data = json.loads(SPINKICK.read_text())
    edit(data)
    path = tmp_path / f"{case}.txt"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=f"{case}.txt"):
        read_deepmimic(path)


def test_not_json_raises_input_error(tmp_path):
    path = tmp_path / "garbage.txt"
    path.write_text("Frames: 1 2 3")
    with pytest.raises(InputError, match="garbage.txt"):
        read_deepmimic(path)
