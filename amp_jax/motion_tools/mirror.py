"""Mirror images of motion clips for left/right symmetric characters.

The mirror reflects the world through the x-z plane (the lateral axis y is negated, M = diag(1, -1, 1))
and swaps every `left_*` body with its `right_*` twin. Under the reflection:

* the root position (x, y, z) becomes (x, -y, z);
* a rotation R becomes M R M: a quaternion (w, x, y, z) becomes (w, -x, y, -z) and an exponential map
  (x, y, z) becomes (-x, y, -z) (a rotation by angle t about axis a becomes one by -t about M a);
* a hinge about axis a with angle t becomes a rotation by -t about M a, which the twin's hinge axis b
  expresses as angle -t if M a = b (an x or z hinge on our humanoid) or t if M a = -b (a y hinge);
* the DoF block of each left body is then filled from its right twin's mirrored block and vice versa;
  bodies without a side (pelvis, torso, head) are mirrored in place.

The body-to-twin mapping and the per-axis signs are derived from the layout (body names, joint kinds,
hinge axes), and the layout's rest offsets and rotations are checked to be mirror symmetric, so any
character following the left_/right_ naming convention mirrors without hard-coded indices.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from amp_jax.characters.character import BALL, HINGE, Layout
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip

_M = np.diag([1.0, -1.0, 1.0])  # the reflection: the lateral (y) axis negated
_SIDES = ("left_", "right_")
_TOL = 1e-5


def _twin_name(name: str) -> str | None:
    for side, other in (_SIDES, _SIDES[::-1]):
        if name.startswith(side):
            return other + name[len(side):]
    return None


def _mirror_quat(q: np.ndarray) -> np.ndarray:
    """M R M of quaternions (w, x, y, z) [..., 4]."""
    return q * np.array([1.0, -1.0, 1.0, -1.0], q.dtype)


def body_twins(layout: Layout) -> np.ndarray:
    """Per body, the index of its mirror twin (itself for bodies without a left_/right_ prefix).

    Raises InputError if a side body has no twin, or the twins' joints or rest poses are not mirror images.
    """
    index = {n: i for i, n in enumerate(layout.body_names)}
    twins = np.arange(layout.num_bodies)
    for i, name in enumerate(layout.body_names):
        other = _twin_name(name)
        if other is None:
            continue
        if other not in index:
            raise InputError(f"character '{layout.name}': body '{name}' has no mirror twin '{other}'; "
                             "mirroring needs every left_* body paired with a right_* body")
        twins[i] = index[other]
    for i, j in enumerate(twins):
        a, b = layout.body_names[i], layout.body_names[j]
        what = f"body '{a}'" if i == j else f"bodies '{a}' and '{b}'"
        pi, pj = layout.parents[i], layout.parents[j]
        if (pi < 0) != (pj < 0) or (pi >= 0 and twins[pi] != pj):
            raise InputError(f"character '{layout.name}': {what} have parents that are not mirror twins")
        if layout.joint_kind[i] != layout.joint_kind[j]:
            raise InputError(f"character '{layout.name}': {what} have different joint kinds")
        if i == 0:
            continue
        if not np.allclose(_M @ layout.body_pos[i], layout.body_pos[j], atol=_TOL):
            raise InputError(f"character '{layout.name}': {what} are not mirror symmetric: offset "
                             f"{layout.body_pos[i].tolist()} mirrors to {(_M @ layout.body_pos[i]).tolist()}, "
                             f"not {layout.body_pos[j].tolist()}")
        qi, qj = _mirror_quat(layout.body_quat[i].astype(np.float64)), layout.body_quat[j]
        if min(np.abs(qi - qj).max(), np.abs(qi + qj).max()) > _TOL:
            raise InputError(f"character '{layout.name}': {what} have rest rotations that are not mirror images")
    return twins


def dof_mirror_map(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(source, sign) [D]: mirrored dof_pos[:, k] = sign[k] * dof_pos[:, source[k]].

    Ball joints (exponential maps) take (-x, y, -z) from their twin; a hinge takes its twin's angle,
    negated unless the reflection turns its axis into minus the twin's axis.
    """
    twins = body_twins(layout)
    source = np.arange(layout.num_dof)
    sign = np.ones(layout.num_dof)
    for j in range(1, layout.num_bodies):
        t, kind, s = twins[j], layout.joint_kind[j], layout.dof_start[j]
        st = layout.dof_start[t]
        if kind == BALL:
            source[s:s + 3] = np.arange(st, st + 3)
            sign[s:s + 3] = -np.diag(_M)
        elif kind == HINGE:
            mirrored_axis = _M @ layout.joint_axis[t]
            if np.allclose(mirrored_axis, layout.joint_axis[j], atol=_TOL):
                sign[s] = -1.0
            elif np.allclose(mirrored_axis, -layout.joint_axis[j], atol=_TOL):
                sign[s] = 1.0
            else:
                raise InputError(f"character '{layout.name}': the hinge axis of '{layout.body_names[t]}' "
                                 f"{layout.joint_axis[t].tolist()} mirrors to {mirrored_axis.tolist()}, "
                                 f"which is not +- the axis of '{layout.body_names[j]}' "
                                 f"{layout.joint_axis[j].tolist()}")
            source[s] = st
    return source, sign


def mirror_clip(clip: Clip, layout: Layout) -> Clip:
    """The mirror image of a clip: left and right swapped, the lateral (y) axis negated.

    Mirroring twice gives the original clip back exactly (up to the quaternions' sign, which is kept).
    """
    if clip.dof_pos.shape[1] != layout.num_dof:
        raise InputError(f"a clip with {clip.dof_pos.shape[1]} DoFs cannot be mirrored for character "
                         f"'{layout.name}' with {layout.num_dof}")
    if clip.dof_names and tuple(clip.dof_names) != tuple(layout.dof_names):
        raise InputError(f"the clip's DoF names do not match character '{layout.name}'")
    source, sign = dof_mirror_map(layout)
    root_pos = clip.root_pos * np.diag(_M).astype(clip.root_pos.dtype)
    return dataclasses.replace(
        clip,
        root_pos=root_pos,
        root_rot=_mirror_quat(clip.root_rot),
        dof_pos=clip.dof_pos[:, source] * sign.astype(clip.dof_pos.dtype),
    )
