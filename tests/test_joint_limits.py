"""Per-axis limits of ball joints (amp_jax.envs.joint_limits): the limit torque is the derivative of its
energy, found independently by automatic differentiation through the quaternion maps, and in simulation a
joint driven outside one axis's range, inside MuJoCo's cone, is held at that axis's limit."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mujoco import mjx

from amp_jax import quat
from amp_jax.characters import kinematics
from amp_jax.envs import joint_limits, pd


def _exp_map_jacobian(v):
    """d log(exp(v) exp(d)) / d d at d = 0 [3, 3], by automatic differentiation (= J_r(v)^-1)."""
    moved = lambda d: quat.to_exp_map(quat.mul(quat.from_exp_map(v), quat.from_exp_map(d)))  # noqa: E731
    return jax.jacfwd(moved)(jnp.full(3, 1e-9))


@pytest.mark.parametrize("angle", [1e-5, 0.3, 1.5, 2.5, 3.0])
def test_right_jacobian_inverse_transpose_matches_autodiff(angle):
    rng = np.random.default_rng(int(angle * 100))
    axis = rng.normal(size=3)
    v = jnp.asarray(angle * axis / np.linalg.norm(axis), jnp.float32)
    f = jnp.asarray(rng.normal(size=3), jnp.float32)
    expected = _exp_map_jacobian(v).T @ f
    np.testing.assert_allclose(joint_limits.right_jacobian_inv_transpose(v, f), expected, rtol=2e-4, atol=2e-4)


def _with_ball(layout, body, v):
    """Identity pose (root at 2 m) but for the ball joint of `body` at exp-map v: qpos [nq]."""
    dof = np.zeros(layout.num_dof, np.float32)
    dof[layout.dof_start[body]:layout.dof_start[body] + 3] = v
    return dof, kinematics.to_qpos(layout, jnp.array([0.0, 0.0, 2.0]), quat.identity(),
                                   kinematics.dof_to_joint_rot(layout, jnp.asarray(dof)))


def test_limit_torque_is_zero_inside_and_minus_the_energy_gradient_outside(humanoid):
    """Inside the box: no torque. Outside: tau = -dE/dd for E = k/2 |v - clip(v)|^2 and a child-frame
    rotation d of the joint (autodiff), with k = 10 kp per axis."""
    layout = humanoid.layout
    hip = layout.body_names.index("right_thigh")
    lo, hi = layout.dof_low[layout.dof_start[hip]:][:3], layout.dof_high[layout.dof_start[hip]:][:3]
    inside = 0.5 * (lo + hi)
    np.testing.assert_array_equal(joint_limits.ball_limit_torque(layout, _with_ball(layout, hip, inside)[1]), 0)

    v = jnp.asarray([hi[0] + 0.4, lo[1] - 0.3, 0.2], jnp.float32)  # out on x and y
    tau = np.asarray(joint_limits.ball_limit_torque(layout, _with_ball(layout, hip, v)[1]))
    s = layout.dof_start[hip]
    k = 10.0 * layout.kp[s:s + 3]

    def energy(d):
        moved = quat.to_exp_map(quat.mul(quat.from_exp_map(v), quat.from_exp_map(d)))
        return 0.5 * jnp.sum(k * (moved - jnp.clip(moved, lo, hi)) ** 2)

    np.testing.assert_allclose(tau[s:s + 3], -jax.grad(energy)(jnp.full(3, 1e-9)), rtol=1e-4)
    assert np.count_nonzero(tau) == 3  # that joint's three DoFs only


def test_a_hip_driven_outside_one_axis_range_is_held_at_that_limit(humanoid):
    """The right hip's abduction range is [-1.05, 0.52] while MuJoCo's cone allows 2.44 rad. A floating
    humanoid (no gravity, 2 m up) starts at 0.9 rad and its servo pushes toward 0.9 (at its torque limit,
    200 Nm) for 1 s: with the per-axis limit the joint comes back to within tau_max / k = 0.04 rad of 0.52;
    with MuJoCo's cone alone it stays at 0.9."""
    layout = humanoid.layout
    hip = layout.body_names.index("right_thigh")
    s = layout.dof_start[hip]
    assert layout.dof_names[s] == "right_hip_x" and layout.dof_high[s] == pytest.approx(0.5236, abs=1e-3)
    target, qpos0 = _with_ball(layout, hip, np.array([0.9, 0.0, 0.0]))
    m = copy.copy(humanoid.mj_model)  # the session's humanoid keeps its gravity
    m.opt.gravity[:] = 0.0
    model = mjx.put_model(m)
    data = mjx.make_data(model).replace(qpos=qpos0)

    def hip_x_after_a_second(limits):
        def step(d, _):
            return pd.control_step(model, layout, d, jnp.asarray(target), humanoid.physics.substeps, limits), None

        d = jax.jit(lambda d: jax.lax.scan(step, d, None, length=30)[0])(data)
        return float(quat.to_exp_map(quat.normalize(d.qpos[layout.joints.ball_qpos]))[
            list(layout.joints.ball_bodies).index(hip), 0])

    held = hip_x_after_a_second(True)
    assert 0.5236 <= held < 0.5236 + 0.04, held
    assert hip_x_after_a_second(False) > 0.85
