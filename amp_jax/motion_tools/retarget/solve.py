"""The pipeline shared by the humanoid and quadruped paths: source contacts -> key-point IK -> foot
pinning -> joint ranges -> lift onto the floor -> quality numbers."""

from __future__ import annotations

import dataclasses

import numpy as np

from amp_jax.characters.character import Layout
from amp_jax.motion.clip import Clip
from amp_jax.motion_tools.clip_quality import joint_range_excess
from amp_jax.motion_tools.host_kinematics import fk, group_bottoms, subtree_geoms
from amp_jax.motion_tools.retarget.feet import contact_intervals, contact_mask, interval_slide, pin_to_interval_means
from amp_jax.motion_tools.retarget.ik import IKConfig, Problem, run_ik


@dataclasses.dataclass(frozen=True)
class RetargetResult:
    clip: Clip
    quality: dict
    contacts: np.ndarray  # [N, F] bool, per target foot
    target_points: np.ndarray  # [N, P, 3] the scaled-source key points (final lift applied)
    scale: float


@dataclasses.dataclass
class Goal:
    """Per-frame IK targets in the target's world, and how to start."""

    prob: Problem
    pos: np.ndarray  # [N, P, 3]
    pos_w: np.ndarray  # [P]
    dirs: np.ndarray  # [N, Q, 3]
    rots: np.ndarray  # [N, O, 4]
    feet_k: list[int]  # index into the position terms of each foot
    source_feet: np.ndarray  # [N, F, 3] source foot positions (source units) for contact detection
    init_root_pos: np.ndarray  # [N, 3]
    init_root_rot: np.ndarray  # [N, 4]
    rest_dof: np.ndarray  # [D]
    clearance: np.ndarray | None = None  # [N, F] least height of each target foot's lowest point (None: no term)


def solve_goal(goal: Goal, target: Layout, target_model, fps: float, loop: bool, cfg: IKConfig,
                scale: float, target_feet) -> RetargetResult:
    n = len(goal.pos)
    layout = target
    geoms = subtree_geoms(target_model, layout, target_feet) if target_model is not None else None
    prob = dataclasses.replace(goal.prob, geoms=geoms)
    # Contacts from the source.
    nf = len(goal.feet_k)
    contacts = np.stack([contact_mask(goal.source_feet[:, f], fps, loop, cfg.contact_height, cfg.contact_speed)
                         for f in range(nf)], axis=-1)
    runs = [contact_intervals(contacts[:, f], loop) for f in range(nf)]

    pos_w = np.broadcast_to(goal.pos_w, goal.pos.shape[:2]).astype(np.float32)
    targets = {"pos": goal.pos, "pos_w": pos_w, "dir": goal.dirs, "rot": goal.rots,
               "contact": contacts.astype(np.float32)}
    if goal.clearance is not None and geoms is not None:
        targets["clearance"] = goal.clearance * ~contacts  # in contact, the contact term holds the foot down
    init = {"root_pos": goal.init_root_pos, "root_rot": goal.init_root_rot,
            "dof": np.broadcast_to(goal.rest_dof, (n, layout.num_dof))}
    use_init = np.zeros(n, bool)
    use_init[0] = True
    steps = np.full(n, cfg.steps)
    steps[0] = cfg.first_steps
    sol = run_ik(prob, cfg, targets, init, use_init, steps, goal.rest_dof)

    # Pin each foot's xy to its mean over each contact interval with a second pass.
    offset = (sol["root_pos"][-1, :2] - sol["root_pos"][0, :2]) if loop else np.zeros(2)
    bp, _ = fk(layout, sol["root_pos"], sol["root_rot"], sol["dof"])
    pin_pos = goal.pos.copy()
    pin_w = pos_w.copy()
    for f, k in enumerate(goal.feet_k):
        body = goal.prob.pos_body[k]
        pinned, mask = pin_to_interval_means(bp[:, body, :2], runs[f], offset)
        pin_pos[mask, k, :2] = pinned[mask]
        pin_w[mask, k] *= cfg.pin_weight
    if any(runs):
        targets2 = dict(targets, pos=pin_pos, pos_w=pin_w)
        sol = run_ik(prob, cfg, targets2, sol, np.ones(n, bool), np.full(n, cfg.pin_steps), goal.rest_dof)

    # Joint ranges, then lift onto the floor.
    lo, hi = layout.dof_low.astype(np.float64), layout.dof_high.astype(np.float64)
    excess = joint_range_excess(sol["dof"], lo, hi)
    dof = np.clip(sol["dof"], lo, hi)
    root_pos, root_rot = sol["root_pos"].copy(), sol["root_rot"] / np.linalg.norm(sol["root_rot"], axis=-1,
                                                                                  keepdims=True)
    bp, br = fk(layout, root_pos, root_rot, dof)
    if geoms is not None:
        bottoms = group_bottoms(geoms, bp, br, len(target_feet))
    else:
        ids = [layout.body_names.index(f) for f in target_feet]
        bottoms = np.asarray(bp)[:, ids, 2]
    lift = -float(bottoms.min())
    root_pos[:, 2] += lift
    bottoms = bottoms + lift
    bp = bp + np.array([0.0, 0.0, lift])

    clip = Clip(fps=float(fps), loop=bool(loop), root_pos=root_pos.astype(np.float32),
                root_rot=root_rot.astype(np.float32), dof_pos=dof.astype(np.float32), character=layout.name,
                dof_names=layout.dof_names)
    target_points = goal.pos + np.array([0.0, 0.0, lift])
    err = np.linalg.norm(bp[:, np.array(goal.prob.pos_body)] - target_points, axis=-1)
    slide = max((interval_slide(bp[:, goal.prob.pos_body[k], :2], runs[f], offset) for f, k in enumerate(goal.feet_k)),
                default=0.0)
    contact_bottoms = bottoms[contacts] if contacts.any() else np.zeros(1)
    quality = {
        "frames": n,
        "scale": scale,
        "keypoint_err_mean_cm": 100 * float(err.mean()),
        "keypoint_err_max_cm": 100 * float(err.max()),
        "keypoint_err_per_body_cm": {layout.body_names[b]: 100 * float(err[:, i].mean())
                                     for i, b in enumerate(goal.prob.pos_body)},
        "joint_excess_max_rad": float(excess.max()),
        "foot_slide_max_cm": 100 * slide,
        "contact_frames": [int(c) for c in contacts.sum(axis=0)],
        "contact_foot_height_max_cm": 100 * float(contact_bottoms.max()),
        "lowest_foot_cm": 100 * float(bottoms.min()),
        "lift_cm": 100 * lift,
    }
    return RetargetResult(clip=clip, quality=quality, contacts=contacts, target_points=target_points, scale=scale)
