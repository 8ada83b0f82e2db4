"""amp_jax.motion.clip (clip files) and amp_jax.motion.library (velocities, sampling, interpolation, looping),
checked against hand-derived values and scipy on small synthetic clips in the humanoid's DoF layout.

Humanoid DoF layout (reference §2.2): abdomen(0:3) neck(3:6) right_shoulder(6:9) right_elbow(9, axis z)
left_shoulder(10:13) left_elbow(13) right_hip(14:17) right_knee(17, axis y) right_ankle(18:21) ...
"""

import pickle
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation, Slerp

from amp_jax.characters import kinematics
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip, clip_to_frames, frames_to_clip, load_clip, load_motion_set, save_clip
from amp_jax.motion.library import build_motion_library

REPO_ROOT = Path(__file__).resolve().parent.parent
D = 28
N = 8  # frames per synthetic clip: one shape, so JAX compiles the library's ops once
ABDOMEN = slice(0, 3)  # ball joint of body 1 (torso)
RIGHT_ELBOW = 9  # hinge of body 4, axis z
RIGHT_KNEE = 17  # hinge of body 10, axis y


def wxyz(r: Rotation) -> np.ndarray:
    return r.as_quat()[..., [3, 0, 1, 2]]


def rot(q_wxyz) -> Rotation:
    q = np.asarray(q_wxyz, np.float64)
    return Rotation.from_quat(q[..., [1, 2, 3, 0]])


def same_rotation(a, b, atol):
    """Quaternions a, b [..., 4] describe the same rotation (up to sign)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sign = np.where(np.sum(a * b, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    np.testing.assert_allclose(a * sign, b, atol=atol)


def make_clip(n, fps=30.0, loop=False, root_pos=None, root_rot=None, dof_pos=None):
    root_pos = np.tile([0.0, 0.0, 0.9], (n, 1)) if root_pos is None else root_pos
    root_rot = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)) if root_rot is None else root_rot
    dof_pos = np.zeros((n, D)) if dof_pos is None else dof_pos
    return Clip(fps=fps, loop=loop, root_pos=np.asarray(root_pos, np.float32),
                root_rot=np.asarray(root_rot, np.float32), dof_pos=np.asarray(dof_pos, np.float32))


def frame(lib, i):
    """Stored frame i of the library (all clips concatenated)."""
    return jax.tree.map(lambda x: np.asarray(x[i]), lib.frames)


def at(lib, clip_id, t):
    return jax.tree.map(np.asarray, lib.state(jnp.int32(clip_id), jnp.float32(t)))


# ---------------------------------------------------------------------------------------------
# Finite-difference velocities (reference §2.3)


def test_root_velocity_forward_difference_last_repeats(humanoid):
    rng = np.random.default_rng(0)
    n, fps = N, 30.0
    p = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    lib = build_motion_library(humanoid.layout, [make_clip(n, fps, root_pos=p)])
    vel = np.asarray(lib.frames.root_vel)
    expected = fps * (p[1:].astype(np.float64) - p[:-1])
    np.testing.assert_allclose(vel[:-1], expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(vel[-1], expected[-1], rtol=1e-5, atol=1e-4)
    # Evaluated mid-frame, the state carries frame i's velocity.
    for i in range(n - 1):
        np.testing.assert_allclose(at(lib, 0, (i + 0.5) / fps).root_vel, expected[i], rtol=1e-5, atol=1e-4)


def test_root_angular_velocity_about_z(humanoid):
    n, fps, rate = N, 30.0, 2.0
    t = np.arange(n) / fps
    q = wxyz(Rotation.from_rotvec(np.outer(rate * t, [0, 0, 1])))
    lib = build_motion_library(humanoid.layout, [make_clip(n, fps, root_rot=q)])
    np.testing.assert_allclose(np.asarray(lib.frames.root_ang_vel), np.tile([0, 0, rate], (n, 1)), atol=1e-3)


def test_root_angular_velocity_is_world_frame(humanoid):
    """q(t) = Rx(90deg) * Rz(rate t): spinning about the body z axis, which points along world -y."""
    n, fps, rate = N, 30.0, 1.5
    t = np.arange(n) / fps
    q = wxyz(Rotation.from_rotvec([np.pi / 2, 0, 0]) * Rotation.from_rotvec(np.outer(rate * t, [0, 0, 1])))
    lib = build_motion_library(humanoid.layout, [make_clip(n, fps, root_rot=q)])
    np.testing.assert_allclose(np.asarray(lib.frames.root_ang_vel), np.tile([0, -rate, 0], (n, 1)), atol=1e-3)


def test_hinge_dof_velocity_equals_slope(humanoid):
    n, fps = N, 60.0
    t = np.arange(n) / fps
    dof = np.zeros((n, D))
    dof[:, RIGHT_ELBOW] = 0.1 + 1.7 * t
    dof[:, RIGHT_KNEE] = 0.5 - 2.5 * t
    lib = build_motion_library(humanoid.layout, [make_clip(n, fps, dof_pos=dof)])
    dof_vel = np.asarray(lib.frames.dof_vel)
    np.testing.assert_allclose(dof_vel[:, RIGHT_ELBOW], 1.7, atol=2e-3)
    np.testing.assert_allclose(dof_vel[:, RIGHT_KNEE], -2.5, atol=2e-3)
    others = np.delete(dof_vel, [RIGHT_ELBOW, RIGHT_KNEE], axis=1)
    np.testing.assert_allclose(others, 0.0, atol=1e-5)


@pytest.mark.parametrize("with_base", [False, True])
def test_ball_joint_local_angular_velocity(humanoid, with_base):
    """Abdomen rotation q(t) = q_base * R_axis(rate t): local (child-frame) angular velocity = axis * rate."""
    n, fps, rate = N, 30.0, 1.5
    axis = np.array([1.0, 2.0, -2.0]) / 3.0
    t = np.arange(n) / fps
    base = Rotation.from_rotvec([0.3, -0.5, 0.2]) if with_base else Rotation.identity()
    r = base * Rotation.from_rotvec(np.outer(rate * t, axis))
    dof = np.zeros((n, D))
    dof[:, ABDOMEN] = r.as_rotvec()
    lib = build_motion_library(humanoid.layout, [make_clip(n, fps, dof_pos=dof)])
    dof_vel = np.asarray(lib.frames.dof_vel)
    np.testing.assert_allclose(dof_vel[:, ABDOMEN], np.tile(rate * axis, (n, 1)), atol=2e-3)
    np.testing.assert_allclose(dof_vel[:, 3:], 0.0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Interpolation (reference §2.4)


def interp_clip():
    """Frames 0-2 at 10 fps: a rotating root, hinges and a ball joint, accelerating (later frames hold)."""
    rng = np.random.default_rng(3)
    fps = 10.0
    hold = N - 3
    root_pos = np.array([[0.0, 0.0, 1.0], [1.0, -0.4, 1.2], [3.0, -0.4, 1.0]] + [[3.0, -0.4, 1.0]] * hold)
    r0 = Rotation.from_rotvec([0.2, -0.4, 1.0])
    r1 = r0 * Rotation.from_rotvec([0.0, 0.5, 0.6])
    r2 = r1 * Rotation.from_rotvec([0.9, 0.0, 0.0])
    root_rot = wxyz(Rotation.concatenate([r0, r1] + [r2] * (1 + hold)))
    dof = np.zeros((N, D))
    dof[:, RIGHT_ELBOW] = [0.2, 1.0] + [1.1] * (1 + hold)
    dof[:, RIGHT_KNEE] = [-0.3, 0.5] + [2.5] * (1 + hold)
    dof[:, ABDOMEN] = rng.uniform(-0.6, 0.6, (N, 3))
    return make_clip(N, fps, root_pos=root_pos, root_rot=root_rot, dof_pos=dof)


def test_interpolation_at_quarter(humanoid):
    layout = humanoid.layout
    clip = interp_clip()
    lib = build_motion_library(layout, [clip])
    alpha = 0.25
    s = at(lib, 0, alpha / clip.fps)
    p = clip.root_pos.astype(np.float64)
    np.testing.assert_allclose(s.root_pos, (1 - alpha) * p[0] + alpha * p[1], atol=1e-5)
    expected_rot = Slerp([0.0, 1.0], rot(clip.root_rot[:2]))([alpha])
    same_rotation(s.root_rot, wxyz(expected_rot)[0], atol=1e-5)
    dof = np.asarray(kinematics.joint_rot_to_dof(layout, jnp.asarray(s.joint_rot)))
    d = clip.dof_pos.astype(np.float64)
    np.testing.assert_allclose(dof[RIGHT_ELBOW], (1 - alpha) * d[0, RIGHT_ELBOW] + alpha * d[1, RIGHT_ELBOW], atol=1e-5)
    np.testing.assert_allclose(dof[RIGHT_KNEE], (1 - alpha) * d[0, RIGHT_KNEE] + alpha * d[1, RIGHT_KNEE], atol=1e-5)
    # Ball joint: slerp of the exp-map rotations.
    expected_abd = Slerp([0.0, 1.0], Rotation.from_rotvec(d[:2, ABDOMEN]))([alpha])
    same_rotation(s.joint_rot[1], wxyz(expected_abd)[0], atol=1e-5)
    # Identity joints stay identity.
    same_rotation(s.joint_rot[2], [1, 0, 0, 0], atol=1e-6)


def test_velocities_taken_from_earlier_frame(humanoid):
    clip = interp_clip()
    lib = build_motion_library(humanoid.layout, [clip])
    f0, f1 = frame(lib, 0), frame(lib, 1)
    np.testing.assert_allclose(f0.root_vel, [10.0, -4.0, 2.0], atol=1e-4)
    np.testing.assert_allclose(f1.root_vel, [20.0, 0.0, -2.0], atol=1e-4)
    for alpha in (0.25, 0.75):
        s = at(lib, 0, alpha / clip.fps)
        np.testing.assert_allclose(s.root_vel, f0.root_vel, atol=1e-6)
        np.testing.assert_allclose(s.root_ang_vel, f0.root_ang_vel, atol=1e-6)
        np.testing.assert_allclose(s.dof_vel, f0.dof_vel, atol=1e-6)
    s = at(lib, 0, 1.5 / clip.fps)
    np.testing.assert_allclose(s.root_vel, f1.root_vel, atol=1e-6)
    np.testing.assert_allclose(s.dof_vel[RIGHT_KNEE], 20.0, atol=1e-3)  # (2.5 - 0.5) * 10
    assert not np.allclose(f0.dof_vel, f1.dof_vel)


# ---------------------------------------------------------------------------------------------
# Looping and clamping (reference §2.3 loop offset, §2.4 phase)


def ramp_clip(loop):
    """1 s (N frames): x goes 0 -> 1, y 0 -> 0.5, z 0.9 -> 1.0, so x(t) = t for a wrapping clip."""
    s = np.linspace(0.0, 1.0, N)
    root_pos = np.stack([s, 0.5 * s, 0.9 + 0.1 * s], axis=1)
    return make_clip(N, N - 1.0, loop=loop, root_pos=root_pos)


def test_wrap_delta_zeroes_z(humanoid):
    lib = build_motion_library(humanoid.layout, [ramp_clip(True), ramp_clip(False)])
    np.testing.assert_allclose(np.asarray(lib.clip_wrap_delta), [[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("t, x, y, z", [
    (1.5, 1.5, 0.75, 0.95),  # length * 1.5: one cycle offset
    (2.25, 2.25, 1.125, 0.925),
    (-0.5, -0.5, -0.25, 0.95),  # negative time: negative offset
    (-0.25, -0.25, -0.125, 0.975),
    (0.3, 0.3, 0.15, 0.93),
])
def test_wrap_clip_offsets(humanoid, t, x, y, z):
    lib = build_motion_library(humanoid.layout, [ramp_clip(True)])
    s = at(lib, 0, t)
    np.testing.assert_allclose(s.root_pos, [x, y, z], atol=1e-5)
    np.testing.assert_allclose(s.root_vel, [1.0, 0.5, 0.1], atol=1e-4)


@pytest.mark.parametrize("t, first", [(1.5, False), (7.0, False), (-0.5, True), (-3.0, True)])
def test_clamp_clip_holds_end_frames(humanoid, t, first):
    lib = build_motion_library(humanoid.layout, [ramp_clip(False)])
    clip = ramp_clip(False)
    i = 0 if first else clip.num_frames - 1
    s = at(lib, 0, t)
    np.testing.assert_allclose(s.root_pos, clip.root_pos[i], atol=1e-6)
    np.testing.assert_allclose(s.root_vel, frame(lib, i).root_vel, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Sampling (reference §2.4)


def test_weighted_clip_sampling(humanoid):
    lib = build_motion_library(humanoid.layout, [make_clip(N), make_clip(N, fps=10.0)], weights=[1.0, 3.0])
    np.testing.assert_allclose(np.asarray(lib.clip_weight), [0.25, 0.75], atol=1e-7)
    n = 20000
    ids = np.asarray(lib.sample_clips(jax.random.key(123), (n,)))
    assert set(np.unique(ids)) <= {0, 1}
    frac = np.mean(ids == 1)
    assert abs(frac - 0.75) < 4 * np.sqrt(0.75 * 0.25 / n), frac


def test_zero_weight_clip_never_sampled(humanoid):
    lib = build_motion_library(humanoid.layout, [make_clip(N), make_clip(N, fps=10.0)], weights=[0.0, 2.0])
    ids = np.asarray(lib.sample_clips(jax.random.key(5), (2000,)))
    assert np.all(ids == 1)


def test_sample_times_in_range(humanoid):
    clips = [make_clip(N, fps=30.0), make_clip(N, fps=2.0)]  # lengths 7/30 s and 3.5 s
    lib = build_motion_library(humanoid.layout, clips, weights=[1.0, 1.0])
    n = 20000
    ids = lib.sample_clips(jax.random.key(0), (n,))
    t = np.asarray(lib.sample_times(jax.random.key(1), ids))
    length = np.array([7 / 30, 3.5])[np.asarray(ids)]
    assert np.all(t >= 0.0) and np.all(t < length)
    u = t / length
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)


# ---------------------------------------------------------------------------------------------
# Clip files (amp_jax.motion.clip)


def test_load_clip_dof_width_mismatch(tmp_path):
    path = tmp_path / "walk27.npz"
    save_clip(path, make_clip(4, dof_pos=np.zeros((4, 27))))
    with pytest.raises(InputError) as e:
        load_clip(path, num_dof=28)
    assert "walk27.npz" in str(e.value) and "27" in str(e.value) and "28" in str(e.value)
    assert load_clip(path).dof_pos.shape == (4, 27)  # without num_dof: no width check


def test_load_clip_nan(tmp_path):
    dof = np.zeros((4, D))
    dof[2, 5] = np.nan
    path = tmp_path / "nan_clip.npz"
    save_clip(path, make_clip(4, dof_pos=dof))
    with pytest.raises(InputError, match="nan_clip.npz.*NaN"):
        load_clip(path, num_dof=D)


@pytest.mark.parametrize("fps", [0.0, -30.0])
def test_load_clip_bad_fps(tmp_path, fps):
    path = tmp_path / "bad_fps.npz"
    save_clip(path, make_clip(4, fps=fps))
    with pytest.raises(InputError, match="bad_fps.npz.*fps"):
        load_clip(path, num_dof=D)


def test_load_clip_single_frame(tmp_path):
    path = tmp_path / "one_frame.npz"
    save_clip(path, make_clip(1))
    with pytest.raises(InputError, match="one_frame.npz.*2 frames"):
        load_clip(path, num_dof=D)


def test_load_clip_missing_file(tmp_path):
    with pytest.raises(InputError, match="nowhere.npz"):
        load_clip(tmp_path / "nowhere.npz")


def mimickit_frames(n=6, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.uniform(-1.0, 1.0, (n, 6 + D))
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    frames[:, 3:6] = axes * rng.uniform(0.1, 2.5, (n, 1))  # rotation angles below pi
    return frames.astype(np.float32)


@pytest.mark.parametrize("loop_mode", [0, 1])
def test_mimickit_pkl_round_trip(tmp_path, loop_mode):
    frames = mimickit_frames()
    path = tmp_path / "clip.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"loop_mode": loop_mode, "fps": 30, "frames": frames.tolist()}, fh)
    clip = load_clip(path, num_dof=D)
    assert clip.loop == (loop_mode == 1) and clip.fps == 30.0 and clip.num_frames == len(frames)
    np.testing.assert_allclose(clip.root_pos, frames[:, :3], atol=1e-7)
    np.testing.assert_allclose(clip.dof_pos, frames[:, 6:], atol=1e-7)
    same_rotation(clip.root_rot, wxyz(Rotation.from_rotvec(frames[:, 3:6].astype(np.float64))), atol=1e-6)
    np.testing.assert_allclose(clip_to_frames(clip), frames, atol=1e-5)
    again = frames_to_clip(clip_to_frames(clip), clip.fps, clip.loop, "again")
    np.testing.assert_allclose(again.root_rot, clip.root_rot, atol=1e-5)
    np.testing.assert_allclose(again.dof_pos, clip.dof_pos, atol=1e-7)


def test_mimickit_pkl_not_a_clip(tmp_path):
    path = tmp_path / "junk.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"fps": 30}, fh)
    with pytest.raises(InputError, match="junk.pkl"):
        load_clip(path)


def write_dataset(tmp_path, entries):
    path = tmp_path / "dataset.yaml"
    path.write_text(yaml.safe_dump({"motions": entries}))
    return path


def test_load_motion_set_yaml(tmp_path, humanoid):
    save_clip(tmp_path / "a.npz", make_clip(N, fps=20.0))
    (tmp_path / "sub").mkdir()
    with open(tmp_path / "sub" / "b.pkl", "wb") as fh:
        pickle.dump({"loop_mode": 1, "fps": 60, "frames": mimickit_frames(N)}, fh)
    path = write_dataset(tmp_path, [{"file": "a.npz", "weight": 1}, {"file": "sub/b.pkl", "weight": 3}])
    clips, weights, names = load_motion_set(path, num_dof=D)
    assert weights == [1.0, 3.0] and names == ["a", "b"]
    assert [c.num_frames for c in clips] == [N, N]
    assert [c.fps for c in clips] == [20.0, 60.0]
    assert [c.loop for c in clips] == [False, True]
    lib = build_motion_library(humanoid.layout, clips, weights)
    np.testing.assert_allclose(np.asarray(lib.clip_weight), [0.25, 0.75], atol=1e-7)
    np.testing.assert_allclose(np.asarray(lib.clip_length), [(N - 1) / 20, (N - 1) / 60], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(lib.clip_start), [0, N])


def test_load_motion_set_single_file(tmp_path):
    save_clip(tmp_path / "solo.npz", make_clip(3))
    clips, weights, names = load_motion_set(tmp_path / "solo.npz", num_dof=D)
    assert len(clips) == 1 and weights == [1.0] and names == ["solo"]


def test_load_motion_set_negative_weight(tmp_path):
    save_clip(tmp_path / "a.npz", make_clip(5))
    path = write_dataset(tmp_path, [{"file": "a.npz", "weight": 1}, {"file": "a.npz", "weight": -2}])
    with pytest.raises(InputError, match="dataset.yaml.*weight"):
        load_motion_set(path, num_dof=D)


def test_load_motion_set_missing_clip(tmp_path):
    save_clip(tmp_path / "a.npz", make_clip(5))
    path = write_dataset(tmp_path, [{"file": "a.npz", "weight": 1}, {"file": "gone.npz", "weight": 1}])
    with pytest.raises(InputError, match="gone.npz"):
        load_motion_set(path, num_dof=D)


@pytest.fixture
def mimickit_tree(tmp_path):
    """A MimicKit-style tree: data/datasets/walk.yaml naming data/motions/... clips (MimicKit .pkl and .npz)
    from MimicKit's root."""
    from amp_jax.motion_tools.importers.mimickit import save_mimickit

    root = tmp_path / "MimicKit"
    (root / "data/motions/humanoid").mkdir(parents=True)
    (root / "data/datasets").mkdir()
    walk = load_clip(REPO_ROOT / "motions/humanoid/humanoid_walk.npz", D)
    save_mimickit(root / "data/motions/humanoid/humanoid_walk.pkl", walk)
    shutil.copy(REPO_ROOT / "motions/humanoid/humanoid_run.npz", root / "data/motions/humanoid/")
    (root / "data/datasets/walk.yaml").write_text(
        "motions:\n  - file: \"data/motions/humanoid/humanoid_walk.pkl\"\n    weight: 0.5\n"
        "  - file: \"data/motions/humanoid/humanoid_run.npz\"\n    weight: 0.5\n")
    return root, walk


@pytest.mark.parametrize("cwd", ["root", "elsewhere"])
def test_mimickit_dataset_loads_unchanged(mimickit_tree, monkeypatch, tmp_path, cwd):
    """Clip paths are MimicKit's (relative to its root, the working directory it runs in); from
    elsewhere they are found from the dataset's parents."""
    root, walk = mimickit_tree
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(root if cwd == "root" else tmp_path / "elsewhere")
    clips, weights, names = load_motion_set(root / "data/datasets/walk.yaml", D)
    assert names == ["humanoid_walk", "humanoid_run"] and weights == [0.5, 0.5]
    np.testing.assert_allclose(clips[0].dof_pos, walk.dof_pos, atol=1e-6)
    np.testing.assert_allclose(clips[0].root_pos, walk.root_pos, atol=1e-6)
    assert clips[0].fps == walk.fps and clips[0].loop == walk.loop
    run = load_clip(REPO_ROOT / "motions/humanoid/humanoid_run.npz", D)
    np.testing.assert_array_equal(clips[1].dof_pos, run.dof_pos)


def test_working_directory_comes_first(mimickit_tree, monkeypatch, tmp_path):
    """MimicKit's rule: a clip path is the working directory's first, even if the dataset's tree has one."""
    root, _ = mimickit_tree
    other = tmp_path / "other"
    (other / "data/motions/humanoid").mkdir(parents=True)
    save_clip(other / "data/motions/humanoid/humanoid_run.npz", make_clip(N))
    monkeypatch.chdir(other)
    clips, _, _ = load_motion_set(root / "data/datasets/walk.yaml", D)
    assert clips[1].num_frames == N


def test_missing_dataset_clip_names_every_place_looked(mimickit_tree, monkeypatch, tmp_path):
    root, _ = mimickit_tree
    (root / "data/motions/humanoid/humanoid_run.npz").unlink()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(InputError) as err:
        load_motion_set(root / "data/datasets/walk.yaml", D)
    msg = str(err.value)
    clip = "data/motions/humanoid/humanoid_run.npz"
    assert msg.startswith(f"{root / 'data/datasets/walk.yaml'}: motions[1] file '{clip}' not found; looked in ")
    for place in [tmp_path / "elsewhere", root / "data/datasets", root / "data", root, tmp_path, Path("/")]:
        assert str(place.resolve() / clip) in msg
