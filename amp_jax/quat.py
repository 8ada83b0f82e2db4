"""Quaternion and rotation maths in JAX. Quaternions are (w, x, y, z), as in MuJoCo.

Every function broadcasts over leading axes. Exponential maps (rotation vectors) are axis * angle.
"""

import jax.numpy as jnp

_EPS = 1e-8


def identity(shape=()):
    """Identity quaternions of the given batch shape."""
    return jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0, 0.0], jnp.float32), (*shape, 4))


def mul(a, b):
    """Hamilton product a * b (apply b first, then a)."""
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return jnp.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def conj(q):
    """Conjugate, the inverse of a unit quaternion."""
    return q * jnp.array([1.0, -1.0, -1.0, -1.0], q.dtype)


def normalize(q):
    return q / jnp.maximum(jnp.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def positive_w(q):
    """The same rotation with w >= 0."""
    return jnp.where(q[..., :1] < 0, -q, q)


def rotate(q, v):
    """Rotate vectors v [..., 3] by unit quaternions q [..., 4]."""
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * jnp.cross(u, v)
    return v + w * t + jnp.cross(u, t)


def from_axis_angle(axis, angle):
    """Rotation of `angle` radians about unit `axis`."""
    half = 0.5 * angle[..., None]
    return jnp.concatenate([jnp.cos(half), jnp.sin(half) * axis], axis=-1)


def _safe_norm(v):
    """Norm with a finite gradient at zero."""
    sq = jnp.sum(v * v, axis=-1)
    safe = jnp.where(sq > _EPS * _EPS, sq, 1.0)
    return jnp.where(sq > _EPS * _EPS, jnp.sqrt(safe), 0.0)


def from_exp_map(v):
    """Quaternion of the rotation vector v [..., 3]."""
    angle = _safe_norm(v)
    half = 0.5 * angle
    # sin(angle/2)/angle -> 1/2 as angle -> 0.
    small = angle < 1e-4
    scale = jnp.where(small, 0.5 - angle * angle / 48.0, jnp.sin(half) / jnp.where(small, 1.0, angle))
    return jnp.concatenate([jnp.cos(half)[..., None], scale[..., None] * v], axis=-1)


def to_exp_map(q):
    """Rotation vector of q, with angle in [0, pi] (q is taken with w >= 0)."""
    q = positive_w(q)
    w, u = q[..., 0], q[..., 1:]
    s = _safe_norm(u)
    angle = 2.0 * jnp.arctan2(s, w)
    small = s < 1e-6
    scale = jnp.where(small, 2.0 / jnp.maximum(w, _EPS), angle / jnp.where(small, 1.0, s))
    return scale[..., None] * u


def twist_angle(q, axis):
    """Signed angle of q's twist about unit `axis` (the hinge coordinate of a rotation)."""
    q = positive_w(q)
    proj = jnp.sum(q[..., 1:] * axis, axis=-1)
    return 2.0 * jnp.arctan2(proj, q[..., 0])


def slerp(q0, q1, t):
    """Spherical interpolation from q0 (t=0) to q1 (t=1) along the shorter arc."""
    t = jnp.asarray(t)[..., None]
    dot = jnp.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = jnp.where(dot < 0, -q1, q1)
    dot = jnp.abs(dot)
    theta = jnp.arccos(jnp.clip(dot, -1.0, 1.0))
    sin_theta = jnp.sin(theta)
    near = sin_theta < 1e-3
    safe_sin = jnp.where(near, 1.0, sin_theta)
    w0 = jnp.where(near, 1.0 - t, jnp.sin((1.0 - t) * theta) / safe_sin)
    w1 = jnp.where(near, t, jnp.sin(t * theta) / safe_sin)
    return normalize(w0 * q0 + w1 * q1)


def heading(q):
    """Yaw of a rotation: the angle of its rotated x-axis in the xy-plane."""
    x = rotate(q, jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0], q.dtype), q.shape[:-1] + (3,)))
    return jnp.arctan2(x[..., 1], x[..., 0])


def heading_quat(q):
    """Rotation about +z by the heading of q."""
    z = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0], q.dtype), q.shape[:-1] + (3,))
    return from_axis_angle(z, heading(q))


def heading_quat_inv(q):
    """Rotation about +z by minus the heading of q (world -> heading frame)."""
    return conj(heading_quat(q))


def tan_norm(q):
    """The 6-number tangent-normal encoding: q's rotated x-axis then its rotated z-axis."""
    shape = q.shape[:-1] + (3,)
    x = rotate(q, jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0], q.dtype), shape))
    z = rotate(q, jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0], q.dtype), shape))
    return jnp.concatenate([x, z], axis=-1)


def to_matrix(q):
    """3x3 rotation matrices of unit quaternions."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return jnp.stack(
        [
            jnp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            jnp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            jnp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )
