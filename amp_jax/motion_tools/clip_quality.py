"""Clip quality: the numbers that tell a clean reference motion from a bad import or retarget.

All of it is computed on the host with numpy forward kinematics (amp_jax.motion_tools.host_kinematics), from a clip
and its character's collision geoms:

* **foot sliding.** A foot is a contact body with the bodies below it. Its contact point at a frame is
  the lowest point of its collision geoms, taken as a point fixed in its body; the foot is *in contact*
  when that point is less than CONTACT_HEIGHT (2 cm) above the floor (z = 0) and moves slower than
  CONTACT_SPEED (1 m/s) horizontally. Its slip is the contact point's horizontal speed (central
  differences between the neighbouring frames, one-sided at the clip's ends), so a foot rolling over its
  heel or toe does not slip while a planted foot that is dragged does. Reported per foot: the fraction of
  frames in contact, the mean and largest slip over them, and the fraction of frames in which the foot
  *scuffs*: within 2 cm of the floor but faster than 1 m/s (a swing foot dragged along the floor, or a
  fast landing). A foot that never comes within 2 cm of the floor slower than 1 m/s has no contact
  frames; for locomotion that is itself a fault (see `Limits.contact_fraction_min`).
* **ground penetration.** The lowest point of every collision geom of the character per frame: the
  deepest point below the floor over the clip, the frames more than PENETRATION_TOL below it, and the
  median lowest point (a clip that floats has it well above 0).
* **joint limits.** Every DoF against its MJCF range (per axis for ball joints, as authored): the
  largest excess and the number of frames beyond the range by more than LIMIT_TOL, per DoF.
* **root motion.** Horizontal root speed (mean and max) and the heading change: the total signed yaw
  of the root's x axis (unwrapped) from the first frame to the last.

`inspect_clip` returns the whole report as a JSON-ready dict; `inspect_file` loads the clip and its
character (from the clip's `character` field, or a case config); `format_report` prints it as a table;
`check` lists what exceeds a set of `Limits` (the defaults suit locomotion; tests/test_clip_quality.py
holds the per-clip limits of the shipped clips, and docs/motions.md their reports).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mujoco
import numpy as np

from amp_jax.characters.character import Layout
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip
from amp_jax.motion_tools import host_kinematics as hk

CONTACT_HEIGHT = 0.02  # m: a foot's lowest point below this is near enough to the floor to be in contact
CONTACT_SPEED = 1.0  # m/s: ... and it must move slower than this horizontally
PENETRATION_TOL = 0.001  # m: frames whose lowest point is deeper than this count as below the floor
LIMIT_TOL = 1e-4  # rad: DoF values further than this outside their range count as violations


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a clean locomotion clip stays within (see `check`)."""

    slip_mean_m_s: float = 0.25  # per foot, mean slip over its contact frames
    contact_fraction_min: float = 0.3  # per foot: feet of a walk or run must touch the floor
    scuff_fraction_max: float = 0.2  # per foot
    penetration_m: float = 0.01  # deepest point below the floor
    lowest_median_m: float = 0.02  # median over frames of the lowest point: the clip does not float
    joint_excess_rad: tuple[tuple[str, float], ...] = ()  # DoFs allowed beyond their range, and by how much
    root_speed_max_m_s: float = 6.0


def check(report: dict, limits: Limits = Limits()) -> list[str]:
    """One line per limit the report exceeds (empty: the clip passes)."""
    problems = []
    for name, f in report["feet"].items():
        if f["slip_mean_m_s"] > limits.slip_mean_m_s:
            problems.append(f"foot slip: {name} slips {f['slip_mean_m_s']:.3f} m/s on average in contact "
                            f"(limit {limits.slip_mean_m_s})")
        if f["contact_fraction"] < limits.contact_fraction_min:
            problems.append(f"foot contact: {name} is in contact in {f['contact_fraction']:.2f} of the frames "
                            f"(at least {limits.contact_fraction_min})")
        if f["scuff_fraction"] > limits.scuff_fraction_max:
            problems.append(f"foot scuff: {name} scuffs the floor in {f['scuff_fraction']:.2f} of the frames "
                            f"(limit {limits.scuff_fraction_max})")
    g = report["ground"]
    if g["penetration_m"] > limits.penetration_m:
        problems.append(f"ground penetration: {g['lowest_body']} reaches {100 * g['penetration_m']:.2f} cm below "
                        f"the floor (limit {100 * limits.penetration_m:.2f} cm)")
    if g["lowest_median_m"] > limits.lowest_median_m:
        problems.append(f"floating: the median lowest point is {100 * g['lowest_median_m']:.2f} cm above the floor "
                        f"(limit {100 * limits.lowest_median_m:.2f} cm)")
    allowed = dict(limits.joint_excess_rad)
    for d in report["joint_limits"]["dofs"]:
        if d["max_excess_rad"] > allowed.get(d["dof"], LIMIT_TOL):
            problems.append(f"joint limit: {d['dof']} is {d['max_excess_rad']:.3f} rad beyond its range in "
                            f"{d['frames']} frames (allowed {allowed.get(d['dof'], 0.0)})")
    speed = report["root"]["speed_max_m_s"]
    if speed > limits.root_speed_max_m_s:
        problems.append(f"root speed: {speed:.2f} m/s (limit {limits.root_speed_max_m_s})")
    return problems


def joint_range_excess(dof_pos, low, high) -> np.ndarray:
    """How far each DoF is outside [low, high] ([..., D], 0 inside)."""
    dof_pos = np.asarray(dof_pos, np.float64)
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return np.maximum(dof_pos - high, 0) + np.maximum(low - dof_pos, 0)


def top_bodies(layout: Layout, bodies) -> tuple[str, ...]:
    """The bodies of `bodies` none of whose ancestors is in `bodies` (each foot once, e.g. G1's knee,
    whose subtree holds its ankle links)."""
    chosen = set(bodies)

    def ancestors(name):
        i = layout.body_names.index(name)
        while layout.parents[i] >= 0:
            i = int(layout.parents[i])
            yield layout.body_names[i]

    return tuple(b for b in bodies if not chosen.intersection(ancestors(b)))


def _central_velocity(points_at, n: int, fps: float) -> np.ndarray:
    """Velocity [N, 3] of a material point from its positions at the neighbouring frames: points_at(frames)
    gives the point's world position at each frame in `frames` (it is fixed at frame t in its body)."""
    t = np.arange(n)
    nxt, prv = np.minimum(t + 1, n - 1), np.maximum(t - 1, 0)
    return (points_at(nxt) - points_at(prv)) * fps / np.maximum(nxt - prv, 1)[:, None]


def foot_contacts(geoms: hk.GeomSet, body_pos, body_rot, fps: float):
    """Per frame and foot (geom group): contact-point height [N, F], horizontal slip speed [N, F] and
    contact mask [N, F] (see the module docstring)."""
    n = len(body_pos)
    num_feet = int(geoms.group.max()) + 1
    z = hk.geom_bottoms(geoms, body_pos, body_rot)
    _, local = hk.lowest_points(geoms, body_pos, body_rot)
    height, slip = np.zeros((n, num_feet)), np.zeros((n, num_feet))
    frames = np.arange(n)
    for f in range(num_feet):
        own = np.where(geoms.group == f)[0]
        g = own[np.argmin(z[:, own], axis=1)]  # the geom reaching lowest at each frame
        body, point = geoms.body[g], local[frames, g]
        height[:, f] = z[frames, g]
        v = _central_velocity(lambda ts: body_pos[ts, body] + hk.quat_rotate(body_rot[ts, body], point), n, fps)
        slip[:, f] = np.linalg.norm(v[:, :2], axis=-1)
    return height, slip, (height < CONTACT_HEIGHT) & (slip < CONTACT_SPEED)


def root_motion(clip: Clip) -> dict:
    """Horizontal root speed (mean, max; m/s) and the total signed heading change (degrees)."""
    xy = np.asarray(clip.root_pos, np.float64)[:, :2]
    speed = np.linalg.norm(np.gradient(xy, axis=0), axis=-1) * clip.fps
    x_axis = hk.quat_rotate(np.asarray(clip.root_rot, np.float64), np.array([1.0, 0.0, 0.0]))
    yaw = np.unwrap(np.arctan2(x_axis[:, 1], x_axis[:, 0]))
    return {"speed_mean_m_s": float(speed.mean()), "speed_max_m_s": float(speed.max()),
            "heading_change_deg": float(np.degrees(yaw[-1] - yaw[0]))}


def joint_limits(clip: Clip, layout: Layout) -> dict:
    """Largest range excess over all DoFs, frames with any violation, and the violating DoFs (worst first)."""
    excess = joint_range_excess(clip.dof_pos, layout.dof_low, layout.dof_high)
    bad = excess > LIMIT_TOL
    dofs = [{"dof": layout.dof_names[d], "max_excess_rad": float(excess[:, d].max()), "frames": int(bad[:, d].sum())}
            for d in np.where(bad.any(axis=0))[0]]
    return {"max_excess_rad": float(excess.max(initial=0.0)), "frames": int(bad.any(axis=1).sum()),
            "dofs": sorted(dofs, key=lambda e: -e["max_excess_rad"])}


def inspect_clip(clip: Clip, layout: Layout, model: mujoco.MjModel, feet) -> dict:
    """The quality report of `clip` on the character (`layout`, its MjModel `model`); `feet` are the
    bodies whose subtrees are the feet."""
    clip.validate("inspected clip", layout.num_dof)
    bp, br = hk.fk(layout, clip.root_pos, clip.root_rot, clip.dof_pos)
    height, slip, contact = foot_contacts(hk.subtree_geoms(model, layout, feet), bp, br, clip.fps)
    feet_report = {}
    for f, name in enumerate(feet):
        s = slip[contact[:, f], f]
        feet_report[name] = {"contact_fraction": float(contact[:, f].mean()),
                             "slip_mean_m_s": float(s.mean()) if len(s) else 0.0,
                             "slip_max_m_s": float(s.max()) if len(s) else 0.0,
                             "scuff_fraction": float(((height[:, f] < CONTACT_HEIGHT) & ~contact[:, f]).mean())}
    everything = hk.subtree_geoms(model, layout, [layout.body_names[0]])
    z = hk.geom_bottoms(everything, bp, br)
    lowest = z.min(axis=1)
    worst = np.unravel_index(np.argmin(z), z.shape)
    return {
        "character": layout.name,
        "frames": clip.num_frames,
        "fps": float(clip.fps),
        "duration_s": float(clip.length),
        "loop": bool(clip.loop),
        "feet": feet_report,
        "foot_slip_mean_m_s": max(v["slip_mean_m_s"] for v in feet_report.values()),
        "contact_fraction_min": min(v["contact_fraction"] for v in feet_report.values()),
        "scuff_fraction_max": max(v["scuff_fraction"] for v in feet_report.values()),
        "ground": {"penetration_m": float(max(0.0, -lowest.min())),
                   "frames_below_floor": int((lowest < -PENETRATION_TOL).sum()),
                   "lowest_body": layout.body_names[int(everything.body[worst[1]])],
                   "lowest_median_m": float(np.median(lowest))},
        "joint_limits": joint_limits(clip, layout),
        "root": root_motion(clip),
        "thresholds": {"contact_height_m": CONTACT_HEIGHT, "contact_speed_m_s": CONTACT_SPEED,
                       "penetration_tol_m": PENETRATION_TOL, "limit_tol_rad": LIMIT_TOL},
    }


def inspect_file(path: str | Path, config: str | None = None) -> dict:
    """Load a clip and its character and return `inspect_clip`'s report (with the clip's path).

    The character is the clip's `character` field (an amp-jax .npz) looked up among the cases, or the
    character of `config` (a case name or YAML), which a clip without that field (.pkl) needs. The feet
    are the config's contact bodies that have no contact-body ancestor."""
    from amp_jax.catalog import case_for_character, case_path, resolve_path
    from amp_jax.characters.character import load_character
    from amp_jax.config import load_config
    from amp_jax.motion.clip import load_clip

    clip = load_clip(path)
    if config is None:
        if not clip.character:
            raise InputError(f"{path}: the clip names no character; pass --config CASE")
        config_path = case_for_character(clip.character)
    else:
        config_path = case_path(config)
    env = load_config(config_path).env
    char = load_character(resolve_path(env.character), [], env.contact_bodies)
    if clip.character and clip.character != char.layout.name:
        raise InputError(f"{path}: a clip of '{clip.character}', but {config_path} uses '{char.layout.name}'")
    clip.validate(str(path), char.layout.num_dof)
    report = inspect_clip(clip, char.layout, char.mj_model, top_bodies(char.layout, env.contact_bodies))
    return {"clip": str(path), "config": str(config_path), **report}


def format_report(report: dict) -> str:
    """A readable table of one report."""
    g, j, r = report["ground"], report["joint_limits"], report["root"]
    lines = [f"{report['clip']}: {report['character']}, {report['frames']} frames at {report['fps']:.1f} Hz "
             f"({report['duration_s']:.2f} s{', loops' if report['loop'] else ''})",
             f"  {'foot':28s} {'contact':>8s} {'slip mean':>10s} {'slip max':>10s} {'scuff':>6s}"]
    for name, f in report["feet"].items():
        lines.append(f"  {name:28s} {f['contact_fraction']:8.2f} {f['slip_mean_m_s']:6.3f} m/s"
                     f" {f['slip_max_m_s']:6.3f} m/s {f['scuff_fraction']:6.2f}")
    lines.append(f"  ground: penetration {100 * g['penetration_m']:.2f} cm ({g['lowest_body']}), "
                 f"{g['frames_below_floor']} frames below the floor, median lowest point "
                 f"{100 * g['lowest_median_m']:.2f} cm")
    lines.append(f"  joint limits: max excess {j['max_excess_rad']:.3f} rad, {j['frames']} frames")
    for d in j["dofs"]:
        lines.append(f"    {d['dof']:26s} {d['max_excess_rad']:.3f} rad in {d['frames']} frames")
    lines.append(f"  root: speed mean {r['speed_mean_m_s']:.2f} m/s, max {r['speed_max_m_s']:.2f} m/s; "
                 f"heading change {r['heading_change_deg']:+.1f} deg")
    t = report["thresholds"]
    lines.append(f"  (contact: lowest foot point < {100 * t['contact_height_m']:.0f} cm above the floor and "
                 f"slower than {t['contact_speed_m_s']:.1f} m/s)")
    return "\n".join(lines)
