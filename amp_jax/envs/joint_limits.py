"""Per-axis limits of 3-DoF (ball) joints, as the character files and MimicKit's Isaac Gym engine have them.

MuJoCo limits a ball joint only by a cone on its rotation angle (as wide as the widest axis range:
load_character), while the file limits each of the joint's three exponential-map coordinates v (the DoF
positions MimicKit's policy sees) to its own range [lo, hi]. Outside that box a stiff spring pushes v
back: the energy k/2 |v - clip(v, lo, hi)|^2 gives the generalised force, in the child frame like the
joint's angular velocity,

    tau = -J_r(v)^-T k (v - clip(v, lo, hi)),

where J_r is SO(3)'s right Jacobian (v' = J_r(v)^-1 w for the child-frame angular velocity w), and
k = STIFFNESS_PER_KP * kp per DoF. The joint's damping (the servo's D term, integrated implicitly) damps
it. A servo pushing past the limit at its torque limit holds the joint within tau_max / k of it (1-3
degrees for the humanoid, up to 6 for SMPL). The one-DoF bound for stability of MuJoCo's Euler step with implicit damping,
k dt^2 / I < 4 + 2 kd dt / I, allows about 24 kp at the tightest DoF (the humanoid's and SMPL's ankles,
at 120 Hz); 10 keeps a margin for the coupling between DoFs.
"""

from __future__ import annotations

import jax.numpy as jnp

from amp_jax import quat
from amp_jax.characters import kinematics
from amp_jax.characters.character import Layout

STIFFNESS_PER_KP = 10.0


def right_jacobian_inv_transpose(v, f):
    """J_r(v)^-T f for rotation vectors v [..., 3] (|v| <= pi) and vectors f [..., 3]:
    f - v x f / 2 + c v x (v x f), c = 1/t^2 - cot(t/2) / (2t) with t = |v| (1/12 + t^2/720 near 0)."""
    t2 = jnp.sum(v * v, axis=-1, keepdims=True)
    t = jnp.sqrt(jnp.maximum(t2, 1e-12))  # the gradient stays finite at v = 0
    small = t < 1e-3
    t_safe = jnp.where(small, 1.0, t)
    c = jnp.where(small, 1.0 / 12.0 + t2 / 720.0,
                  1.0 / t_safe**2 - jnp.cos(t_safe / 2) / (2.0 * t_safe * jnp.sin(t_safe / 2)))
    vxf = jnp.cross(v, f)
    return f - 0.5 * vxf + c * jnp.cross(v, vxf)


def ball_limit_torque(layout: Layout, qpos):
    """The limit springs' generalised force per DoF [..., D] (zero on hinges and inside the ranges)."""
    j = layout.joints
    v = quat.to_exp_map(quat.normalize(qpos[..., j.ball_qpos]))  # [..., Nb, 3]
    lo, hi = jnp.asarray(layout.dof_low)[j.ball_dofs], jnp.asarray(layout.dof_high)[j.ball_dofs]
    k = STIFFNESS_PER_KP * jnp.asarray(layout.kp)[j.ball_dofs]
    ball = -right_jacobian_inv_transpose(v, k * (v - jnp.clip(v, lo, hi)))
    return kinematics.by_dof(layout, ball, jnp.zeros((*qpos.shape[:-1], len(j.hinge_dofs)), ball.dtype))
