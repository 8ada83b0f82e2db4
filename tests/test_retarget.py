"""Retargeting (amp_jax/motion_tools/retarget/) and the committed retargeted clips (scripts/make_retargeted_motions.py).

Tolerances: key points within 3 cm on average and 5 cm at worst of the scaled source (G1, Pi Plus, SMPL; the
scaled source includes the per-character hip / shoulder placement shifts, see `Mapping.anchors`), Go2 feet
within 2 cm on average and 4 cm at worst of the scaled Laikago toes; all DoFs inside their ranges; feet move
less than 2 cm from their mean position during each source contact interval; the lowest foot point over a clip
is at the floor (|z| < 1.5 cm), and a foot in contact is less than 1.5 cm above it; a swinging foot clears the
floor by at least 80% of the scaled source foot's clearance (humanoid targets); the body shifts its weight over
the lower foot by 0.2-0.4 of the half foot separation, as the source does (0.30).
"""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from amp_jax.characters.kinematics import dof_to_joint_rot, forward_kinematics
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip, load_clip
from amp_jax.motion_tools import host_kinematics as hk
from amp_jax.motion_tools import retarget as rt

REPO = Path(__file__).resolve().parent.parent
WALK = REPO / "motions/humanoid/humanoid_walk.npz"
DOG_PACE = REPO / "motions/go2/laikago_dog_pace.txt"  # unaltered copy from the motion-imitation 0.0.6 sdist
CLIPS = {"g1": "motions/g1/g1_walk.npz", "pi_plus": "motions/pi_plus/pi_plus_walk.npz",
         "smpl": "motions/smpl/smpl_walk.npz", "go2": "motions/go2/go2_pace.npz"}
CFG = rt.IKConfig()
FAST = rt.IKConfig(first_steps=300, steps=100, pin_steps=100)

_chars = {}


def char(name):
    """(layout, model) of assets/<name>/<name>.xml, loaded once."""
    if name not in _chars:
        _chars[name] = rt.load_target(name)
    return _chars[name]


def contact_runs(feet_pos, fps, loop):
    """Source contact masks [N, F] and their intervals, with the retargeter's thresholds."""
    masks = np.stack([rt.contact_mask(feet_pos[:, f], fps, loop, CFG.contact_height, CFG.contact_speed)
                      for f in range(feet_pos.shape[1])], axis=-1)
    return masks, [rt.contact_intervals(masks[:, f], loop) for f in range(masks.shape[1])]


def slide(xy, runs, offset):
    worst = 0.0
    for run in runs:
        pts = np.array([xy[i] - w * offset for i, w in run])
        worst = max(worst, float(np.linalg.norm(pts - pts.mean(axis=0), axis=-1).max()))
    return worst


def check_clip(clip: Clip, layout, model, feet, targets, masks, runs, mean_tol, max_tol):
    """The properties every retargeted clip must have (see the module docstring)."""
    assert clip.dof_pos.shape[1] == layout.num_dof
    assert np.all(clip.dof_pos >= layout.dof_low - 1e-6) and np.all(clip.dof_pos <= layout.dof_high + 1e-6)
    bp, br = hk.fk(layout, clip.root_pos, clip.root_rot, clip.dof_pos)
    names, points = targets
    err = np.linalg.norm(bp[:, [layout.body_names.index(b) for b in names]] - points, axis=-1)
    assert err.mean() < mean_tol and err.max() < max_tol, dict(zip(names, err.mean(axis=0)))
    geoms = hk.subtree_geoms(model, layout, feet)
    bottoms = hk.group_bottoms(geoms, bp, br, len(feet))
    assert abs(bottoms.min()) < 0.015
    assert masks.any()
    assert bottoms[masks].max() < 0.015
    offset = clip.root_pos[-1, :2] - clip.root_pos[0, :2] if clip.loop else np.zeros(2)
    for f, name in enumerate(feet):
        assert slide(bp[:, layout.body_names.index(name), :2], runs[f], offset) < 0.02, name


def test_numpy_fk_matches_kinematics():
    rng = np.random.default_rng(0)
    for name in ("g1", "smpl"):
        layout, _ = char(name)
        dof = rng.uniform(-1, 1, (3, layout.num_dof)).astype(np.float32)
        q = rng.normal(size=(3, 4)).astype(np.float32)
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        pos = rng.normal(size=(3, 3)).astype(np.float32)
        joint_rot = dof_to_joint_rot(layout, jnp.asarray(dof))
        p0, r0 = forward_kinematics(layout, jnp.asarray(pos), jnp.asarray(q), joint_rot)
        p1, r1 = hk.fk(layout, pos, q, dof)
        np.testing.assert_allclose(p1, np.asarray(p0), atol=2e-5)
        np.testing.assert_allclose(r1, np.asarray(r0), atol=2e-5)


def test_contact_intervals_merge_across_the_loop_seam():
    mask = np.array([1, 1, 0, 0, 1, 0, 0, 1, 1], bool)
    assert rt.contact_intervals(mask, loop=False) == [[(0, 0), (1, 0)], [(4, 0)], [(7, 0), (8, 0)]]
    assert rt.contact_intervals(mask, loop=True) == [[(7, 1), (8, 1), (0, 0), (1, 0)], [(4, 0)]]


def test_laikago_kinematics_plant_the_stance_toes():
    """The Laikago FK constants and joint conventions: stance toes touch the floor and nearly stand still,
    swing toes move fast (a sign error in any joint would make stance feet slide)."""
    motion = rt.parse_laikago_motion(DOG_PACE.read_text())
    assert motion.dof_pos.shape == (39, 12) and motion.loop and abs(motion.fps - 60) < 0.1
    lay, pos, _ = rt.laikago_fk(motion)
    toes = pos[:, [lay.body_names.index(f"toe{leg}") for leg in rt.LAIKAGO_LEG_ORDER]]
    masks, _ = contact_runs(toes, motion.fps, motion.loop)
    assert 0.3 < masks.mean() < 0.7  # a pace: each foot on the ground about half the time
    assert np.all(toes[..., 2][masks] < rt.LAIKAGO_TOE_RADIUS + 0.015)
    speed = np.linalg.norm(np.gradient(toes[..., :2], axis=0), axis=-1) * motion.fps
    assert speed[masks].mean() < 0.3 and speed[~masks].max() > 2.0
    # Pace: the two legs of a side move together.
    fr, fl, rr, rl = masks.T
    assert (fr == rr).mean() > 0.65 and (fl == rl).mean() > 0.65 and (fr == fl).mean() < 0.3


def weight_shift_share(layout, model, clip, feet) -> float:
    """How far the centre of mass leans toward the lower foot, across the heading, as a share of the half foot
    separation (the mean over the clip): about 0.3 in a human walk, 0 for a body kept over the middle."""
    bp, br = hk.fk(layout, clip.root_pos, clip.root_rot, clip.dof_pos)
    mass = np.asarray(model.body_mass[1:])  # layout body b is MuJoCo body b + 1
    com = bp + hk.quat_rotate(br, np.broadcast_to(model.body_ipos[1:], bp.shape))
    com = (mass[None, :, None] * com).sum(axis=1) / mass.sum()
    ids = [layout.body_names.index(f) for f in feet]
    x_axis = hk.quat_rotate(np.asarray(clip.root_rot, np.float64), np.array([1.0, 0.0, 0.0]))
    lateral = np.stack([-x_axis[:, 1], x_axis[:, 0]], axis=-1)
    lateral /= np.linalg.norm(lateral, axis=-1, keepdims=True)
    mid = bp[:, ids, :2].mean(axis=1)
    feet_across = np.sum((bp[:, ids, :2] - mid[:, None]) * lateral[:, None], axis=-1)  # [N, 2]
    lower = np.argmin(bp[:, ids, 2], axis=1)
    toward = np.sum((com[:, :2] - mid) * lateral, axis=-1) * np.sign(feet_across[np.arange(len(lower)), lower])
    return float(toward.mean() / np.abs(feet_across).mean())


def test_weight_shift_scales_the_hips_sway_about_the_feet():
    """Hand-derived: hips swaying +-2 cm across the heading (+y) over feet whose midpoint is at y = 0, with a
    knee target halfway up and a head above the hips; k = 3 moves the hips and head by 2 * (+-2) cm, the knee
    by half of that and the feet not at all."""
    sway = np.array([0.02, -0.02])
    pos = np.zeros((2, 6, 3))
    pos[:, 0] = [[0, 0.05, 0.0]] * 2  # left foot
    pos[:, 1] = [[0, -0.05, 0.0]] * 2  # right foot
    pos[:, 2, 1], pos[:, 2, 2] = sway + 0.05, 0.5  # left hip
    pos[:, 3, 1], pos[:, 3, 2] = sway - 0.05, 0.5  # right hip
    pos[:, 4, 2] = 0.25  # a knee
    pos[:, 5, 2] = 0.9  # the head
    heading = np.tile([1.0, 0.0, 0.0, 0.0], (2, 1))
    shift = rt.humanoid.weight_shift(pos, [2, 3], [0, 1], heading, 3.0)
    expected = np.zeros((2, 6, 3))
    expected[:, [2, 3, 5], 1] = 2 * sway[:, None]
    expected[:, 4, 1] = sway
    np.testing.assert_allclose(shift, expected, atol=1e-12)


@pytest.mark.parametrize("name", ["g1", "pi_plus", "smpl"])
def test_committed_humanoid_clips(name):
    src, src_model = char("humanoid")
    layout, model = char(name)
    walk = load_clip(WALK, src.num_dof)
    clip = load_clip(REPO / CLIPS[name], layout.num_dof)
    assert clip.character == name and clip.dof_names == layout.dof_names
    assert clip.num_frames == walk.num_frames and clip.loop == walk.loop and abs(clip.fps - walk.fps) < 1e-3
    mapping = rt.MAPPINGS[("humanoid", name)]
    names, points, s = rt.scaled_source_points(walk, src, layout, mapping, source_model=src_model, target_model=model)
    sp, sr = hk.fk(src, walk.root_pos, walk.root_rot, walk.dof_pos)
    masks, runs = contact_runs(sp[:, [src.body_names.index(a) for a, _ in mapping.feet]], walk.fps, walk.loop)
    check_clip(clip, layout, model, mapping.target_feet, (names, points), masks, runs, 0.03, 0.05)
    # Swing clearance: off the floor, each foot's lowest point is at least 80% (less 3 mm) as high as the
    # source foot's lowest point above its own lowest in the clip, scaled by s. Before the IK's clearance term,
    # the Pi Plus's long feet swung their toes 0-13 mm above the floor where the scaled source cleared up to 4.2 cm.
    src_feet = [a for a, _ in mapping.feet]
    source_low = hk.group_bottoms(hk.subtree_geoms(src_model, src, src_feet), sp, sr, len(src_feet))
    clearance = s * (source_low - source_low.min(axis=0))
    bp, br = hk.fk(layout, clip.root_pos, clip.root_rot, clip.dof_pos)
    target_low = hk.group_bottoms(hk.subtree_geoms(model, layout, mapping.target_feet), bp, br, len(src_feet))
    swing = ~masks
    assert np.all(target_low[swing] >= 0.8 * clearance[swing] - 0.003), (target_low[swing], clearance[swing])
    # Weight shift: the source leans 0.30 of its half foot separation toward the lower foot; scaled by s alone
    # the Pi Plus's clip leaned 0.08 (G1's 0.18), its feet being wide for its size (humanoid.weight_shift).
    source_share = weight_shift_share(src, src_model, walk, [a for a, _ in mapping.feet])
    assert 0.28 < source_share < 0.32
    assert 0.2 < weight_shift_share(layout, model, clip, mapping.target_feet) < 0.4


def test_committed_go2_clip():
    layout, model = char("go2")
    motion = rt.parse_laikago_motion(DOG_PACE.read_text())
    clip = load_clip(REPO / CLIPS["go2"], layout.num_dof)
    assert clip.num_frames == 39 and clip.loop and abs(clip.fps - motion.fps) < 1e-3
    names, points, _ = rt.quadruped_target_points(motion, layout, model)
    lay, pos, _ = rt.laikago_fk(motion)
    legs = ("FL", "FR", "RL", "RR")
    masks, runs = contact_runs(pos[:, [lay.body_names.index(f"toe{leg}") for leg in legs]], motion.fps, motion.loop)
    check_clip(clip, layout, model, tuple(f"{leg}_foot" for leg in legs), (names, points), masks, runs, 0.02, 0.04)


def test_short_retarget_to_g1():
    """A fresh 5-frame retarget (fewer optimiser steps): the quality report and the clip agree with the
    tolerances."""
    src, src_model = char("humanoid")
    layout, model = char("g1")
    walk = load_clip(WALK, src.num_dof)
    short = Clip(fps=walk.fps, loop=False, root_pos=walk.root_pos[:5], root_rot=walk.root_rot[:5],
                 dof_pos=walk.dof_pos[:5])
    mapping = rt.HUMANOID_TO_G1
    res = rt.retarget(short, src, layout, mapping, source_model=src_model, target_model=model, config=FAST)
    q = res.quality
    assert q["keypoint_err_mean_cm"] < 3 and q["keypoint_err_max_cm"] < 5, q
    legs = [v for k, v in q["keypoint_err_per_body_cm"].items() if "shoulder" not in k and "wrist" not in k]
    assert max(legs) < 3.5, q  # the hips' weight shift pulls against the source's leg directions (3.06 cm)
    assert q["foot_slide_max_cm"] < 2 and abs(q["lowest_foot_cm"]) < 1.5 and q["contact_foot_height_max_cm"] < 1.5
    assert res.clip.num_frames == 5 and res.clip.dof_pos.shape[1] == layout.num_dof
    sp, _ = hk.fk(src, short.root_pos, short.root_rot, short.dof_pos)
    masks, runs = contact_runs(sp[:, [src.body_names.index(a) for a, _ in mapping.feet]], short.fps, False)
    np.testing.assert_array_equal(masks, res.contacts)
    check_clip(res.clip, layout, model, mapping.target_feet, (tuple(q["keypoint_err_per_body_cm"]),
               res.target_points), masks, runs, 0.03, 0.05)


def test_retarget_file_go2(tmp_path):
    """The command-line entry point on a 5-frame Laikago clip: a Go2 .npz of width 6 + 12 whose feet follow
    the scaled Laikago toes."""
    text = DOG_PACE.read_text()
    import json

    data = json.loads(text)
    data["Frames"] = data["Frames"][:5]
    data["LoopMode"] = "Clamp"
    src = tmp_path / "pace5.txt"
    src.write_text(json.dumps(data))
    out = tmp_path / "go2_pace5.npz"
    q = rt.retarget_file(src, "go2", out, config=FAST)
    layout, _ = char("go2")
    clip = load_clip(out, layout.num_dof)
    assert clip.num_frames == 5 and not clip.loop
    feet = [v for k, v in q["keypoint_err_per_body_cm"].items() if k.endswith("_foot")]
    assert max(feet) < 2 and q["keypoint_err_max_cm"] < 4, q
    assert q["foot_slide_max_cm"] < 2 and abs(q["lowest_foot_cm"]) < 1.5 and q["joint_excess_max_rad"] < 0.05, q


def test_retarget_file_errors(tmp_path):
    with pytest.raises(InputError, match="no retargeting mapping"):
        rt.retarget_file(WALK, "humanoid", tmp_path / "x.npz")
    with pytest.raises(InputError, match="motion-imitation"):
        rt.retarget_file(WALK, "go2", tmp_path / "x.npz")
