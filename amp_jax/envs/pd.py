"""The PD position servo that drives every DoF, and the control step that runs the physics substeps (the
servo's torque and the ball joints' per-axis limit springs of amp_jax.envs.joint_limits at each one).

Torque per DoF: tau = clip(kp * e, -limit, limit), where e is the target minus the current position
(ball joints: the rotation vector of q_current^-1 * q_target, expressed in the child frame, like the
joint's local angular velocity). The damping term -kd * qdot is the joint's damping in the normalised
MuJoCo model, which the Euler integrator treats implicitly: stable at kd = 100 and 120 Hz, where an
explicit damping term would not be.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from amp_jax import quat
from amp_jax.characters import kinematics
from amp_jax.characters.character import Layout
from amp_jax.characters.mjx_backend import mjx  # quiet about MuJoCo Warp
from amp_jax.envs import joint_limits


def position_error(layout: Layout, qpos, target_dof):
    """Target minus current position per DoF [..., D]."""
    j = layout.joints
    cur = quat.normalize(qpos[..., j.ball_qpos])
    tgt = quat.from_exp_map(target_dof[..., j.ball_dofs])
    ball = quat.to_exp_map(quat.mul(quat.conj(cur), tgt))
    hinge = target_dof[..., j.hinge_dofs] - qpos[..., j.hinge_qpos]
    return kinematics.by_dof(layout, ball, hinge)


def servo_torque(layout: Layout, qpos, target_dof):
    """The explicit (stiffness) part of the servo torque, clipped to the torque limits [..., D]."""
    limit = jnp.asarray(layout.torque_limit)
    return jnp.clip(jnp.asarray(layout.kp) * position_error(layout, qpos, target_dof), -limit, limit)


def joint_torque(layout: Layout, qpos, target_dof, ball_axis_limits: bool):
    """The generalised force applied to the DoFs at each physics step [..., D]: the servo's, plus the
    per-axis limit springs of the ball joints where on (amp_jax.envs.joint_limits)."""
    tau = servo_torque(layout, qpos, target_dof)
    return tau + joint_limits.ball_limit_torque(layout, qpos) if ball_axis_limits else tau


def control_step(model: mjx.Model, layout: Layout, data: mjx.Data, target_dof, substeps: int,
                 ball_axis_limits: bool) -> mjx.Data:
    """Hold the PD targets for `substeps` physics steps (one control step) of one world."""

    def substep(d, _):
        tau = joint_torque(layout, d.qpos, target_dof, ball_axis_limits)
        d = d.replace(qfrc_applied=jnp.concatenate([jnp.zeros(6, tau.dtype), tau]))
        return mjx.step(model, d), None

    data, _ = jax.lax.scan(substep, data, None, length=substeps)
    return data
