"""Feet: contact detection on the source, contact intervals (merged across a looping clip's seam), foot
pinning targets, the slide measure, and the sole height of a character's feet."""

from __future__ import annotations

import mujoco
import numpy as np

from amp_jax.characters.character import Layout
from amp_jax.motion_tools.host_kinematics import group_bottoms, rest_pose, subtree_geoms


def contact_mask(foot_pos: np.ndarray, fps: float, loop: bool, height: float, speed: float) -> np.ndarray:
    """[N] bool: the foot is within `height` of its lowest z in the clip and moves slower than `speed`
    horizontally (central differences; a looping clip's ends use the cycle offset)."""
    p = np.asarray(foot_pos, np.float64)
    n = len(p)
    xy = p[:, :2]
    if loop and n > 2:
        offset = xy[-1] - xy[0]
        prev = np.concatenate([xy[-2:-1] - offset, xy[:-1]])
        nxt = np.concatenate([xy[1:], xy[1:2] + offset])
        v = np.linalg.norm(nxt - prev, axis=-1) * fps / 2.0
    else:
        v = np.linalg.norm(np.gradient(xy, axis=0), axis=-1) * fps
    return (p[:, 2] - p[:, 2].min() < height) & (v < speed)


def contact_intervals(mask: np.ndarray, loop: bool) -> list[list[tuple[int, int]]]:
    """Runs of True as lists of (frame, cycle). In a looping clip the last frame is the first frame one cycle
    later, so a run touching the end continues into the run at the start: it is merged into that run with
    cycle 1 for its frames (their positions are compared after subtracting the clip's cycle offset)."""
    n = len(mask)
    runs, t = [], 0
    while t < n:
        if mask[t]:
            s = t
            while t < n and mask[t]:
                t += 1
            runs.append([(i, 0) for i in range(s, t)])
        else:
            t += 1
    if loop and len(runs) > 1 and mask[0] and mask[-1]:
        tail = runs.pop()
        runs[0] = [(i, 1) for i, _ in tail] + runs[0]
    return runs


def pin_to_interval_means(foot_xy: np.ndarray, runs, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pinned xy per frame [N, 2] and its mask [N]: the interval mean, shifted by the cycle offset for
    frames on the other side of a loop seam."""
    pinned = foot_xy.copy()
    mask = np.zeros(len(foot_xy), bool)
    for run in runs:
        # Express every frame of the run in the cycle of the run's unshifted frames.
        pts = np.array([foot_xy[i] - w * offset for i, w in run])
        mean = pts.mean(axis=0)
        for i, w in run:
            pinned[i] = mean + w * offset
            mask[i] = True
    return pinned, mask


def interval_slide(foot_xy: np.ndarray, runs, offset: np.ndarray) -> float:
    """Largest distance of a contact frame's foot xy from its interval mean."""
    worst = 0.0
    for run in runs:
        pts = np.array([foot_xy[i] - w * offset for i, w in run])
        worst = max(worst, float(np.max(np.linalg.norm(pts - pts.mean(axis=0), axis=-1))))
    return worst


def sole_height(layout: Layout, model: mujoco.MjModel | None, feet) -> float:
    """Mean height of the foot bodies above their lowest geom point at the zero pose (0 without a model)."""
    if model is None:
        return 0.0
    pos, rot = rest_pose(layout)
    geoms = subtree_geoms(model, layout, feet)
    bottoms = group_bottoms(geoms, pos, rot, len(feet))
    ids = [layout.body_names.index(f) for f in feet]
    return float(np.mean(pos[ids, 2] - bottoms))
