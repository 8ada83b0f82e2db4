"""amp_jax.characters.kinematics and the humanoid's Layout, checked against MuJoCo's own kinematics."""

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from amp_jax.characters import kinematics
from amp_jax.characters.character import BALL, HINGE

ATOL = 1e-5
NUM_POSES = 8

DOF_NAMES = (
    "abdomen_x", "abdomen_y", "abdomen_z", "neck_x", "neck_y", "neck_z",
    "right_shoulder_x", "right_shoulder_y", "right_shoulder_z", "right_elbow",
    "left_shoulder_x", "left_shoulder_y", "left_shoulder_z", "left_elbow",
    "right_hip_x", "right_hip_y", "right_hip_z", "right_knee",
    "right_ankle_x", "right_ankle_y", "right_ankle_z",
    "left_hip_x", "left_hip_y", "left_hip_z", "left_knee",
    "left_ankle_x", "left_ankle_y", "left_ankle_z",
)


def random_root(rng, n):
    pos = rng.uniform(-1.0, 1.0, (n, 3)) + np.array([0.0, 0.0, 1.0])
    rot = Rotation.random(n, random_state=rng.integers(1 << 31)).as_quat()[:, [3, 0, 1, 2]]
    return pos.astype(np.float32), rot.astype(np.float32)


def random_pose(layout, seed, n=NUM_POSES):
    rng = np.random.default_rng(seed)
    dof = rng.uniform(-1.0, 1.0, (n, layout.num_dof)).astype(np.float32)
    root_pos, root_rot = random_root(rng, n)
    return root_pos, root_rot, dof


def pose_qpos(layout, root_pos, root_rot, dof):
    joint_rot = kinematics.dof_to_joint_rot(layout, jnp.asarray(dof))
    return np.asarray(kinematics.to_qpos(layout, jnp.asarray(root_pos), jnp.asarray(root_rot), joint_rot), np.float64)


def mj_kinematics(model, qpos):
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    return data


def align(q, ref):
    return q * np.where(np.sum(q * ref, axis=-1, keepdims=True) < 0, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Layout


def test_layout_sizes_and_names(humanoid):
    m, layout = humanoid.mj_model, humanoid.layout
    assert m.nq == 43
    assert m.nv == 34
    assert layout.num_dof == 28
    assert layout.frame_width == 34
    assert layout.dof_names == DOF_NAMES
    assert layout.num_bodies == m.nbody - 1 == 15
    assert layout.body_names == tuple(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(1, m.nbody))
    np.testing.assert_array_equal(layout.parents, m.body_parentid[1:] - 1)
    assert [layout.body_names[i] for i in layout.key_body_ids] == [
        "head", "right_hand", "left_hand", "right_foot", "left_foot"]
    assert [layout.body_names[i] for i in layout.contact_body_ids] == ["right_foot", "left_foot"]
    # 8 ball joints (3 DoF) + 4 hinges (elbows, knees) = 28; hands and pelvis have no joint.
    kinds = dict(zip(layout.body_names, layout.joint_kind))
    assert sum(k == BALL for k in layout.joint_kind[1:]) == 8
    assert [n for n, k in kinds.items() if k == HINGE] == ["right_lower_arm", "left_lower_arm", "right_shin", "left_shin"]
    # Each body's qpos address and DoF start agree with MuJoCo's joint tables.
    for i in range(1, layout.num_bodies):
        if layout.joint_kind[i] in (BALL, HINGE):
            jid = m.body_jntadr[i + 1]
            assert layout.qpos_adr[i] == m.jnt_qposadr[jid]
            assert layout.dof_start[i] + 6 == m.jnt_dofadr[jid]
            assert m.jnt_type[jid] == (mujoco.mjtJoint.mjJNT_BALL if layout.joint_kind[i] == BALL else mujoco.mjtJoint.mjJNT_HINGE)


def test_action_bounds(humanoid):
    layout = humanoid.layout
    want = {
        "abdomen": (-1.88496, 1.88496),
        "neck": (-1.25664, 1.25664),
        "right_shoulder": (-3.35100, 3.35100),
        "left_shoulder": (-3.35100, 3.35100),
        "right_hip": (-2.93220, 2.93220),
        "left_hip": (-2.93220, 2.93220),
        "right_ankle": (-1.15188, 1.15188),
        "left_ankle": (-1.15188, 1.15188),
        "right_elbow": (-0.55850, 3.35100),
        "right_knee": (-0.55850, 3.35100),
        "left_knee": (-0.55850, 3.35100),
        "left_elbow": (-3.35100, 0.55850),
    }
    low = np.array([next(v for k, v in want.items() if n.startswith(k))[0] for n in layout.dof_names])
    high = np.array([next(v for k, v in want.items() if n.startswith(k))[1] for n in layout.dof_names])
    np.testing.assert_allclose(layout.action_low, low, atol=1e-4)
    np.testing.assert_allclose(layout.action_high, high, atol=1e-4)


def test_gains_and_limits(humanoid):
    layout = humanoid.layout
    by_name = dict(zip(layout.dof_names, zip(layout.kp, layout.kd, layout.torque_limit)))
    assert by_name["abdomen_y"] == (1000, 100, 200)
    assert by_name["neck_z"] == (100, 10, 50)
    assert by_name["left_shoulder_x"] == (400, 40, 100)
    assert by_name["right_elbow"] == (300, 30, 70)
    assert by_name["left_knee"] == (500, 50, 150)
    assert by_name["right_ankle_z"] == (400, 40, 90)
    i = layout.dof_names.index("right_hip_y")
    assert (layout.dof_low[i], layout.dof_high[i]) == pytest.approx((-2.4435, 1.0472), abs=1e-6)


def test_total_mass(humanoid):
    assert humanoid.mj_model.body_mass.sum() == pytest.approx(50.05, rel=1e-3)


def test_normalised_model(humanoid):
    m, layout = humanoid.mj_model, humanoid.layout
    # PD servo: no passive stiffness, the servo's damping as joint damping.
    np.testing.assert_array_equal(m.jnt_stiffness, 0.0)
    np.testing.assert_allclose(m.dof_damping[:6], 0.0)
    np.testing.assert_allclose(m.dof_damping[6:], layout.kd)
    assert m.nu == 0
    # Only the two explicit foot/floor pairs can collide.
    assert m.npair == 2
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    assert list(m.pair_geom1) == [floor, floor]
    assert [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) for g in m.pair_geom2] == ["right_foot", "left_foot"]
    np.testing.assert_array_equal(m.geom_contype, 0)
    np.testing.assert_array_equal(m.geom_conaffinity, 0)
    # Solver settings.
    assert m.opt.timestep == pytest.approx(1.0 / 120)
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert humanoid.physics.substeps == 4


# ---------------------------------------------------------------------------------------------
# Kinematics


def test_forward_kinematics_matches_mujoco(humanoid):
    m, layout = humanoid.mj_model, humanoid.layout
    root_pos, root_rot, dof = random_pose(layout, 0)
    qpos = pose_qpos(layout, root_pos, root_rot, dof)
    joint_rot = kinematics.dof_to_joint_rot(layout, jnp.asarray(dof))
    pos, rot = kinematics.forward_kinematics(layout, jnp.asarray(root_pos), jnp.asarray(root_rot), joint_rot)
    pos, rot = np.asarray(pos), np.asarray(rot)
    assert pos.shape == (NUM_POSES, 15, 3) and rot.shape == (NUM_POSES, 15, 4)
    for n in range(NUM_POSES):
        d = mj_kinematics(m, qpos[n])
        np.testing.assert_allclose(pos[n], d.xpos[1:], atol=ATOL)
        np.testing.assert_allclose(align(rot[n], d.xquat[1:]), d.xquat[1:], atol=ATOL)


def test_forward_kinematics_from_qpos_rotations(humanoid):
    """FK from rotations read back from a MuJoCo qpos (arbitrary ball quaternions) matches MuJoCo."""
    m, layout = humanoid.mj_model, humanoid.layout
    rng = np.random.default_rng(1)
    d = mujoco.MjData(m)
    for _ in range(4):
        qpos = np.zeros(m.nq)
        qpos[:3], qpos[3:7] = [q[0] for q in random_root(rng, 1)]
        for i in range(1, layout.num_bodies):
            a = layout.qpos_adr[i]
            if layout.joint_kind[i] == BALL:
                qpos[a:a + 4] = Rotation.random(random_state=rng.integers(1 << 31)).as_quat()[[3, 0, 1, 2]]
            elif layout.joint_kind[i] == HINGE:
                qpos[a] = rng.uniform(-2.5, 2.5)
        d.qpos[:] = qpos
        mujoco.mj_kinematics(m, d)
        q = jnp.asarray(qpos, jnp.float32)
        pos, rot = kinematics.forward_kinematics(layout, q[:3], q[3:7], kinematics.qpos_to_joint_rot(layout, q))
        np.testing.assert_allclose(pos, d.xpos[1:], atol=ATOL)
        np.testing.assert_allclose(align(np.asarray(rot), d.xquat[1:]), d.xquat[1:], atol=ATOL)


def test_dof_round_trip_inside_ranges(humanoid):
    layout = humanoid.layout
    rng = np.random.default_rng(2)
    n = 256
    dof = rng.uniform(layout.dof_low, layout.dof_high, (n, layout.num_dof)).astype(np.float32)
    back = np.asarray(kinematics.joint_rot_to_dof(layout, kinematics.dof_to_joint_rot(layout, jnp.asarray(dof))))
    assert back.shape == dof.shape
    for j in range(1, layout.num_bodies):
        s = layout.dof_start[j]
        if layout.joint_kind[j] == HINGE:
            np.testing.assert_allclose(back[:, s], dof[:, s], atol=ATOL)
        elif layout.joint_kind[j] == BALL:
            v, w = dof[:, s:s + 3], back[:, s:s + 3]
            # A rotation vector is unique only up to angle pi: the per-axis ranges allow norms above
            # pi (e.g. the shoulders, up to ~4 rad), which come back as the equivalent shorter vector.
            inside = np.linalg.norm(v, axis=-1) < np.pi - 1e-3
            np.testing.assert_allclose(w[inside], v[inside], atol=ATOL)
            assert np.all(np.linalg.norm(w, axis=-1) <= np.pi + 1e-5)
            rv, rw = Rotation.from_rotvec(v), Rotation.from_rotvec(w)
            np.testing.assert_allclose((rv.inv() * rw).magnitude(), 0.0, atol=1e-4)
    # Poses whose ball vectors are all shorter than pi round-trip exactly.
    small = dof * 0.5
    back = kinematics.joint_rot_to_dof(layout, kinematics.dof_to_joint_rot(layout, jnp.asarray(small)))
    np.testing.assert_allclose(back, small, atol=ATOL)


def test_qpos_joint_rot_round_trip(humanoid):
    layout = humanoid.layout
    root_pos, root_rot, dof = random_pose(layout, 3)
    joint_rot = np.asarray(kinematics.dof_to_joint_rot(layout, jnp.asarray(dof)))
    # Flip some ball quaternions' signs: to_qpos must store the same rotation either way.
    flip = np.where(np.random.default_rng(3).random(joint_rot.shape[:2] + (1,)) < 0.5, -1.0, 1.0)
    flipped = joint_rot * np.where(layout.joint_kind[None, :, None] == BALL, flip, 1.0)
    qpos = kinematics.to_qpos(layout, jnp.asarray(root_pos), jnp.asarray(root_rot), jnp.asarray(flipped, jnp.float32))
    assert qpos.shape == (NUM_POSES, 43)
    np.testing.assert_allclose(qpos[:, :3], root_pos, atol=0)
    np.testing.assert_allclose(qpos[:, 3:7], root_rot, atol=0)
    back = np.asarray(kinematics.qpos_to_joint_rot(layout, qpos))
    np.testing.assert_allclose(align(back, joint_rot), joint_rot, atol=ATOL)
    # Hinge qpos entries are the hinge angles themselves.
    for j in range(1, layout.num_bodies):
        if layout.joint_kind[j] == HINGE:
            np.testing.assert_allclose(qpos[:, layout.qpos_adr[j]], dof[:, layout.dof_start[j]], atol=ATOL)
    # And the DoFs read back from the qpos are the ones we started from.
    np.testing.assert_allclose(kinematics.joint_rot_to_dof(layout, kinematics.qpos_to_joint_rot(layout, qpos)), dof,
                               atol=ATOL)


def test_qvel_round_trip_and_mujoco_velocity(humanoid):
    m, layout = humanoid.mj_model, humanoid.layout
    rng = np.random.default_rng(4)
    root_pos, root_rot, dof = random_pose(layout, 4)
    root_vel = rng.normal(size=(NUM_POSES, 3)).astype(np.float32)
    root_ang = rng.normal(size=(NUM_POSES, 3)).astype(np.float32)
    dof_vel = rng.normal(size=(NUM_POSES, layout.num_dof)).astype(np.float32)
    qvel = np.asarray(kinematics.to_qvel(jnp.asarray(root_rot), jnp.asarray(root_vel), jnp.asarray(root_ang),
                                         jnp.asarray(dof_vel)))
    assert qvel.shape == (NUM_POSES, 34)
    np.testing.assert_allclose(qvel[:, :3], root_vel, atol=0)
    np.testing.assert_allclose(qvel[:, 6:], dof_vel, atol=0)
    qpos = pose_qpos(layout, root_pos, root_rot, dof)
    np.testing.assert_allclose(kinematics.root_ang_vel_world(jnp.asarray(qpos, jnp.float32), jnp.asarray(qvel)),
                               root_ang, atol=ATOL)
    # MuJoCo agrees on what these velocities mean (pelvis frame velocity in world orientation).
    d = mujoco.MjData(m)
    res = np.zeros(6)
    pelvis = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "pelvis")
    for n in range(NUM_POSES):
        d.qpos[:], d.qvel[:] = qpos[n], qvel[n]
        mujoco.mj_forward(m, d)
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_XBODY, pelvis, res, 0)
        np.testing.assert_allclose(res[:3], root_ang[n], atol=1e-5)
        np.testing.assert_allclose(res[3:], root_vel[n], atol=1e-5)


def _brute_force_lowest(model, data, skip_bodies):
    lowest = np.inf
    for g in range(model.ngeom):
        b = model.geom_bodyid[g]
        if b == 0 or b in skip_bodies:
            continue
        p, mat, size, kind = data.geom_xpos[g], data.geom_xmat[g].reshape(3, 3), model.geom_size[g], model.geom_type[g]
        if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            z = p[2] - size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            ends = p + np.outer([-1.0, 1.0], mat[:, 2] * size[1])
            z = ends[:, 2].min() - size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_BOX:
            signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
            z = (p + (signs * size) @ mat.T)[:, 2].min()
        else:
            raise AssertionError(f"unexpected geom type {kind}")
        lowest = min(lowest, z)
    return lowest


def test_lowest_fail_geom_height_matches_brute_force(humanoid):
    m, layout = humanoid.mj_model, humanoid.layout
    root_pos, root_rot, dof = random_pose(layout, 5, n=16)
    qpos = pose_qpos(layout, root_pos, root_rot, dof)
    joint_rot = kinematics.dof_to_joint_rot(layout, jnp.asarray(dof))
    pos, rot = kinematics.forward_kinematics(layout, jnp.asarray(root_pos), jnp.asarray(root_rot), joint_rot)
    got = np.asarray(kinematics.lowest_fail_geom_height(layout, pos, rot))
    assert got.shape == (16,)
    skip = set(int(i) + 1 for i in layout.contact_body_ids)
    # 16 fail geoms: every geom except the floor and the two feet.
    assert len(layout.fail_geom_body) == m.ngeom - 3
    want = np.array([_brute_force_lowest(m, mj_kinematics(m, q), skip) for q in qpos])
    np.testing.assert_allclose(got, want, atol=ATOL)


def test_lowest_fail_geom_height_standing_pose(humanoid):
    """In the T-pose with the feet on the floor the shins are the lowest fail geoms, well above z = 0."""
    m, layout = humanoid.mj_model, humanoid.layout
    dof = np.zeros((1, layout.num_dof), np.float32)
    root_pos, root_rot = np.array([[0.0, 0.0, 0.8824]], np.float32), np.array([[1.0, 0, 0, 0]], np.float32)
    qpos = pose_qpos(layout, root_pos, root_rot, dof)
    d = mj_kinematics(m, qpos[0])
    pos, rot = kinematics.forward_kinematics(layout, jnp.asarray(root_pos), jnp.asarray(root_rot),
                                             kinematics.dof_to_joint_rot(layout, jnp.asarray(dof)))
    got = float(kinematics.lowest_fail_geom_height(layout, pos, rot)[0])
    # Shin capsule bottom: 0.8824 - 0.421546 - 0.355 - 0.05.
    assert got == pytest.approx(0.8824 - 0.421546 - 0.355 - 0.05, abs=1e-5)
    assert got == pytest.approx(_brute_force_lowest(m, d, {int(i) + 1 for i in layout.contact_body_ids}), abs=1e-5)
