"""amp_jax.envs.pd: the PD servo's position error and torque, and a standing test in MJX on the CPU."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx
from scipy.spatial.transform import Rotation

from amp_jax import quat
from amp_jax.characters import kinematics
from amp_jax.characters.character import BALL, HINGE
from amp_jax.envs import pd

ATOL = 1e-5
N = 32


def random_qpos(layout, nq, rng, n=N):
    """Random MuJoCo qpos: random root, random ball quaternions (either sign of w), hinge angles."""
    qpos = np.zeros((n, nq), np.float32)
    qpos[:, :3] = rng.normal(size=(n, 3))
    qpos[:, 3:7] = Rotation.random(n, random_state=rng.integers(1 << 31)).as_quat()[:, [3, 0, 1, 2]]
    for j in range(1, layout.num_bodies):
        a = layout.qpos_adr[j]
        if layout.joint_kind[j] == BALL:
            q = Rotation.random(n, random_state=rng.integers(1 << 31)).as_quat()[:, [3, 0, 1, 2]]
            qpos[:, a:a + 4] = q * np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
        elif layout.joint_kind[j] == HINGE:
            qpos[:, a] = rng.uniform(layout.dof_low[layout.dof_start[j]], layout.dof_high[layout.dof_start[j]], n)
    return qpos


def expected_error(layout, qpos, target):
    """Position error per DoF computed with scipy."""
    err = np.zeros_like(target, dtype=np.float64)
    for j in range(1, layout.num_bodies):
        s, a = layout.dof_start[j], layout.qpos_adr[j]
        if layout.joint_kind[j] == BALL:
            cur = Rotation.from_quat(qpos[:, a:a + 4][:, [1, 2, 3, 0]].astype(np.float64))
            tgt = Rotation.from_rotvec(target[:, s:s + 3].astype(np.float64))
            err[:, s:s + 3] = (cur.inv() * tgt).as_rotvec()
        elif layout.joint_kind[j] == HINGE:
            err[:, s] = target[:, s] - qpos[:, a]
    return err


def test_position_error_hinge_and_ball(humanoid):
    layout, m = humanoid.layout, humanoid.mj_model
    rng = np.random.default_rng(0)
    qpos = random_qpos(layout, m.nq, rng)
    target = rng.uniform(layout.action_low, layout.action_high, (N, layout.num_dof)).astype(np.float32)
    got = np.asarray(pd.position_error(layout, jnp.asarray(qpos), jnp.asarray(target)))
    want = expected_error(layout, qpos, target)
    assert got.shape == (N, 28)
    hinge_bodies = [j for j in range(1, layout.num_bodies) if layout.joint_kind[j] == HINGE]
    assert len(hinge_bodies) == 4
    hinge_dof, hinge_qpos = layout.dof_start[hinge_bodies], layout.qpos_adr[hinge_bodies]
    # Hinges: exactly target - q (no wrapping).
    np.testing.assert_allclose(got[:, hinge_dof], target[:, hinge_dof] - qpos[:, hinge_qpos], atol=ATOL)
    # Ball joints: the rotation vector of q_cur^-1 q_tgt. Near angle pi the vector's sign is
    # ambiguous, so compare vectors away from pi and rotations everywhere.
    for j in range(1, layout.num_bodies):
        if layout.joint_kind[j] != BALL:
            continue
        s = layout.dof_start[j]
        g, w = got[:, s:s + 3], want[:, s:s + 3]
        ok = np.linalg.norm(w, axis=-1) < np.pi - 1e-2
        np.testing.assert_allclose(g[ok], w[ok], atol=1e-4)
        diff = Rotation.from_rotvec(g).inv() * Rotation.from_rotvec(w)
        np.testing.assert_allclose(diff.magnitude(), 0.0, atol=1e-4)


def test_position_error_zero_at_target(humanoid):
    layout = humanoid.layout
    rng = np.random.default_rng(1)
    target = rng.uniform(-1.0, 1.0, (N, layout.num_dof)).astype(np.float32)
    joint_rot = kinematics.dof_to_joint_rot(layout, jnp.asarray(target))
    qpos = kinematics.to_qpos(layout, jnp.zeros((N, 3)), quat.identity((N,)), joint_rot)
    np.testing.assert_allclose(pd.position_error(layout, qpos, jnp.asarray(target)), 0.0, atol=1e-5)
    # Small offsets give small errors of the right sign, in the child frame.
    delta = np.zeros_like(target)
    delta[:, 0] = 0.01  # abdomen_x
    err = np.asarray(pd.position_error(layout, qpos, jnp.asarray(target + delta)))
    want = expected_error(layout, np.asarray(qpos), target + delta)
    np.testing.assert_allclose(err, want, atol=1e-4)
    assert np.all(np.abs(err[:, 3:]) < 1e-5)


def test_servo_torque_clips_at_limits(humanoid):
    layout, m = humanoid.layout, humanoid.mj_model
    rng = np.random.default_rng(2)
    qpos = random_qpos(layout, m.nq, rng)
    target = rng.uniform(layout.action_low, layout.action_high, (N, layout.num_dof)).astype(np.float32)
    tau = np.asarray(pd.servo_torque(layout, jnp.asarray(qpos), jnp.asarray(target)))
    err = np.asarray(pd.position_error(layout, jnp.asarray(qpos), jnp.asarray(target)))
    unclipped = layout.kp * err
    np.testing.assert_allclose(tau, np.clip(unclipped, -layout.torque_limit, layout.torque_limit), rtol=1e-6, atol=1e-4)
    assert np.all(np.abs(tau) <= layout.torque_limit + 1e-4)
    saturated = np.abs(unclipped) > layout.torque_limit
    assert saturated.any() and (~saturated).any()  # both regimes are exercised
    np.testing.assert_allclose(np.abs(tau[saturated]), np.broadcast_to(layout.torque_limit, tau.shape)[saturated])

    # A small error stays linear: tau = kp * e.
    joint_rot = kinematics.dof_to_joint_rot(layout, jnp.zeros(layout.num_dof))
    q0 = kinematics.to_qpos(layout, jnp.zeros(3), quat.identity(), joint_rot)
    small = np.full(layout.num_dof, 0.01, np.float32)
    tau = np.asarray(pd.servo_torque(layout, q0, jnp.asarray(small)))
    e = np.asarray(pd.position_error(layout, q0, jnp.asarray(small)))
    np.testing.assert_allclose(tau, layout.kp * e, rtol=1e-5)
    assert np.all(np.abs(tau) < layout.torque_limit)


INIT_DOF = np.zeros(28, np.float32)
INIT_DOF[6] = 1.5708  # right_shoulder_x: arms down
INIT_DOF[10] = -1.5708  # left_shoulder_x
CONTROL_STEPS = 60  # 2 s at 30 Hz


def test_control_step_holds_standing_pose(humanoid):
    layout, m = humanoid.layout, humanoid.mj_model
    assert layout.dof_names[6] == "right_shoulder_x" and layout.dof_names[10] == "left_shoulder_x"
    model = mjx.put_model(m)
    target = jnp.asarray(INIT_DOF)
    qpos0 = kinematics.to_qpos(layout, jnp.array([0.0, 0.0, 0.8824]), quat.identity(),
                               kinematics.dof_to_joint_rot(layout, target))
    data = mjx.make_data(model)
    data = data.replace(qpos=qpos0.astype(data.qpos.dtype))

    @jax.jit
    def rollout(d):
        def step(d, _):
            d = pd.control_step(model, layout, d, target, humanoid.physics.substeps, True)
            return d, (d.qpos[2], jnp.max(jnp.abs(d.qvel)))

        return jax.lax.scan(step, d, None, length=CONTROL_STEPS)

    data, (height, speed) = rollout(data)
    height, speed = np.asarray(height), np.asarray(speed)
    assert np.all(np.isfinite(height)) and np.all(np.isfinite(np.asarray(data.qpos)))
    # The character stands: the pelvis stays within 3 cm of its start and everything is at rest.
    assert np.max(np.abs(height - 0.8824)) < 0.03, height
    assert float(np.max(np.abs(np.asarray(data.qvel)))) < 0.5
    assert np.max(speed[CONTROL_STEPS // 2:]) < 0.5
    # And the servo holds the arms down near their targets.
    dof = np.asarray(kinematics.joint_rot_to_dof(layout, kinematics.qpos_to_joint_rot(layout, data.qpos)))
    np.testing.assert_allclose(dof[[6, 10]], INIT_DOF[[6, 10]], atol=0.1)
    # The feet carry the weight: both foot/floor pairs are in contact at the end.
    d = mujoco.MjData(m)
    d.qpos[:] = np.asarray(data.qpos)
    mujoco.mj_forward(m, d)
    feet = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n) for n in ("right_foot", "left_foot")}
    assert feet <= {int(d.contact[i].geom2) for i in range(d.ncon)} | {int(d.contact[i].geom1) for i in range(d.ncon)}
