"""Clip transfer by DoF name (humanoid -> sword-and-shield humanoid) and the shipped dataset."""

import numpy as np
import pytest

from amp_jax.characters.character import load_character
from amp_jax.errors import InputError
from amp_jax.motion.clip import load_clip, load_motion_set
from amp_jax.motion_tools.transfer import transfer_by_dof_name

from conftest import REPO_ROOT

GUARD = {"right_hand_x": 0.0, "right_hand_y": -0.5, "right_hand_z": 0.0}


@pytest.fixture(scope="module")
def sword_shield():
    return load_character(REPO_ROOT / "assets/humanoid_sword_shield/humanoid_sword_shield.xml").layout


def test_transfer_copies_shared_dofs_and_holds_the_rest(humanoid, sword_shield):
    clip = load_clip(REPO_ROOT / "motions/humanoid/humanoid_walk.npz", 28)
    out = transfer_by_dof_name(clip, humanoid.layout, sword_shield, GUARD)
    assert out.dof_pos.shape == (clip.num_frames, 31)
    src = list(humanoid.layout.dof_names)
    for j, name in enumerate(sword_shield.dof_names):
        expected = clip.dof_pos[:, src.index(name)] if name in src else GUARD[name]
        np.testing.assert_array_equal(out.dof_pos[:, j], expected)
    np.testing.assert_array_equal(out.root_pos, clip.root_pos)
    np.testing.assert_array_equal(out.root_rot, clip.root_rot)


def test_transfer_without_a_held_value_is_refused(humanoid, sword_shield):
    clip = load_clip(REPO_ROOT / "motions/humanoid/humanoid_walk.npz", 28)
    with pytest.raises(InputError, match="right_hand_y"):
        transfer_by_dof_name(clip, humanoid.layout, sword_shield, {"right_hand_x": 0.0, "right_hand_z": 0.0})


def test_shipped_sword_shield_dataset_is_the_transferred_humanoid_dataset(humanoid, sword_shield):
    src, _, names = load_motion_set(REPO_ROOT / "motions/humanoid/dataset_humanoid_locomotion.yaml", 28)
    clips, weights, _ = load_motion_set(
        REPO_ROOT / "motions/humanoid_sword_shield/dataset_humanoid_sword_shield_locomotion.yaml", 31)
    assert len(clips) == len(src) == 14 and weights == [1.0] * 14
    for a, b in zip(src, clips):
        np.testing.assert_array_equal(transfer_by_dof_name(a, humanoid.layout, sword_shield, GUARD).dof_pos, b.dof_pos)
