"""Importers and exporters (amp_jax/motion_tools/importers/) and `amp-jax import`.

* AMASS: the converted clip's forward kinematics equals SMPL's own (y-up canonical offsets, joint rotations
  composed in SMPL's joint order, the root rotation taking the canonical frame into the z-up world) for
  random poses, to 1e-5 m; SMPL-H files (156 numbers a frame) give the same body joints with zero hands;
  the floor options put the lowest geom point on the floor.
* Round trips: export then import gives the same frames for AMASS (.npz), MimicKit (.pkl) and DeepMimic
  (.txt): DoFs and root positions to 1e-5, root rotations to 1e-5 (up to the quaternion sign).
* Bad input (wrong width, NaN, missing keys, fps <= 0, a wrong character, an unreadable file) is refused
  with an InputError naming the file; a hypothesis fuzz test of the AMASS reader (bounded examples) gets a
  valid clip or that error, never another exception.
"""

import pickle
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.transform import Rotation

from amp_jax.cli import main
from amp_jax.errors import InputError
from amp_jax.motion.clip import load_clip
from amp_jax.motion_tools import host_kinematics as hk
from amp_jax.motion_tools.importers import load_named_character
from amp_jax.motion_tools.importers.amass import (
    SMPL_JOINTS,
    amass_to_clip,
    clip_to_amass,
    parse_amass,
    read_amass,
    save_amass,
)
from amp_jax.motion_tools.importers.deepmimic import deepmimic_text, humanoid_to_deepmimic, parse_deepmimic
from amp_jax.motion_tools.importers.mimickit import save_mimickit

REPO = Path(__file__).resolve().parent.parent
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)  # facts 4.4


@pytest.fixture(scope="module")
def smpl():
    return load_named_character("smpl")


def _same_frames(a, b, tol=1e-5):
    assert a.num_frames == b.num_frames and a.loop == b.loop and a.fps == pytest.approx(b.fps, rel=1e-6)
    np.testing.assert_allclose(a.root_pos, b.root_pos, atol=tol)
    np.testing.assert_allclose(a.dof_pos, b.dof_pos, atol=tol)
    sign = np.sign(np.sum(a.root_rot * b.root_rot, axis=-1, keepdims=True))
    np.testing.assert_allclose(a.root_rot, sign * b.root_rot, atol=tol)


def _smpl_fk(layout, poses, trans):
    """SMPL's forward kinematics in its own terms: joint world positions [N, 24, 3] and rotations (scipy) in
    SMPL order. Offsets are SMPL's canonical (y-up, facing +z, left +x) ones: our z-up offsets (x, y, z) read
    as (y, z, x)."""
    offsets = [np.zeros(3)] * len(SMPL_JOINTS)
    for j, name in enumerate(SMPL_JOINTS[1:], start=1):
        x, y, z = layout.body_pos[layout.body_names.index(name)].astype(np.float64)
        offsets[j] = np.array([y, z, x])
    rots, pos = [], []
    for j, parent in enumerate(SMPL_PARENTS):
        local = Rotation.from_rotvec(poses[:, j])
        if parent < 0:
            rots.append(local)
            pos.append(trans)
        else:
            rots.append(rots[parent] * local)
            pos.append(pos[parent] + rots[parent].apply(offsets[j]))
    return np.stack(pos, axis=1), rots


def test_smpl_offsets_are_the_facts_permuted(smpl):
    # characters.md 4.4: "PHC y-up equivalents are the same numbers permuted: PHC L_Hip (0.0695, -0.0914, -0.0068)".
    x, y, z = smpl.layout.body_pos[smpl.layout.body_names.index("L_Hip")]
    np.testing.assert_allclose([y, z, x], [0.0695, -0.0914, -0.0068], atol=1e-6)


def test_amass_forward_kinematics_matches_smpl(smpl):
    layout = smpl.layout
    rng = np.random.default_rng(0)
    n = 6
    poses = rng.normal(0.0, 0.4, (n, 24, 3))
    poses[:, 0] = Rotation.from_euler("xz", np.c_[np.full(n, 90.0), rng.uniform(-180, 180, n)],
                                      degrees=True).as_rotvec()  # upright in the z-up world, any heading
    trans = rng.normal(0.0, 1.0, (n, 3))
    motion = parse_amass({"poses": poses.reshape(n, 72), "trans": trans, "mocap_framerate": np.array(120.0)}, "t")
    clip = amass_to_clip(motion, layout)
    assert clip.character == "smpl" and clip.fps == 120.0 and not clip.loop and clip.dof_pos.shape == (n, 69)
    bp, br = hk.fk(layout, clip.root_pos, clip.root_rot, clip.dof_pos)
    want_pos, want_rot = _smpl_fk(layout, poses, trans)
    ours = [layout.body_names.index(name) for name in SMPL_JOINTS]
    np.testing.assert_allclose(bp[:, ours], want_pos, atol=1e-5)
    # Body frames: ours = SMPL's world rotation followed by B (our axes -> SMPL's).
    b = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    for j, body in enumerate(ours):
        np.testing.assert_allclose(hk.quat_matrix(br[:, body]), want_rot[j].as_matrix() @ b, atol=1e-5)


def test_upright_amass_pose_stands_upright(smpl):
    """Zero pose, root orient +90 degrees about x (the usual AMASS standing frame): our character's up is
    world +z, its forward (x) is world -y, its left (y) world +x."""
    poses = np.zeros((2, 72))
    poses[:, 0] = np.pi / 2
    clip = amass_to_clip(parse_amass({"poses": poses, "trans": np.zeros((2, 3)), "fps": 30}, "t"), smpl.layout)
    m = hk.quat_matrix(clip.root_rot[0].astype(np.float64))
    np.testing.assert_allclose(m, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-6)


def test_smplh_width_keeps_the_body_joints(smpl):
    rng = np.random.default_rng(1)
    body = rng.normal(0.0, 0.3, (3, 66))
    smplh = np.concatenate([body, rng.normal(0.0, 0.3, (3, 90))], axis=1)  # 22 body joints + 2 x 15 hand joints
    smpl72 = np.concatenate([body, np.zeros((3, 6))], axis=1)
    a = amass_to_clip(parse_amass({"poses": smplh, "trans": np.zeros((3, 3)), "mocap_framerate": 60}, "h"), smpl.layout)
    b = amass_to_clip(parse_amass({"poses": smpl72, "trans": np.zeros((3, 3)), "mocap_framerate": 60}, "s"), smpl.layout)
    _same_frames(a, b, tol=0)
    hands = [smpl.layout.dof_start[smpl.layout.body_names.index(h)] for h in ("L_Hand", "R_Hand")]
    assert not np.any(a.dof_pos[:, [h + k for h in hands for k in range(3)]])


def test_floor_modes(smpl):
    walk = load_clip(REPO / "motions/smpl/smpl_walk.npz")
    arrays = clip_to_amass(walk, smpl.layout)
    arrays["trans"] = arrays["trans"] + [0.0, 0.0, 0.3]  # 30 cm up
    motion = parse_amass(arrays, "raised")
    everything = hk.subtree_geoms(smpl.mj_model, smpl.layout, ["Pelvis"])

    def lowest(clip, frames):
        bp, br = hk.fk(smpl.layout, clip.root_pos[:frames], clip.root_rot[:frames], clip.dof_pos[:frames])
        return hk.geom_bottoms(everything, bp, br).min()

    assert lowest(amass_to_clip(motion, smpl.layout), 39) == pytest.approx(0.3, abs=1e-4)  # the shipped clip's is 0
    assert lowest(amass_to_clip(motion, smpl.layout, smpl.mj_model, floor="calibrate"), 30) == pytest.approx(0, abs=1e-5)
    assert lowest(amass_to_clip(motion, smpl.layout, smpl.mj_model, floor="full"), 39) == pytest.approx(0, abs=1e-5)


# ------------------------------------------------------------------------------------------------------
# Export, then import: the same frames


def test_amass_round_trip(smpl, tmp_path):
    walk = load_clip(REPO / "motions/smpl/smpl_walk.npz")
    path = tmp_path / "walk_amass.npz"
    save_amass(path, walk, smpl.layout)
    assert np.load(path)["poses"].shape == (39, 72)
    _same_frames(amass_to_clip(read_amass(path), smpl.layout, loop=True), walk)
    out = tmp_path / "walk.npz"
    assert main(["import", str(path), "--format", "amass", "--out", str(out), "--floor", "none", "--loop"]) == 0
    back = load_clip(out, 69)
    _same_frames(back, walk)
    assert back.character == "smpl" and back.dof_names == smpl.layout.dof_names


def test_mimickit_round_trip(tmp_path):
    g1 = load_clip(REPO / "motions/g1/g1_walk.npz")
    path = tmp_path / "g1_walk.pkl"
    save_mimickit(path, g1)
    _same_frames(load_clip(path), g1)
    out = tmp_path / "g1.npz"
    assert main(["import", str(path), "--format", "mimickit", "--out", str(out)]) == 0  # 29 DoFs: G1
    back = load_clip(out)
    assert back.character == "g1"
    _same_frames(back, g1)


def test_deepmimic_round_trip(humanoid, tmp_path):
    walk = load_clip(REPO / "motions/humanoid/humanoid_walk.npz")
    text = deepmimic_text(humanoid_to_deepmimic(walk, humanoid.layout))
    path = tmp_path / "walk.txt"
    path.write_text(text)
    assert len(parse_deepmimic(text, "walk").frames[0]) == 44
    out = tmp_path / "walk.npz"
    assert main(["import", str(path), "--format", "deepmimic", "--out", str(out)]) == 0
    _same_frames(load_clip(out, humanoid.layout.num_dof), walk)


# ------------------------------------------------------------------------------------------------------
# Bad input


def _amass_file(tmp_path, name="bad.npz", **arrays):
    base = {"poses": np.zeros((4, 72)), "trans": np.zeros((4, 3)), "mocap_framerate": np.array(30.0)}
    base.update(arrays)
    path = tmp_path / name
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize("arrays, message", [
    ({"poses": np.zeros((4, 70))}, r"bad\.npz: poses has shape \(4, 70\); AMASS poses are \[frames, 72\]"),
    ({"poses": np.full((4, 72), np.nan)}, r"bad\.npz: poses has NaN or inf \(first at frame 0\)"),
    ({"trans": np.zeros((3, 3))}, r"bad\.npz: trans has shape \(3, 3\), expected \(4, 3\)"),
    ({"mocap_framerate": np.array(-5.0)}, r"bad\.npz: mocap_framerate must be one positive number"),
    ({"mocap_framerate": None}, r"bad\.npz: an AMASS motion needs .* missing \['mocap_framerate'\]"),
    ({"poses": np.array(["a", "b"])}, r"bad\.npz: poses must hold numbers"),
    ({"poses": np.zeros((1, 72)), "trans": np.zeros((1, 3))}, r"bad\.npz: a clip needs at least 2 frames"),
])
def test_amass_input_errors(tmp_path, arrays, message):
    with pytest.raises(InputError, match=message):
        read_amass(_amass_file(tmp_path, **arrays))


def test_unreadable_and_misdirected_files(tmp_path, humanoid, capsys):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="junk.npz: not a readable AMASS .npz"):
        read_amass(junk)
    with pytest.raises(InputError, match="convert to the SMPL character .* 'humanoid' has 15 bodies and 28 DoFs"):
        amass_to_clip(read_amass(_amass_file(tmp_path)), humanoid.layout)
    good = _amass_file(tmp_path, "good.npz")
    assert main(["import", str(good), "--format", "amass", "--out", str(tmp_path / "x.npz"),
                 "--character", "humanoid"]) == 2
    assert "good.npz: AMASS motions convert to the SMPL character" in capsys.readouterr().err
    # A MimicKit clip whose width fits no character, and one that does not fit the named character.
    odd = tmp_path / "odd.pkl"
    odd.write_bytes(pickle.dumps({"loop_mode": 0, "fps": 30.0, "frames": np.zeros((3, 6 + 30))}))
    assert main(["import", str(odd), "--format", "mimickit", "--out", str(tmp_path / "y.npz")]) == 2
    assert "odd.pkl: frames of width 36 (30 DoFs) fit none of the characters" in capsys.readouterr().err
    assert main(["import", str(odd), "--format", "mimickit", "--out", str(tmp_path / "y.npz"),
                 "--character", "g1"]) == 2
    assert "odd.pkl: frames have 30 DoFs (width 36), but the character has 29 (width 35)" in capsys.readouterr().err


def test_deepmimic_quaternion_of_wrong_norm(humanoid, tmp_path, capsys):
    walk = load_clip(REPO / "motions/humanoid/humanoid_walk.npz")
    motion = humanoid_to_deepmimic(walk, humanoid.layout)
    motion.frames[5, 8:12] *= 1.5  # the torso's quaternion
    path = tmp_path / "stretched.txt"
    path.write_text(deepmimic_text(motion))
    assert main(["import", str(path), "--format", "deepmimic", "--out", str(tmp_path / "z.npz")]) == 2
    assert "stretched.txt: frame 5: the quaternion in columns 8-11 has norm 1.5000, not 1" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------
# Fuzz: random AMASS-like files -> a valid SMPL clip or InputError

FUZZ = settings(max_examples=60, deadline=timedelta(seconds=5), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
dtypes = st.sampled_from([np.float64, np.float32, np.int32, np.bool_, np.dtype("<U2"), np.complex64])
shapes = st.one_of(st.sampled_from([(), (3,), (2, 3), (3, 72), (4, 156), (2, 165), (3, 70), (0, 72), (1, 72)]),
                   hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
arrays = st.builds(lambda dtype, shape, data: data.draw(hnp.arrays(dtype, shape)), dtypes, shapes, st.data())
amass_like = st.dictionaries(
    st.sampled_from(["poses", "trans", "mocap_framerate", "mocap_frame_rate", "fps", "betas", "gender"]),
    arrays, max_size=6)


@FUZZ
@given(data=amass_like, fps=st.floats(allow_nan=True, allow_infinity=True), frames=st.integers(0, 4),
       width=st.sampled_from([72, 156, 165, 69]), scale=st.floats(0, 1e30), complete=st.booleans())
def test_fuzz_amass_reader(smpl, tmp_path_factory, data, fps, frames, width, scale, complete):
    if complete:  # most random dicts miss keys; make half of them well-formed apart from their values
        rng = np.random.default_rng(frames)
        data = {**data, "poses": rng.normal(0, scale, (frames, width)), "trans": rng.normal(0, 1, (frames, 3)),
                "mocap_framerate": np.array(fps)}
    path = tmp_path_factory.mktemp("fuzz") / "motion.npz"
    np.savez(path, **data)
    try:
        clip = amass_to_clip(read_amass(path), smpl.layout, smpl.mj_model, floor="calibrate")
    except InputError as e:
        assert "motion.npz" in str(e)
        return
    clip.validate("fuzz", 69)
    assert clip.character == "smpl" and clip.fps > 0


@FUZZ
@given(content=st.binary(max_size=200))
def test_fuzz_amass_bytes(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("bytes") / "motion.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match="motion.npz"):
        read_amass(path)
