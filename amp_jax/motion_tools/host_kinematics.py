"""Forward kinematics and collision-geom extremes in numpy, for host-side tools (retargeting, clip
quality reports) that should not wait for a JAX compilation.

`fk` gives the same body poses as amp_jax.characters.kinematics.forward_kinematics (float64). A `GeomSet` holds
collision geoms of a character grouped by an owner (a foot, or a body); `geom_bottoms` gives each geom's
lowest world z and `lowest_points` the point where it is reached, as a point fixed in the geom's body.
"""

from __future__ import annotations

import dataclasses
import functools

import mujoco
import numpy as np

from amp_jax.characters.character import Layout, geom_extent
from amp_jax.errors import InputError


def quat_mul(a, b):
    """Hamilton product of quaternions (w, x, y, z) [..., 4]."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_rotate(q, v):
    """v [..., 3] rotated by unit quaternions q [..., 4]."""
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_exp(v):
    """Unit quaternions of rotation vectors (exponential maps) [..., 3]."""
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    scale = np.where(angle < 1e-8, 0.5, np.sin(0.5 * angle) / np.maximum(angle, 1e-12))
    return np.concatenate([np.cos(0.5 * angle), scale * v], axis=-1)


def quat_matrix(q):
    """Rotation matrices [..., 3, 3] of unit quaternions (w, x, y, z)."""
    w, x, y, z = np.moveaxis(np.asarray(q, np.float64), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def fk(layout: Layout, root_pos, root_rot, dof_pos):
    """World body positions [N, B, 3] and rotations [N, B, 4] of N poses (numpy, float64; the same as
    amp_jax.characters.kinematics.forward_kinematics, without JAX so nothing is compiled)."""
    root_pos = np.asarray(root_pos, np.float64).reshape(-1, 3)
    root_rot = np.asarray(root_rot, np.float64).reshape(-1, 4)
    dof = np.asarray(dof_pos, np.float64).reshape(-1, layout.num_dof)
    n = len(root_pos)
    joints = layout.joints
    joint_rot = np.tile([1.0, 0.0, 0.0, 0.0], (n, layout.num_bodies, 1))
    joint_rot[:, joints.ball_bodies] = quat_exp(dof[:, joints.ball_dofs])
    half = 0.5 * dof[:, joints.hinge_dofs][..., None]
    joint_rot[:, joints.hinge_bodies] = np.concatenate([np.cos(half), np.sin(half) * joints.hinge_axis], axis=-1)
    pos, rot = [root_pos], [root_rot]
    for j in range(1, layout.num_bodies):
        p = int(layout.parents[j])
        local = quat_mul(np.broadcast_to(layout.body_quat[j].astype(np.float64), (n, 4)), joint_rot[:, j])
        pos.append(pos[p] + quat_rotate(rot[p], np.broadcast_to(layout.body_pos[j].astype(np.float64), (n, 3))))
        rot.append(quat_mul(rot[p], local))
    return np.stack(pos, axis=1), np.stack(rot, axis=1)


def rest_pose(layout: Layout):
    """World body positions [B, 3] and rotations [B, 4] at zero DoFs, root at the origin, unrotated."""
    pos, rot = fk(layout, np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(layout.num_dof))
    return pos[0], rot[0]


@dataclasses.dataclass(frozen=True, eq=False)
class GeomSet:
    """Collision geoms of a character: body index, local pose, shape, and the group each belongs to."""

    body: np.ndarray  # [G] layout body index
    pos: np.ndarray  # [G, 3]
    quat: np.ndarray  # [G, 4]
    extent: np.ndarray  # [G, 3] box half-sizes, capsule (0, 0, half length), sphere 0
    radius: np.ndarray  # [G]
    group: np.ndarray  # [G] index of the group (foot) the geom belongs to


def subtree_geoms(model: mujoco.MjModel, layout: Layout, roots) -> GeomSet:
    """The geoms of each root body and of the bodies below it; group f holds those under roots[f]
    (cached per model, layout and roots)."""
    return _subtree_geoms(model, layout, tuple(roots))


@functools.lru_cache(maxsize=32)
def _subtree_geoms(model: mujoco.MjModel, layout: Layout, roots: tuple[str, ...]) -> GeomSet:
    children = {i: [] for i in range(layout.num_bodies)}
    for i, p in enumerate(layout.parents):
        if p >= 0:
            children[int(p)].append(i)
    body, pos, q, extent, radius, group = [], [], [], [], [], []
    for f, name in enumerate(roots):
        if name not in layout.body_names:
            raise InputError(f"{layout.name}: unknown body '{name}'; bodies are {list(layout.body_names)}")
        stack = [layout.body_names.index(name)]
        subtree = []
        while stack:
            b = stack.pop()
            subtree.append(b)
            stack.extend(children[b])
        for g in range(model.ngeom):
            b = int(model.geom_bodyid[g]) - 1
            if b not in subtree:
                continue
            e, r = geom_extent(model, g)
            body.append(b)
            pos.append(model.geom_pos[g])
            q.append(model.geom_quat[g])
            extent.append(e)
            radius.append(r)
            group.append(f)
    if not body:
        raise InputError(f"{layout.name}: the bodies {list(roots)} have no collision geoms")
    return GeomSet(np.array(body, np.int32), np.array(pos, np.float32), np.array(q, np.float32),
                   np.array(extent, np.float32), np.array(radius, np.float32), np.array(group, np.int32))


def geom_bottoms(geoms: GeomSet, body_pos, body_rot):
    """Lowest world z of each geom [..., G]."""
    bpos = np.asarray(body_pos, np.float64)[..., geoms.body, :]
    bmat = quat_matrix(np.asarray(body_rot, np.float64)[..., geoms.body, :])
    gpos = bpos + np.einsum("...ij,...j->...i", bmat, np.broadcast_to(geoms.pos, bpos.shape))
    gmat = bmat @ quat_matrix(geoms.quat)
    reach = np.sum(np.abs(gmat[..., 2, :]) * geoms.extent, axis=-1) + geoms.radius
    return gpos[..., 2] - reach


def group_bottoms(geoms: GeomSet, body_pos, body_rot, num_groups: int):
    """Lowest world z per group [..., F]."""
    z = np.asarray(geom_bottoms(geoms, body_pos, body_rot))
    return np.stack([z[..., geoms.group == f].min(axis=-1) for f in range(num_groups)], axis=-1)


def lowest_points(geoms: GeomSet, body_pos, body_rot):
    """Each geom's lowest point [..., G, 3] in world coordinates, and the same point in its body's frame
    (a box corner or edge midpoint, the bottom of a sphere or of a capsule's end)."""
    bpos = np.asarray(body_pos, np.float64)[..., geoms.body, :]
    bmat = quat_matrix(np.asarray(body_rot, np.float64)[..., geoms.body, :])
    gmat = bmat @ quat_matrix(geoms.quat)
    centre = bpos + np.einsum("...ij,...j->...i", bmat, np.broadcast_to(geoms.pos, bpos.shape))
    corner = -np.sign(gmat[..., 2, :]) * geoms.extent  # the geom-frame corner that reaches lowest
    world = centre + np.einsum("...ij,...j->...i", gmat, corner)
    world[..., 2] -= geoms.radius
    local = np.einsum("...ji,...j->...i", bmat, world - bpos)
    return world, local
