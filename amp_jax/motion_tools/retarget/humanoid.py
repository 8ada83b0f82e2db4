"""Humanoid -> humanoid retargeting: the source's mapped bodies scaled about the ground (with the target's
own hip / shoulder placement), segment directions and body orientations as IK targets."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from amp_jax import quat
from amp_jax.characters.character import Layout
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip
from amp_jax.motion_tools.host_kinematics import fk, group_bottoms, quat_mul, quat_rotate, rest_pose, subtree_geoms
from amp_jax.motion_tools.retarget.feet import sole_height
from amp_jax.motion_tools.retarget.ik import IKConfig, Problem
from amp_jax.motion_tools.retarget.solve import Goal, RetargetResult, solve_goal
from amp_jax.motion_tools.retarget.targets import Mapping, body_index


def retarget(clip: Clip, source: Layout, target: Layout, mapping: Mapping, *, source_model=None,
             target_model=None, config: IKConfig = IKConfig(), rest_dof=None) -> RetargetResult:
    """Retarget `clip` (of `source`) onto `target` with `mapping`; see the module docstring.

    source_model / target_model (the characters' MjModels) give the feet's collision geoms: the sole
    heights used to map ground contact, the floor, contact and clearance terms of the IK, and the lowest foot
    point for the final lift. Without them the foot bodies' origins stand in and those IK terms are off.
    rest_dof: the pose the redundant DoFs are pulled toward (default zeros).
    """
    goal, s, target_feet = humanoid_goal(clip, source, target, mapping, source_model, target_model, rest_dof)
    return solve_goal(goal, target, target_model, clip.fps, clip.loop, config, s, target_feet)


def scaled_source_points(clip: Clip, source: Layout, target: Layout, mapping: Mapping, *, source_model=None,
                         target_model=None) -> tuple[tuple[str, ...], np.ndarray, float]:
    """The IK's position targets: (target body names, points [N, P, 3], scale s) — the mapped source bodies
    scaled about the ground, with the anchor shifts (before the final lift, which `retarget` reports)."""
    goal, s, _ = humanoid_goal(clip, source, target, mapping, source_model, target_model, None)
    return tuple(target.body_names[b] for b in goal.prob.pos_body), goal.pos, s


def foot_clearance(source: Layout, source_model, source_feet, body_pos, body_rot, s: float):
    """[N, F] the source feet's lowest points above their lowest over the clip, scaled by s (None without the
    source's MjModel): a target foot's lowest point is kept at least this high, so a target with longer
    feet than the scaled source's does not swing its toes through the floor."""
    if source_model is None:
        return None
    bottoms = group_bottoms(subtree_geoms(source_model, source, source_feet), body_pos, body_rot, len(source_feet))
    return s * (bottoms - bottoms.min(axis=0))


def stance_ratio(spos0, tpos0, s: float, mapping: Mapping, sbody, tbody) -> float:
    """The target's hip half-width over the scaled source's (rest poses, facing +x): the feet are placed
    under the target's own hips (the anchors), so its stance is this much wider than the scaled source's."""
    (sl, _, tl, _), (sr, _, tr, _) = mapping.legs[:2]
    return abs(tpos0[tbody(tl), 1] - tpos0[tbody(tr), 1]) / (s * abs(spos0[sbody(sl), 1] - spos0[sbody(sr), 1]))


def weight_shift(pos, hip_k, feet_k, heading, k: float) -> np.ndarray:
    """[N, P, 3] shifts of the position targets that scale the hips' sideways sway about the feet's midpoint
    (across the heading) by k, so that the body moves over its stance foot by the same share of its stance
    width as the source's does (scaled by s alone, the Pi Plus's clip kept its centre of mass over the middle
    of its wide stance, a foot it lifted leaving it no support). Bodies between the feet and the hips take a
    share by height, the bodies above the hips all of it, the feet none."""
    n = len(pos)
    lateral = quat_rotate(heading, np.broadcast_to(np.array([0.0, 1.0, 0.0]), (n, 3)))
    hips, feet = pos[:, hip_k].mean(axis=1), pos[:, feet_k].mean(axis=1)
    sway = np.sum((hips - feet) * lateral, axis=-1)
    share = np.clip((pos[..., 2] - feet[:, None, 2]) / (hips[:, None, 2] - feet[:, None, 2]), 0.0, 1.0)
    share[:, feet_k] = 0.0
    return (k - 1.0) * sway[:, None, None] * share[..., None] * lateral[:, None, :]


def humanoid_goal(clip, source, target, mapping, source_model, target_model, rest_dof):
    clip.validate("retarget source clip", source.num_dof)
    n = clip.num_frames
    sbody = lambda name: body_index(source, name, "source")
    tbody = lambda name: body_index(target, name, "target")

    # Scale: hip-to-ankle lengths at the zero pose.
    spos0, srot0 = rest_pose(source)
    tpos0, trot0 = rest_pose(target)
    ratios = [np.linalg.norm(tpos0[tbody(th)] - tpos0[tbody(ta)]) / np.linalg.norm(spos0[sbody(sh)] - spos0[sbody(sa)])
              for sh, sa, th, ta in mapping.legs]
    s = float(np.mean(ratios))
    source_feet = [a for a, _ in mapping.feet]
    target_feet = [b for _, b in mapping.feet]
    sole_s = sole_height(source, source_model, source_feet)
    sole_t = sole_height(target, target_model, target_feet)

    sp, sr = fk(source, clip.root_pos, clip.root_rot, clip.dof_pos)
    origin = np.array([clip.root_pos[0, 0], clip.root_pos[0, 1], sole_s])
    new_origin = np.array([clip.root_pos[0, 0], clip.root_pos[0, 1], sole_t])
    scaled = lambda p: s * (p - origin) + new_origin

    pos_src = [sbody(a) for a, _, _ in mapping.positions]
    pos = scaled(sp[:, pos_src])
    pos_w = np.array([w for _, _, w in mapping.positions], np.float32)
    # Anchor shifts: the target's own hip / shoulder placement about its hip centre.
    heading = np.asarray(quat.heading_quat(jnp.asarray(sr[:, 0], jnp.float32)), np.float64)  # [N, 4]
    hip_centre_s = spos0[[sbody(e[0]) for e in mapping.legs]].mean(axis=0)
    hip_centre_t = tpos0[[tbody(e[2]) for e in mapping.legs]].mean(axis=0)
    pos_tgt_names = [b for _, b, _ in mapping.positions]
    for anchor in mapping.anchors:
        a_s, a_t, bodies = anchor[:3]
        delta = (tpos0[tbody(a_t)] - hip_centre_t) - s * (spos0[sbody(a_s)] - hip_centre_s)
        if len(anchor) > 3:  # carried by a source body's rotation relative to its rest
            frame = sbody(anchor[3])
            carry = quat_mul(sr[:, frame], np.broadcast_to(srot0[frame] * np.array([1, -1, -1, -1]), (n, 4)))
        else:
            carry = heading
        shift = quat_rotate(carry, np.broadcast_to(delta, (n, 3)))
        for b in bodies:
            if b not in pos_tgt_names:
                raise InputError(f"anchor body '{b}' is not a target of the mapping's position pairs")
            pos[:, pos_tgt_names.index(b)] += shift
    pairs = [(a, b) for a, b, _ in mapping.positions]
    feet_k = []
    for pair in mapping.feet:
        if tuple(pair) not in pairs:
            raise InputError(f"foot pair {pair} is not among the mapping's position pairs")
        feet_k.append(pairs.index(tuple(pair)))
    hips_t = [tbody(e[2]) for e in mapping.legs]
    if any(target.body_names[h] not in pos_tgt_names for h in hips_t):
        raise InputError(f"the legs' hips {[e[2] for e in mapping.legs]} must be targets of the mapping's "
                         f"position pairs")
    hip_k = [pos_tgt_names.index(target.body_names[h]) for h in hips_t]
    shift = weight_shift(pos, hip_k, feet_k, heading, stance_ratio(spos0, tpos0, s, mapping, sbody, tbody))
    pos += shift
    d = sp[:, [sbody(e[1]) for e in mapping.directions]] - sp[:, [sbody(e[0]) for e in mapping.directions]]
    dirs = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9) \
        if mapping.directions else np.zeros((n, 0, 3))
    rots = []
    for a, b, _ in mapping.orientations:
        offset = quat.mul(quat.conj(jnp.asarray(srot0[sbody(a)])), jnp.asarray(trot0[tbody(b)]))
        rots.append(np.asarray(quat.mul(jnp.asarray(sr[:, sbody(a)], jnp.float32), offset)))
    rots = np.stack(rots, axis=1) if rots else np.zeros((n, 0, 4))

    prob = Problem(
        layout=target,
        pos_body=tuple(tbody(b) for _, b, _ in mapping.positions),
        dir_a=tuple(tbody(e[2]) for e in mapping.directions),
        dir_b=tuple(tbody(e[3]) for e in mapping.directions),
        dir_w=tuple(float(e[4]) for e in mapping.directions),
        rot_body=tuple(tbody(b) for _, b, _ in mapping.orientations),
        rot_w=tuple(float(w) for _, _, w in mapping.orientations),
    )

    # Initial root: the scaled source root, lifted by the difference of the pelvis-over-hips heights,
    # shifted with the hips, rotated like the source root (through the rests).
    root_off = quat.mul(quat.conj(jnp.asarray(srot0[0])), jnp.asarray(trot0[0]))
    init_rot = np.asarray(quat.mul(jnp.asarray(sr[:, 0], jnp.float32), root_off), np.float64)
    hips_s = [sbody(e[0]) for e in mapping.legs]
    init_pos = scaled(sp[:, 0])
    init_pos[:, 2] += np.mean(tpos0[0, 2] - tpos0[hips_t, 2]) - s * np.mean(spos0[0, 2] - spos0[hips_s, 2])
    init_pos += shift[:, hip_k].mean(axis=1)
    rest = np.zeros(target.num_dof) if rest_dof is None else np.asarray(rest_dof, np.float64)
    goal = Goal(prob=prob, pos=pos, pos_w=pos_w, dirs=dirs, rots=rots, feet_k=feet_k,
                 source_feet=sp[:, [sbody(a) for a in source_feet]], init_root_pos=init_pos, init_root_rot=init_rot,
                 rest_dof=rest, clearance=foot_clearance(source, source_model, source_feet, sp, sr, s))
    return goal, s, target_feet

