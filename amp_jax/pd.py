"""The PD position servo that drives every DoF, and the control step that runs the physics substeps.

Torque per DoF: tau = clip(kp * e, -limit, limit), where e is the target minus the current position
(ball joints: the rotation vector of q_current^-1 * q_target, expressed in the child frame, like the
joint's local angular velocity). The damping term -kd * qdot is the joint's damping in the normalised
MuJoCo model, which the Euler integrator treats implicitly: stable at kd = 100 and 120 Hz, where an
explicit damping term would not be.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from amp_jax import kinematics, quat
from amp_jax.character import BALL, HINGE, Layout
from amp_jax.mjx_backend import mjx  # quiet about MuJoCo Warp


def position_error(layout: Layout, qpos, target_dof):
    """Target minus current position per DoF [..., D]."""
    cur = kinematics.qpos_to_joint_rot(layout, qpos)
    tgt = kinematics.dof_to_joint_rot(layout, target_dof)
    parts = []
    for j, kind in enumerate(layout.joint_kind):
        if j > 0 and kind == BALL:
            parts.append(quat.to_exp_map(quat.mul(quat.conj(cur[..., j, :]), tgt[..., j, :])))
        elif j > 0 and kind == HINGE:
            s, a = layout.dof_start[j], layout.qpos_adr[j]
            parts.append((target_dof[..., s] - qpos[..., a])[..., None])
    return jnp.concatenate(parts, axis=-1)


def servo_torque(layout: Layout, qpos, target_dof):
    """The explicit (stiffness) part of the servo torque, clipped to the torque limits [..., D]."""
    limit = jnp.asarray(layout.torque_limit)
    return jnp.clip(jnp.asarray(layout.kp) * position_error(layout, qpos, target_dof), -limit, limit)


def control_step(model: mjx.Model, layout: Layout, data: mjx.Data, target_dof, substeps: int) -> mjx.Data:
    """Hold the PD targets for `substeps` physics steps (one control step) of one world."""

    def substep(d, _):
        tau = servo_torque(layout, d.qpos, target_dof)
        d = d.replace(qfrc_applied=jnp.concatenate([jnp.zeros(6, tau.dtype), tau]))
        return mjx.step(model, d), None

    data, _ = jax.lax.scan(substep, data, None, length=substeps)
    return data
