"""amp_jax.quat against scipy.spatial.transform.Rotation.

amp_jax quaternions are (w, x, y, z); scipy's are (x, y, z, w). The helpers below convert.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from amp_jax import quat

N = 64
ATOL = 1e-5


def to_wxyz(xyzw):
    return np.asarray(xyzw)[..., [3, 0, 1, 2]]


def to_xyzw(wxyz):
    return np.asarray(wxyz)[..., [1, 2, 3, 0]]


def rand_rot(n, seed):
    return Rotation.random(n, random_state=seed)


def rand_q(n, seed):
    """Random unit quaternions (w, x, y, z) with both signs of w, as float32."""
    q = to_wxyz(rand_rot(n, seed).as_quat())
    sign = np.where(np.random.default_rng(seed).random(n) < 0.5, -1.0, 1.0)
    return (q * sign[:, None]).astype(np.float32)


def scipy_rot(q_wxyz):
    return Rotation.from_quat(to_xyzw(np.asarray(q_wxyz, np.float64)))


def align(q, ref):
    """q with the sign that makes it closest to ref (q and -q are the same rotation)."""
    q, ref = np.asarray(q, np.float64), np.asarray(ref, np.float64)
    s = np.where(np.sum(q * ref, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    return q * s


def assert_same_rotation(q, ref, atol=ATOL):
    np.testing.assert_allclose(align(q, ref), ref, atol=atol)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(q), axis=-1), 1.0, atol=atol)


def test_identity_and_conj():
    np.testing.assert_array_equal(quat.identity((2, 3)).shape, (2, 3, 4))
    q = rand_q(N, 0)
    np.testing.assert_allclose(quat.conj(q), q * np.array([1, -1, -1, -1]), atol=0)
    assert_same_rotation(quat.conj(q), to_wxyz(scipy_rot(q).inv().as_quat()))
    np.testing.assert_allclose(quat.mul(q, quat.conj(q)), np.tile([1.0, 0, 0, 0], (N, 1)), atol=ATOL)


def test_mul_matches_scipy_composition():
    a, b = rand_q(N, 1), rand_q(N, 2)
    got = np.asarray(quat.mul(a, b))
    # Hamilton product, exactly (not only up to sign): compare with a float64 numpy product.
    aw, av = a[:, 0].astype(np.float64), a[:, 1:].astype(np.float64)
    bw, bv = b[:, 0].astype(np.float64), b[:, 1:].astype(np.float64)
    want = np.concatenate([(aw * bw - np.sum(av * bv, -1))[:, None],
                           aw[:, None] * bv + bw[:, None] * av + np.cross(av, bv)], -1)
    np.testing.assert_allclose(got, want, atol=ATOL)
    # scipy: a * b applies b first, then a.
    assert_same_rotation(got, to_wxyz((scipy_rot(a) * scipy_rot(b)).as_quat()))


def test_rotate_matches_scipy_apply():
    q = rand_q(N, 3)
    v = np.random.default_rng(3).normal(size=(N, 3)).astype(np.float32)
    np.testing.assert_allclose(quat.rotate(q, v), scipy_rot(q).apply(v), atol=ATOL)
    # -q rotates the same way; composing rotations composes the quaternions (b first, then a).
    np.testing.assert_allclose(quat.rotate(-q, v), scipy_rot(q).apply(v), atol=ATOL)
    b = rand_q(N, 4)
    np.testing.assert_allclose(quat.rotate(quat.mul(q, b), v), quat.rotate(q, quat.rotate(b, v)), atol=ATOL)


def test_rotate_broadcasts_batch_shapes():
    q = rand_q(6, 5).reshape(2, 3, 4)
    v = np.random.default_rng(5).normal(size=(2, 3, 3)).astype(np.float32)
    want = scipy_rot(q.reshape(6, 4)).apply(v.reshape(6, 3)).reshape(2, 3, 3)
    np.testing.assert_allclose(quat.rotate(q, v), want, atol=ATOL)


def test_from_axis_angle():
    rng = np.random.default_rng(6)
    axis = rng.normal(size=(N, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(-2 * np.pi, 2 * np.pi, size=N)
    got = quat.from_axis_angle(jnp.asarray(axis, jnp.float32), jnp.asarray(angle, jnp.float32))
    assert_same_rotation(got, to_wxyz(Rotation.from_rotvec(axis * angle[:, None]).as_quat()))
    # And exactly (cos(a/2), sin(a/2) axis), including the sign of w for |angle| > pi.
    want = np.concatenate([np.cos(angle / 2)[:, None], np.sin(angle / 2)[:, None] * axis], -1)
    np.testing.assert_allclose(got, want, atol=ATOL)


def _rotvecs_with_edge_angles(seed):
    """Random directions times angles including ones near 0, at the Taylor switch, and near pi."""
    rng = np.random.default_rng(seed)
    angles = np.concatenate([
        [0.0, 1e-9, 1e-7, 1e-6, 1e-5, 9.9e-5, 1e-4, 1.01e-4, 1e-3],
        rng.uniform(0.0, np.pi, 40),
        [np.pi - 1e-2, np.pi - 1e-3],
    ])
    axis = rng.normal(size=(len(angles), 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis * angles[:, None]


def test_from_exp_map_matches_scipy():
    v = _rotvecs_with_edge_angles(7)
    got = np.asarray(quat.from_exp_map(jnp.asarray(v, jnp.float32)))
    want = to_wxyz(Rotation.from_rotvec(v).as_quat())  # scipy's w >= 0 for angles <= pi
    np.testing.assert_allclose(got, want, atol=ATOL)
    # Angles beyond pi still give the right rotation.
    big = _rotvecs_with_edge_angles(8)[10:20] * 1.8
    assert_same_rotation(quat.from_exp_map(jnp.asarray(big, jnp.float32)), to_wxyz(Rotation.from_rotvec(big).as_quat()))


def test_to_exp_map_matches_scipy_and_range():
    q = rand_q(256, 9)
    got = np.asarray(quat.to_exp_map(q))
    angle = np.linalg.norm(got, axis=-1)
    assert np.all(angle >= 0.0) and np.all(angle <= np.pi + 1e-6)
    want = scipy_rot(q).as_rotvec()  # scipy also returns angles in [0, pi]
    np.testing.assert_allclose(got, want, atol=ATOL)
    # q and -q give the same rotation vector.
    np.testing.assert_allclose(quat.to_exp_map(-q), got, atol=ATOL)


def test_exp_map_round_trip_near_zero_and_pi():
    v = _rotvecs_with_edge_angles(10).astype(np.float32)
    back = np.asarray(quat.to_exp_map(quat.from_exp_map(jnp.asarray(v))))
    np.testing.assert_allclose(back, v, atol=ATOL, rtol=0)
    # Tiny vectors keep their (relative) value, not just "close to zero".
    tiny = np.array([[1e-7, -2e-7, 3e-7], [1e-5, 0.0, -1e-5]], np.float32)
    np.testing.assert_allclose(quat.to_exp_map(quat.from_exp_map(jnp.asarray(tiny))), tiny, rtol=1e-4)


def test_to_exp_map_beyond_pi_wraps_to_shorter_angle():
    rng = np.random.default_rng(11)
    axis = rng.normal(size=(N, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(np.pi + 0.01, 2 * np.pi - 0.01, N)
    q = quat.from_exp_map(jnp.asarray(axis * angle[:, None], jnp.float32))
    got = np.asarray(quat.to_exp_map(q))
    np.testing.assert_allclose(got, -axis * (2 * np.pi - angle)[:, None], atol=ATOL)
    assert np.all(np.linalg.norm(got, axis=-1) <= np.pi)


def test_twist_angle_pure_twist():
    rng = np.random.default_rng(12)
    axis = rng.normal(size=(N, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    theta = rng.uniform(-np.pi + 1e-3, np.pi - 1e-3, N)
    q = quat.from_axis_angle(jnp.asarray(axis, jnp.float32), jnp.asarray(theta, jnp.float32))
    a = jnp.asarray(axis, jnp.float32)
    np.testing.assert_allclose(quat.twist_angle(q, a), theta, atol=ATOL)
    np.testing.assert_allclose(quat.twist_angle(-q, a), theta, atol=ATOL)
    # Coordinate axes, as hinges use them.
    for k in range(3):
        ax = np.eye(3, dtype=np.float32)[k]
        qk = quat.from_axis_angle(jnp.asarray(ax), jnp.asarray(theta, jnp.float32))
        np.testing.assert_allclose(quat.twist_angle(qk, jnp.asarray(ax)), theta, atol=ATOL)


def test_twist_angle_ignores_swing():
    rng = np.random.default_rng(13)
    axis = rng.normal(size=(N, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    perp = np.cross(axis, rng.normal(size=(N, 3)))
    perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
    theta = rng.uniform(-3.0, 3.0, N)
    swing_angle = rng.uniform(-2.5, 2.5, N)
    twist = Rotation.from_rotvec(axis * theta[:, None])
    swing = Rotation.from_rotvec(perp * swing_angle[:, None])
    a = jnp.asarray(axis, jnp.float32)
    for r in (swing * twist, twist * swing):
        q = to_wxyz(r.as_quat()).astype(np.float32)
        np.testing.assert_allclose(quat.twist_angle(q, a), theta, atol=1e-4)


@pytest.mark.parametrize("t", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_slerp_matches_scipy(t):
    q0, q1 = rand_q(N, 14), rand_q(N, 15)
    got = np.asarray(quat.slerp(q0, q1, t))
    want = np.stack([
        to_wxyz(Slerp([0.0, 1.0], scipy_rot(np.stack([q0[i], q1[i]])))([t]).as_quat()[0]) for i in range(N)
    ])
    assert_same_rotation(got, want)
    # Flipping the sign of q1 changes nothing (the shorter arc is taken either way).
    np.testing.assert_allclose(quat.slerp(q0, -q1, t), got, atol=ATOL)
    # Shorter-arc rule: the result lies at angle t * theta from q0, with theta <= pi the angle q0 -> q1.
    theta = 2 * np.arccos(np.clip(np.abs(np.sum(q0 * q1, -1)), 0, 1))
    moved = 2 * np.arccos(np.clip(np.sum(got * q0, -1), -1, 1))  # signed: got stays on q0's side
    np.testing.assert_allclose(moved, t * theta, atol=1e-3)


def test_slerp_endpoints_exact():
    q0, q1 = rand_q(N, 16), rand_q(N, 17)
    np.testing.assert_allclose(quat.slerp(q0, q1, 0.0), q0, atol=ATOL)
    np.testing.assert_allclose(quat.slerp(q0, q1, 1.0), align(q1, q0), atol=ATOL)
    np.testing.assert_allclose(quat.slerp(q0, -q1, 1.0), align(q1, q0), atol=ATOL)


def test_slerp_nearly_equal_and_batched_t():
    q0 = rand_q(N, 18)
    dq = quat.from_exp_map(jnp.asarray(np.random.default_rng(18).normal(size=(N, 3)) * 1e-4, jnp.float32))
    q1 = quat.mul(q0, dq)
    t = np.linspace(0.0, 1.0, N).astype(np.float32)
    got = quat.slerp(q0, q1, t)
    want = quat.mul(q0, quat.from_exp_map(quat.to_exp_map(dq) * t[:, None]))
    np.testing.assert_allclose(got, want, atol=ATOL)
    np.testing.assert_allclose(quat.slerp(q0, -q1, t), want, atol=ATOL)


def test_heading():
    rng = np.random.default_rng(19)
    yaw = rng.uniform(-np.pi + 1e-3, np.pi - 1e-3, N)
    pitch = rng.uniform(-1.4, 1.4, N)
    roll = rng.uniform(-np.pi, np.pi, N)
    r = Rotation.from_euler("ZYX", np.stack([yaw, pitch, roll], -1))  # intrinsic yaw, pitch, roll
    q = to_wxyz(r.as_quat()).astype(np.float32)
    np.testing.assert_allclose(quat.heading(q), yaw, atol=ATOL)
    np.testing.assert_allclose(quat.heading(-q), yaw, atol=ATOL)
    # Pure yaw.
    qz = to_wxyz(Rotation.from_euler("z", yaw[:, None]).as_quat()).astype(np.float32)
    np.testing.assert_allclose(quat.heading(qz), yaw, atol=ATOL)
    # heading_quat is the rotation about +z by the heading.
    assert_same_rotation(quat.heading_quat(q), qz)


def test_heading_quat_inv_removes_heading():
    q = rand_q(N, 20)
    inv = quat.heading_quat_inv(q)
    # A rotation about z only.
    np.testing.assert_allclose(np.asarray(inv)[:, 1:3], 0.0, atol=0)
    local = quat.mul(inv, q)
    np.testing.assert_allclose(quat.heading(local), 0.0, atol=ATOL)
    x = np.asarray(quat.rotate(local, jnp.tile(jnp.array([1.0, 0.0, 0.0]), (N, 1))))
    np.testing.assert_allclose(x[:, 1], 0.0, atol=ATOL)
    assert np.all(x[:, 0] >= 0.0)
    # Undoing it gives q back.
    np.testing.assert_allclose(quat.mul(quat.heading_quat(q), local), q, atol=ATOL)
    # World-frame heading of q is the scipy-computed yaw of its x-axis.
    xw = scipy_rot(q).apply([1.0, 0.0, 0.0])
    np.testing.assert_allclose(quat.heading(q), np.arctan2(xw[:, 1], xw[:, 0]), atol=ATOL)


def test_to_matrix_and_tan_norm():
    q = rand_q(N, 21)
    mat = scipy_rot(q).as_matrix()
    np.testing.assert_allclose(quat.to_matrix(q), mat, atol=ATOL)
    np.testing.assert_allclose(quat.to_matrix(-q), mat, atol=ATOL)
    tn = np.asarray(quat.tan_norm(q))
    assert tn.shape == (N, 6)
    np.testing.assert_allclose(tn[:, :3], mat[:, :, 0], atol=ATOL)  # rotated x-axis
    np.testing.assert_allclose(tn[:, 3:], mat[:, :, 2], atol=ATOL)  # rotated z-axis


def test_normalize_and_positive_w():
    q = rand_q(N, 22) * 3.0
    n = np.asarray(quat.normalize(q))
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=ATOL)
    p = np.asarray(quat.positive_w(n))
    assert np.all(p[:, 0] >= 0)
    np.testing.assert_allclose(p, align(n, np.tile([1.0, 0, 0, 0], (N, 1))), atol=ATOL)


def test_exp_map_gradients_finite_at_zero():
    z = jnp.zeros(3, jnp.float32)
    g = jax.grad(lambda v: jnp.sum(quat.from_exp_map(v)))(z)
    # d/dv [cos(|v|/2) + sum(v) sin(|v|/2)/|v|] at 0 = (1/2, 1/2, 1/2).
    np.testing.assert_allclose(g, [0.5, 0.5, 0.5], atol=ATOL)

    ident = jnp.array([1.0, 0.0, 0.0, 0.0], jnp.float32)
    g = jax.grad(lambda q: jnp.sum(quat.to_exp_map(q)))(ident)
    # to_exp_map ~ 2 u / w near the identity.
    np.testing.assert_allclose(g, [0.0, 2.0, 2.0, 2.0], atol=ATOL)

    # The round trip is the identity map, so its Jacobian at 0 (and nearby) is the identity.
    for v0 in (z, jnp.full(3, 1e-9), jnp.full(3, 1e-6), jnp.array([0.3, -0.2, 0.1])):
        jac = jax.jacfwd(lambda v: quat.to_exp_map(quat.from_exp_map(v)))(v0.astype(jnp.float32))
        assert np.all(np.isfinite(jac))
        np.testing.assert_allclose(jac, np.eye(3), atol=1e-4)
        jac_r = jax.jacrev(lambda v: quat.to_exp_map(quat.from_exp_map(v)))(v0.astype(jnp.float32))
        np.testing.assert_allclose(jac_r, np.eye(3), atol=1e-4)
