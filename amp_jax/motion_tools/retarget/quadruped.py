"""Laikago (motion-imitation) -> Go2: the Laikago's kinematics, its clip format, and foot-position IK."""

from __future__ import annotations

import dataclasses
import functools
import json
import tarfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from amp_jax import quat
from amp_jax.characters.character import FIXED, HINGE, Layout
from amp_jax.errors import InputError
from amp_jax.motion_tools.host_kinematics import fk, rest_pose
from amp_jax.motion_tools.retarget.feet import sole_height
from amp_jax.motion_tools.retarget.ik import IKConfig, Problem
from amp_jax.motion_tools.retarget.solve import Goal, RetargetResult, solve_goal
from amp_jax.motion_tools.retarget.targets import body_index

# Laikago leg kinematics, read from pybullet_data/laikago/laikago_toes_limits.urdf (the model the
# motion-imitation clips were made for; pybullet 3.2.7, zlib licence, Erwin Coumans). The URDF's chassis
# frame has x to the left, y up and z forward. Values in metres, rounded as in the URDF; the foot is the toe
# sphere (r 0.03) centre. Treat them as approximate: the clips were retargeted onto this model, but our
# kinematic tree drops everything except the joint axes and offsets.
LAIKAGO_COM = (0.0, 0.03, 0.043794)  # chassis centre of mass in the chassis frame (pybullet's base frame)
LAIKAGO_LEGS = {  # leg: (abduction joint origin, abduction axis, hip origin, knee origin)
    "FR": ((-0.0817145, 0.0, 0.242889), (0.0, 0.0, -1.0), (-0.053565, 0.0, 0.0), (0.02069, -0.20833, -0.1422)),
    "FL": ((0.0817145, 0.0, 0.242889), (0.0, 0.0, 1.0), (0.055855, 0.0, 0.0), (-0.02069, -0.20833, -0.1422)),
    "RR": ((-0.0817145, 0.0, -0.194401), (0.0, 0.0, -1.0), (-0.053565, 0.0, 0.0), (0.02069, -0.20833, -0.1422)),
    "RL": ((0.0817145, 0.0, -0.194401), (0.0, 0.0, 1.0), (0.055855, 0.0, 0.0), (-0.02069, -0.20833, -0.1422)),
}
LAIKAGO_TOE = (0.0, -0.25, -0.022)  # toe centre in the lower-leg frame
LAIKAGO_TOE_RADIUS = 0.03
LAIKAGO_LEG_ORDER = ("FR", "FL", "RR", "RL")  # the clips' joint order, (abduction, hip, knee) each
# Rotation from the standard body frame (x forward, y left, z up) to the URDF chassis frame's axes:
# pybullet's Euler (pi/2, 0, pi/2), the orientation of an upright Laikago facing +x.
LAIKAGO_UPRIGHT = (0.5, 0.5, 0.5, 0.5)  # (w, x, y, z)
GO2_LEG_LENGTH = 0.213 + 0.213


@functools.lru_cache(maxsize=1)
def laikago_layout() -> Layout:
    """A kinematic Layout of the Laikago (chassis, then per leg: hip motor, upper leg, lower leg, toe)."""
    names, parents, offs, kinds, axes = ["chassis"], [-1], [(0.0, 0.0, 0.0)], [FIXED], [(0.0, 0.0, 0.0)]
    for leg in LAIKAGO_LEG_ORDER:
        abd, abd_axis, hip, knee = LAIKAGO_LEGS[leg]
        base = len(names)
        for name, parent, off, kind, axis in ((f"{leg}_hip_motor", 0, abd, HINGE, abd_axis),
                                              (f"{leg}_upper_leg", base, hip, HINGE, (1.0, 0.0, 0.0)),
                                              (f"{leg}_lower_leg", base + 1, knee, HINGE, (1.0, 0.0, 0.0)),
                                              (f"toe{leg}", base + 2, LAIKAGO_TOE, FIXED, (0.0, 0.0, 0.0))):
            names.append(name)
            parents.append(parent)
            offs.append(off)
            kinds.append(kind)
            axes.append(axis)
    kinds = np.array(kinds, np.int32)
    counts = np.where(kinds == HINGE, 1, 0)
    dof_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
    nb, nd = len(names), int(counts.sum())
    dof_names = tuple(f"{names[i]}_joint" for i in range(nb) if kinds[i] == HINGE)
    z = np.zeros(nd, np.float32)
    return Layout(name="laikago", body_names=tuple(names), parents=np.array(parents, np.int32),
                  body_pos=np.array(offs, np.float32), body_quat=np.tile(np.float32([1, 0, 0, 0]), (nb, 1)),
                  joint_kind=kinds, joint_axis=np.array(axes, np.float32), dof_start=dof_start,
                  qpos_adr=np.zeros(nb, np.int32), dof_names=dof_names, dof_low=np.full(nd, -np.pi, np.float32),
                  dof_high=np.full(nd, np.pi, np.float32), kp=z, kd=z, torque_limit=z, action_low=z, action_high=z,
                  key_body_ids=np.zeros(0, np.int32), contact_body_ids=np.zeros(0, np.int32),
                  fail_geom_body=np.zeros(0, np.int32), fail_geom_pos=np.zeros((0, 3), np.float32),
                  fail_geom_quat=np.zeros((0, 4), np.float32), fail_geom_extent=np.zeros((0, 3), np.float32),
                  fail_geom_radius=np.zeros(0, np.float32))


@dataclasses.dataclass(frozen=True)
class LaikagoMotion:
    fps: float
    loop: bool
    root_pos: np.ndarray  # [N, 3] chassis centre of mass (pybullet's base position)
    root_rot: np.ndarray  # [N, 4] (w, x, y, z) of the URDF chassis frame
    dof_pos: np.ndarray  # [N, 12] URDF joint angles, legs FR, FL, RR, RL x (abduction, hip, knee)


def parse_laikago_motion(text: str, source: str = "motion") -> LaikagoMotion:
    """A motion-imitation clip: JSON {LoopMode, FrameDuration, Frames: [[root xyz, quat xyzw, 12 angles]]}."""
    try:
        data = json.loads(text)
        frames = np.asarray(data["Frames"], np.float64)
        dt = float(data["FrameDuration"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{source}: not a motion-imitation clip: {e}") from None
    if frames.ndim != 2 or frames.shape[1] != 19 or len(frames) < 2:
        raise InputError(f"{source}: expected frames of 19 numbers (root xyz, quat xyzw, 12 angles), "
                         f"got shape {frames.shape}")
    q = frames[:, 3:7]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return LaikagoMotion(fps=1.0 / dt, loop=str(data.get("LoopMode", "Wrap")).lower() == "wrap",
                         root_pos=frames[:, :3], root_rot=np.concatenate([q[:, 3:], q[:, :3]], axis=1),
                         dof_pos=frames[:, 7:])


def read_motion_imitation_clip(sdist: str | Path, name: str = "dog_pace") -> LaikagoMotion:
    """Read motion_imitation/data/motions/<name>.txt from the motion-imitation sdist (.tar.gz)."""
    sdist = Path(sdist)
    with tarfile.open(sdist) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(f"motion_imitation/data/motions/{name}.txt")),
                      None)
        if member is None:
            raise InputError(f"{sdist}: no motion_imitation/data/motions/{name}.txt")
        text = tar.extractfile(member).read().decode()
    return parse_laikago_motion(text, f"{sdist}:{member.name}")


def laikago_fk(motion: LaikagoMotion):
    """World positions [N, 17, 3] and rotations of the Laikago bodies (toes included)."""
    layout = laikago_layout()
    rot = jnp.asarray(motion.root_rot, jnp.float32)
    link_origin = jnp.asarray(motion.root_pos, jnp.float32) - quat.rotate(rot, jnp.broadcast_to(
        jnp.asarray(LAIKAGO_COM, jnp.float32), (len(motion.root_pos), 3)))
    pos, r = fk(layout, link_origin, rot, motion.dof_pos)
    return layout, pos, r


def laikago_leg_length() -> float:
    """Hip (upper-leg joint) to toe-centre distance with the leg straight."""
    return float(np.linalg.norm(LAIKAGO_LEGS["FR"][3]) + np.linalg.norm(LAIKAGO_TOE))


def retarget_quadruped(motion: LaikagoMotion, target: Layout, target_model=None, *, config: IKConfig = IKConfig(),
                       rest_dof=(0.0, 0.9, -1.8) * 4) -> RetargetResult:
    """Retarget a Laikago clip onto Go2 (`target`, bodies <leg>_hip/_thigh/_foot for leg FL, FR, RL, RR).

    The Laikago's toes and its body reference point (the centre of its four hip joints) are scaled by
    s = Go2 leg length / Laikago leg length about the ground (toe-sphere radius mapped to Go2's foot
    radius). The Go2 root follows the scaled reference point and the Laikago chassis orientation; each
    Go2 foot follows its scaled Laikago toe, shifted by the difference of the two robots' hip placements in
    the body frame (R_root (h_go2 - s h_laikago)), so that stance feet stay planted and the leg IK is
    solvable even though the bodies' proportions differ. The DoF order follows the target (FL, FR, RL, RR).
    """
    goal, s, feet_t = quadruped_goal(motion, target, target_model, rest_dof)
    return solve_goal(goal, target, target_model, motion.fps, motion.loop, config, s, feet_t)


def quadruped_target_points(motion: LaikagoMotion, target: Layout, target_model=None):
    """The Go2 IK's position targets: (target body names: base, FL/FR/RL/RR_foot; points [N, 5, 3]; scale)
    (before the final lift, which `retarget_quadruped` reports)."""
    goal, s, _ = quadruped_goal(motion, target, target_model, (0.0, 0.9, -1.8) * 4)
    return tuple(target.body_names[b] for b in goal.prob.pos_body), goal.pos, s


def quadruped_goal(motion, target, target_model, rest_dof):
    n = len(motion.root_pos)
    lay, lp, _ = laikago_fk(motion)
    s = GO2_LEG_LENGTH / laikago_leg_length()
    tbody = lambda name: body_index(target, name, "target")
    legs = ("FL", "FR", "RL", "RR")
    hips_l = [lay.body_names.index(f"{leg}_upper_leg") for leg in legs]
    toes_l = [lay.body_names.index(f"toe{leg}") for leg in legs]
    hips_t = [tbody(f"{leg}_thigh") for leg in legs]
    feet_t = [f"{leg}_foot" for leg in legs]

    # Chassis orientation of an upright, +x-facing robot -> Go2 root rotation.
    upright = jnp.asarray(LAIKAGO_UPRIGHT, jnp.float32)
    go2_rot = np.asarray(quat.mul(jnp.asarray(motion.root_rot, jnp.float32), quat.conj(upright)), np.float64)
    # Hip offsets in the standard body frame: Laikago's about its hip centre (from its rest pose), Go2's about
    # its root.
    lay_pos0, _ = rest_pose(lay)
    lay_hips = np.asarray(quat.rotate(upright, jnp.asarray(lay_pos0[hips_l], jnp.float32)), np.float64)
    lay_hips -= lay_hips.mean(axis=0)
    tpos0, _ = rest_pose(target)
    go2_hips = tpos0[hips_t]
    radius_t = sole_height(target, target_model, feet_t) if target_model is not None else 0.0

    origin = np.array([motion.root_pos[0, 0], motion.root_pos[0, 1], LAIKAGO_TOE_RADIUS])
    new_origin = np.array([motion.root_pos[0, 0], motion.root_pos[0, 1], radius_t])
    scaled = lambda p: s * (p - origin) + new_origin
    ref = scaled(lp[:, hips_l].mean(axis=1))  # [N, 3]
    corr = np.asarray(quat.rotate(jnp.asarray(go2_rot[:, None], jnp.float32),
                                  jnp.asarray(go2_hips - s * lay_hips, jnp.float32)), np.float64)  # [N, 4, 3]
    feet = scaled(lp[:, toes_l]) + corr
    pos = np.concatenate([ref[:, None], feet], axis=1)
    prob = Problem(layout=target, pos_body=(0, *[tbody(f) for f in feet_t]), dir_a=(), dir_b=(), dir_w=(),
                    rot_body=(0,), rot_w=(1.0,))
    goal = Goal(prob=prob, pos=pos, pos_w=np.array([1.0, 3.0, 3.0, 3.0, 3.0], np.float32), dirs=np.zeros((n, 0, 3)),
                 rots=go2_rot[:, None], feet_k=[1, 2, 3, 4], source_feet=lp[:, toes_l], init_root_pos=ref,
                 init_root_rot=go2_rot, rest_dof=np.asarray(rest_dof, np.float64))
    return goal, s, feet_t


