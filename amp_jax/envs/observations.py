"""Policy and discriminator observations, computed from character frames (MimicKit's layouts).

A frame is a Pose (amp_jax.characters.pose) with its key bodies: root pose and world-frame velocities,
joint rotations, DoF velocities and key-body world positions. The same feature functions serve the
simulated character and the demo windows drawn from the motion library.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from amp_jax import quat
from amp_jax.characters.pose import Pose


def _heading_inv(root_rot, global_obs: bool):
    if global_obs:
        return quat.identity(root_rot.shape[:-1])
    return quat.heading_quat_inv(root_rot)


def _joint_tan_norms(f: Pose):
    tn = quat.tan_norm(f.joint_rot[..., 1:, :])
    return tn.reshape(*tn.shape[:-2], -1)


def policy_obs(f: Pose, global_obs: bool, root_height_obs: bool = True) -> jax.Array:
    """[root height (if root_height_obs), root rot (6), root vel, root ang vel, joint rots (6 each), DoF vel,
    key offsets]."""
    h_inv = _heading_inv(f.root_rot, global_obs)
    root_rot = f.root_rot if global_obs else quat.mul(h_inv, f.root_rot)
    key = f.key_pos - f.root_pos[..., None, :]
    key = quat.rotate(h_inv[..., None, :], key)
    return jnp.concatenate([
        f.root_pos[..., 2:2 + int(root_height_obs)],
        quat.tan_norm(root_rot),
        quat.rotate(h_inv, f.root_vel),
        quat.rotate(h_inv, f.root_ang_vel),
        _joint_tan_norms(f),
        f.dof_vel,
        key.reshape(*key.shape[:-2], -1),
    ], axis=-1)


# The features of a discriminator frame, in the order disc_obs lays them out.
DISC_FEATURES = ("root_pos", "root_rot", "joint_rot", "key_pos", "root_vel", "root_ang_vel", "dof_vel")


def disc_frame_features(window: Pose, global_obs: bool, root_height_obs: bool = True) -> dict[str, jax.Array]:
    """The features of each frame of a window [..., n, ...] (oldest first), by name (DISC_FEATURES): root
    position relative to the newest frame (z absolute when root_height_obs), root rotation, joint rotations,
    key-body offsets from that frame's root, root velocity, root angular velocity, DoF velocities. With
    global_obs False, vectors are in the newest frame's heading frame."""
    newest_pos, newest_rot = window.root_pos[..., -1:, :], window.root_rot[..., -1:, :]
    h_inv = jnp.broadcast_to(_heading_inv(newest_rot, global_obs), window.root_rot.shape)
    rel = quat.rotate(h_inv, window.root_pos - newest_pos)
    if root_height_obs:
        rel = jnp.concatenate([rel[..., :2], window.root_pos[..., 2:3]], axis=-1)
    else:
        rel = rel[..., :2]
    root_rot = window.root_rot if global_obs else quat.mul(h_inv, window.root_rot)
    key = quat.rotate(h_inv[..., None, :], window.key_pos - window.root_pos[..., None, :])
    return dict(zip(DISC_FEATURES, (
        rel,
        quat.tan_norm(root_rot),
        _joint_tan_norms(window),
        key.reshape(*key.shape[:-2], -1),
        quat.rotate(h_inv, window.root_vel),
        quat.rotate(h_inv, window.root_ang_vel),
        window.dof_vel,
    )))


def disc_obs(window: Pose, global_obs: bool, root_height_obs: bool = True) -> jax.Array:
    """Discriminator observation of a window [..., n, ...] (oldest first): its frames' features
    (disc_frame_features), flattened frame-major."""
    features = disc_frame_features(window, global_obs, root_height_obs)
    per_frame = jnp.concatenate([features[name] for name in DISC_FEATURES], axis=-1)
    return per_frame.reshape(*per_frame.shape[:-2], -1)


def disc_feature_columns(window: Pose, global_obs: bool, root_height_obs: bool = True) -> dict[str, np.ndarray]:
    """The columns of disc_obs(window) that each feature of disc_frame_features fills, over all frames
    (shapes only: nothing is computed)."""
    shapes = jax.eval_shape(lambda w: disc_frame_features(w, global_obs, root_height_obs), window)
    sizes = {name: shapes[name].shape[-1] for name in DISC_FEATURES}
    num_frames, per_frame = shapes["root_pos"].shape[-2], sum(sizes.values())
    starts = np.cumsum([0, *sizes.values()])[:-1]
    return {name: (np.arange(num_frames)[:, None] * per_frame + start + np.arange(size)).ravel()
            for (name, size), start in zip(sizes.items(), starts)}
