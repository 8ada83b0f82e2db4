"""The one pose record: a character's pose with velocities, as the motion library samples it and as the
environment reads it from the simulation (and the key bodies' positions where they are known)."""

from __future__ import annotations

import jax
from flax import struct

from amp_jax.characters import kinematics
from amp_jax.characters.character import Layout


@struct.dataclass
class Pose:
    """World frame, except DoF velocities (joint-local). Leading axes [...] are free (time, environments)."""

    root_pos: jax.Array  # [..., 3]
    root_rot: jax.Array  # [..., 4] (w, x, y, z)
    root_vel: jax.Array  # [..., 3]
    root_ang_vel: jax.Array  # [..., 3]
    joint_rot: jax.Array  # [..., B, 4] per body, local (as the clips store them)
    dof_vel: jax.Array  # [..., D]
    key_pos: jax.Array | None = None  # [..., K, 3] the key bodies (observations need them; clips leave them out)


def with_key_bodies(layout: Layout, pose: Pose) -> Pose:
    """The pose with its key bodies' world positions, by forward kinematics."""
    body_pos, _ = kinematics.forward_kinematics(layout, pose.root_pos, pose.root_rot, pose.joint_rot)
    return pose.replace(key_pos=body_pos[..., layout.key_body_ids, :])
