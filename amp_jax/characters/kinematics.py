"""Forward kinematics and the maps between MuJoCo coordinates and a character's DoF vector.

The DoF vector (length D) is MimicKit's: a ball joint contributes its exponential map, a hinge its
angle, in depth-first body order. Its velocity is MuJoCo's qvel[6:] unchanged (ball joints: local
angular velocity). Joint rotations are quaternions [..., B, 4] indexed by body (the root's entry and
fixed joints are the identity).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from amp_jax import quat
from amp_jax.characters.character import Layout


def by_dof(layout: Layout, ball, hinge):
    """Per-kind DoF values (ball [..., Nb, 3], hinge [..., Nh]) in DoF order [..., D] (Layout.joints)."""
    flat = jnp.concatenate([ball.reshape(*ball.shape[:-2], -1), hinge], axis=-1)
    return flat[..., layout.joints.dof_order]


def by_body(layout: Layout, ball, hinge):
    """Per-kind joint rotations (ball [..., Nb, 4], hinge [..., Nh, 4]) in body order [..., B, 4], the root
    and fixed joints the identity."""
    batch = jnp.broadcast_shapes(ball.shape[:-2], hinge.shape[:-2])
    parts = [quat.identity((*batch, 1)), jnp.broadcast_to(ball, (*batch, *ball.shape[-2:])),
             jnp.broadcast_to(hinge, (*batch, *hinge.shape[-2:]))]
    return jnp.concatenate(parts, axis=-2)[..., layout.joints.body_order, :]


def dof_to_joint_rot(layout: Layout, dof_pos):
    """Joint rotations [..., B, 4] from DoF positions [..., D]."""
    j = layout.joints
    return by_body(layout, quat.from_exp_map(dof_pos[..., j.ball_dofs]),
                   quat.from_axis_angle(jnp.asarray(j.hinge_axis), dof_pos[..., j.hinge_dofs]))


def joint_rot_to_dof(layout: Layout, joint_rot):
    """DoF positions [..., D] from joint rotations [..., B, 4] (hinges: the twist about the axis)."""
    j = layout.joints
    return by_dof(layout, quat.to_exp_map(joint_rot[..., j.ball_bodies, :]),
                  quat.twist_angle(joint_rot[..., j.hinge_bodies, :], jnp.asarray(j.hinge_axis)))


def qpos_to_joint_rot(layout: Layout, qpos):
    """Joint rotations [..., B, 4] read from MuJoCo qpos [..., nq]."""
    j = layout.joints
    return by_body(layout, quat.normalize(qpos[..., j.ball_qpos]),
                   quat.from_axis_angle(jnp.asarray(j.hinge_axis), qpos[..., j.hinge_qpos]))


def qpos_frame(layout: Layout, qpos):
    """(root position, unit root rotation, joint rotations [..., B, 4]) of MuJoCo poses qpos [..., nq]."""
    return qpos[..., :3], quat.normalize(qpos[..., 3:7]), qpos_to_joint_rot(layout, qpos)


def to_qpos(layout: Layout, root_pos, root_rot, joint_rot):
    """MuJoCo qpos from root position, root rotation and joint rotations."""
    j = layout.joints
    ball = quat.positive_w(joint_rot[..., j.ball_bodies, :])
    hinge = quat.twist_angle(joint_rot[..., j.hinge_bodies, :], jnp.asarray(j.hinge_axis))
    joints = jnp.concatenate([ball.reshape(*ball.shape[:-2], -1), hinge], axis=-1)[..., j.qpos_order]
    return jnp.concatenate([root_pos, root_rot, joints], axis=-1)


def to_qvel(root_rot, root_vel, root_ang_vel, dof_vel):
    """MuJoCo qvel from world-frame root velocities and DoF velocities."""
    local_ang = quat.rotate(quat.conj(root_rot), root_ang_vel)
    return jnp.concatenate([root_vel, local_ang, dof_vel], axis=-1)


def root_ang_vel_world(qpos, qvel):
    """World-frame root angular velocity (MuJoCo's free-joint qvel[3:6] is in the body frame)."""
    return quat.rotate(qpos[..., 3:7], qvel[..., 3:6])


def forward_kinematics(layout: Layout, root_pos, root_rot, joint_rot):
    """World positions [..., B, 3] and rotations [..., B, 4] of every body origin.

    Each body's pose passes an optimization barrier: without it XLA fuses every parent's arithmetic into
    each of its consumers, so the work grows exponentially with chain depth (G1's 31 bodies: 160x slower).
    """
    parents = layout.parents
    offsets = jnp.asarray(layout.body_pos)
    local_rot = jnp.asarray(layout.body_quat)
    pos, rot = [root_pos], [root_rot]
    for j in range(1, layout.num_bodies):
        p = int(parents[j])
        pos_j = pos[p] + quat.rotate(rot[p], jnp.broadcast_to(offsets[j], pos[p].shape))
        rot_j = quat.mul(rot[p], quat.mul(jnp.broadcast_to(local_rot[j], rot[p].shape), joint_rot[..., j, :]))
        pos_j, rot_j = jax.lax.optimization_barrier((pos_j, rot_j))
        pos.append(pos_j)
        rot.append(rot_j)
    return jnp.stack(pos, axis=-2), jnp.stack(rot, axis=-2)


def lowest_fail_geom_height(layout: Layout, body_pos, body_rot):
    """Lowest world z of any geom whose floor contact ends the episode ([...])."""
    if len(layout.fail_geom_body) == 0:
        return jnp.full(body_pos.shape[:-2], jnp.inf)
    idx = np.asarray(layout.fail_geom_body)
    bpos, brot = body_pos[..., idx, :], body_rot[..., idx, :]
    gpos = bpos + quat.rotate(brot, jnp.broadcast_to(jnp.asarray(layout.fail_geom_pos), bpos.shape))
    grot = quat.mul(brot, jnp.broadcast_to(jnp.asarray(layout.fail_geom_quat), brot.shape))
    zrow = quat.to_matrix(grot)[..., 2, :]  # world z of each local axis
    reach = jnp.sum(jnp.abs(zrow) * jnp.asarray(layout.fail_geom_extent), axis=-1) + jnp.asarray(layout.fail_geom_radius)
    return jnp.min(gpos[..., 2] - reach, axis=-1)
