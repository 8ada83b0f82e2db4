"""amp_jax.envs.observations: the policy observation (reference §4.3) and the discriminator observation
(§4.5) of hand-built humanoid frames, slice by slice against hand-derived numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from amp_jax.characters.pose import Pose
from amp_jax.envs.observations import disc_feature_columns, disc_obs, policy_obs

B, D, K = 15, 28, 5
ATOL = 1e-5
ROOT_POS = np.array([0.3, -0.2, 0.9])
ROOT_VEL = np.array([0.4, 2.0, -0.3])
ROOT_ANG_VEL = np.array([0.1, 0.2, 0.3])
DOF_VEL = 0.01 * np.arange(D) - 0.1
KEY_OFFSETS = np.array([[0.0, 0.0, 0.5], [0.1, -0.7, 0.2], [0.1, 0.7, 0.2], [-0.1, -0.1, -0.8], [0.2, 0.1, -0.8]])
IDENTITY_TAN_NORM = np.array([1.0, 0, 0, 0, 0, 1.0])


def wxyz(r: Rotation) -> np.ndarray:
    return r.as_quat()[..., [3, 0, 1, 2]]


def yaw(angle):
    return Rotation.from_rotvec([0.0, 0.0, angle])


def to_heading(v):
    """World vector -> the frame of a root yawed by +90 deg: (x, y, z) -> (y, -x, z)."""
    v = np.asarray(v)
    return np.stack([v[..., 1], -v[..., 0], v[..., 2]], axis=-1)


def make_frame(root_rot=wxyz(yaw(np.pi / 2)), joint_rot=None):
    joint_rot = np.tile([1.0, 0, 0, 0], (B, 1)) if joint_rot is None else joint_rot
    return Pose(
        root_pos=jnp.asarray(ROOT_POS, jnp.float32),
        root_rot=jnp.asarray(root_rot, jnp.float32),
        root_vel=jnp.asarray(ROOT_VEL, jnp.float32),
        root_ang_vel=jnp.asarray(ROOT_ANG_VEL, jnp.float32),
        joint_rot=jnp.asarray(joint_rot, jnp.float32),
        dof_vel=jnp.asarray(DOF_VEL, jnp.float32),
        key_pos=jnp.asarray(ROOT_POS + KEY_OFFSETS, jnp.float32),
    )


def test_sizes(humanoid):
    # By hand: root height 1 + root rot 6 + vel 3 + ang vel 3 + 14 joints x 6 + 28 DoF vel + 5 keys x 3 = 140;
    # the disc frame drops nothing and adds the root's x, y (2): 142.
    frame = make_frame()
    assert policy_obs(frame, global_obs=True).shape == (140,)
    window = jax.tree.map(lambda x: jnp.stack([x, x]), frame)
    assert disc_obs(window, global_obs=True).shape == (2 * 142,)
    assert humanoid.layout.num_bodies == B and humanoid.layout.num_dof == D and humanoid.layout.num_key_bodies == K


def test_policy_obs_global(humanoid):
    obs = np.asarray(policy_obs(make_frame(), global_obs=True))
    assert obs.shape == (140,)
    np.testing.assert_allclose(obs[0], 0.9, atol=ATOL)
    np.testing.assert_allclose(obs[1:4], [0, 1, 0], atol=ATOL)  # x axis yawed 90 deg -> +y
    np.testing.assert_allclose(obs[4:7], [0, 0, 1], atol=ATOL)  # z axis unchanged
    np.testing.assert_allclose(obs[7:10], ROOT_VEL, atol=ATOL)
    np.testing.assert_allclose(obs[10:13], ROOT_ANG_VEL, atol=ATOL)
    np.testing.assert_allclose(obs[13:97], np.tile(IDENTITY_TAN_NORM, 14), atol=ATOL)
    np.testing.assert_allclose(obs[97:125], DOF_VEL, atol=ATOL)
    np.testing.assert_allclose(obs[125:140], KEY_OFFSETS.ravel(), atol=ATOL)


def test_policy_obs_heading_frame(humanoid):
    obs = np.asarray(policy_obs(make_frame(), global_obs=False))
    np.testing.assert_allclose(obs[0], 0.9, atol=ATOL)
    np.testing.assert_allclose(obs[1:7], IDENTITY_TAN_NORM, atol=ATOL)  # yaw removed
    np.testing.assert_allclose(obs[7:10], [2.0, -0.4, -0.3], atol=ATOL)  # world +y -> heading +x
    np.testing.assert_allclose(obs[10:13], [0.2, -0.1, 0.3], atol=ATOL)
    np.testing.assert_allclose(obs[13:97], np.tile(IDENTITY_TAN_NORM, 14), atol=ATOL)
    np.testing.assert_allclose(obs[97:125], DOF_VEL, atol=ATOL)
    np.testing.assert_allclose(obs[125:140], to_heading(KEY_OFFSETS).ravel(), atol=ATOL)


def test_policy_obs_heading_ignores_pitch(humanoid):
    """Root = yaw 90 deg then pitch 30 deg about the body y axis: only the yaw is taken out."""
    pitch = np.deg2rad(30.0)
    root_rot = wxyz(yaw(np.pi / 2) * Rotation.from_rotvec([0.0, pitch, 0.0]))
    obs = np.asarray(policy_obs(make_frame(root_rot=root_rot), global_obs=False))
    np.testing.assert_allclose(obs[1:4], [np.cos(pitch), 0, -np.sin(pitch)], atol=ATOL)
    np.testing.assert_allclose(obs[4:7], [np.sin(pitch), 0, np.cos(pitch)], atol=ATOL)
    np.testing.assert_allclose(obs[7:10], [2.0, -0.4, -0.3], atol=ATOL)


def test_policy_obs_joint_slots(humanoid):
    """Body j's joint rotation fills obs[13 + 6 (j-1) : 13 + 6 j]: right elbow (body 4) yawed 90 deg,
    right knee (body 10) pitched 90 deg."""
    joint_rot = np.tile([1.0, 0, 0, 0], (B, 1))
    joint_rot[4] = wxyz(yaw(np.pi / 2))
    joint_rot[10] = wxyz(Rotation.from_rotvec([0.0, np.pi / 2, 0.0]))
    obs = np.asarray(policy_obs(make_frame(joint_rot=joint_rot), global_obs=True))
    tn = obs[13:97].reshape(14, 6)
    np.testing.assert_allclose(tn[3], [0, 1, 0, 0, 0, 1], atol=ATOL)
    np.testing.assert_allclose(tn[9], [0, 0, -1, 1, 0, 0], atol=ATOL)
    others = np.delete(tn, [3, 9], axis=0)
    np.testing.assert_allclose(others, np.tile(IDENTITY_TAN_NORM, (12, 1)), atol=ATOL)
    # Joint features do not depend on the heading frame.
    local = np.asarray(policy_obs(make_frame(joint_rot=joint_rot), global_obs=False))
    np.testing.assert_allclose(local[13:97], obs[13:97], atol=ATOL)


# ---------------------------------------------------------------------------------------------
# Discriminator observation


N_STEPS = 10


def window(yaws=None):
    """10 frames, oldest first: frame k has root x = k, y = 0.5, z = 0.8 + 0.01 k, velocities and key
    offsets that depend on k."""
    k = np.arange(N_STEPS, dtype=np.float64)
    yaws = np.zeros(N_STEPS) if yaws is None else yaws
    root_pos = np.stack([k, np.full_like(k, 0.5), 0.8 + 0.01 * k], axis=1)
    offsets = KEY_OFFSETS[None] * (1.0 + 0.1 * k)[:, None, None]  # [n, K, 3]
    return Pose(
        root_pos=jnp.asarray(root_pos, jnp.float32),
        root_rot=jnp.asarray(wxyz(Rotation.from_rotvec(np.outer(yaws, [0, 0, 1]))), jnp.float32),
        root_vel=jnp.asarray(np.stack([k, -k, np.full_like(k, 0.5)], axis=1), jnp.float32),
        root_ang_vel=jnp.asarray(np.stack([0 * k, 0 * k, 0.1 * k], axis=1), jnp.float32),
        joint_rot=jnp.asarray(np.tile([1.0, 0, 0, 0], (N_STEPS, B, 1)), jnp.float32),
        dof_vel=jnp.asarray(0.1 * k[:, None] + 0.001 * np.arange(D)[None], jnp.float32),
        key_pos=jnp.asarray(root_pos[:, None, :] + offsets, jnp.float32),
    ), offsets


def test_disc_obs_window_order_global(humanoid):
    w, offsets = window()
    obs = np.asarray(disc_obs(w, global_obs=True, root_height_obs=True))
    assert obs.shape == (N_STEPS * 142,)
    blocks = obs.reshape(N_STEPS, 142)
    for k in range(N_STEPS):
        b = blocks[k]
        np.testing.assert_allclose(b[0:3], [k - 9, 0.0, 0.8 + 0.01 * k], atol=ATOL)  # newest is the reference
        np.testing.assert_allclose(b[3:9], IDENTITY_TAN_NORM, atol=ATOL)
        np.testing.assert_allclose(b[9:93], np.tile(IDENTITY_TAN_NORM, 14), atol=ATOL)
        np.testing.assert_allclose(b[93:108], offsets[k].ravel(), atol=ATOL)  # relative to frame k's root
        np.testing.assert_allclose(b[108:111], [k, -k, 0.5], atol=ATOL)
        np.testing.assert_allclose(b[111:114], [0, 0, 0.1 * k], atol=ATOL)
        np.testing.assert_allclose(b[114:142], 0.1 * k + 0.001 * np.arange(D), atol=ATOL)


def test_disc_obs_heading_frame_of_newest(humanoid):
    """Frame k yawed by 90 deg + 0.1 (k - 9): every frame is expressed in the newest frame's heading
    frame (yaw 90 deg), not in its own."""
    k = np.arange(N_STEPS)
    yaws = np.pi / 2 + 0.1 * (k - 9)
    w, offsets = window(yaws)
    blocks = np.asarray(disc_obs(w, global_obs=False, root_height_obs=True)).reshape(N_STEPS, 142)
    for k in range(N_STEPS):
        b = blocks[k]
        rel_yaw = 0.1 * (k - 9)
        np.testing.assert_allclose(b[0:3], [0.0, 9.0 - k, 0.8 + 0.01 * k], atol=ATOL)
        np.testing.assert_allclose(b[3:9], [np.cos(rel_yaw), np.sin(rel_yaw), 0, 0, 0, 1], atol=ATOL)
        np.testing.assert_allclose(b[93:108], to_heading(offsets[k]).ravel(), atol=ATOL)
        np.testing.assert_allclose(b[108:111], [-k, -k, 0.5], atol=ATOL)
        np.testing.assert_allclose(b[111:114], [0, 0, 0.1 * k], atol=ATOL)
        np.testing.assert_allclose(b[114:142], 0.1 * k + 0.001 * np.arange(D), atol=ATOL)


def test_disc_obs_without_root_height(humanoid):
    """root_height_obs False keeps only the relative x, y of the root (141 numbers a frame)."""
    w, offsets = window()
    obs = np.asarray(disc_obs(w, global_obs=True, root_height_obs=False))
    assert obs.shape == (N_STEPS * 141,)
    blocks = obs.reshape(N_STEPS, 141)
    for k in range(N_STEPS):
        np.testing.assert_allclose(blocks[k, 0:2], [k - 9, 0.0], atol=ATOL)
        np.testing.assert_allclose(blocks[k, 2:8], IDENTITY_TAN_NORM, atol=ATOL)
        np.testing.assert_allclose(blocks[k, 92:107], offsets[k].ravel(), atol=ATOL)


@pytest.mark.parametrize("global_obs", [True, False])
def test_disc_obs_batched(humanoid, global_obs):
    """A leading batch axis gives the same numbers as each window alone."""
    w1, _ = window()
    w2, _ = window(np.linspace(-1.0, 2.0, N_STEPS))
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), w1, w2)
    out = np.asarray(disc_obs(batch, global_obs))
    assert out.shape == (2, N_STEPS * 142)
    np.testing.assert_allclose(out[0], np.asarray(disc_obs(w1, global_obs)), atol=ATOL)
    np.testing.assert_allclose(out[1], np.asarray(disc_obs(w2, global_obs)), atol=ATOL)


@pytest.mark.parametrize("root_height_obs", [True, False])
def test_disc_feature_columns_name_the_blocks_of_every_frame(humanoid, root_height_obs):
    """The humanoid's frame of 142 numbers (141 without the root height), by hand from the blocks asserted
    above: root position 0:3, root rotation 3:9, joint rotations 9:93, key bodies 93:108, root velocity
    108:111, root angular velocity 111:114, DoF velocities 114:142; each feature's columns in every frame."""
    w, _ = window()
    columns = disc_feature_columns(w, global_obs=True, root_height_obs=root_height_obs)
    c = 0 if root_height_obs else 1
    per_frame = 142 - c
    blocks = {"root_pos": (0, 3 - c), "root_rot": (3 - c, 9 - c), "joint_rot": (9 - c, 93 - c),
              "key_pos": (93 - c, 108 - c), "root_vel": (108 - c, 111 - c), "root_ang_vel": (111 - c, 114 - c),
              "dof_vel": (114 - c, 142 - c)}
    assert list(columns) == list(blocks)
    for name, (lo, hi) in blocks.items():
        want = np.concatenate([np.arange(k * per_frame + lo, k * per_frame + hi) for k in range(N_STEPS)])
        np.testing.assert_array_equal(columns[name], want, err_msg=name)
