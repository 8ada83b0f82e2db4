"""Motion retargeting by per-frame inverse kinematics in JAX.

A clip of one character (the source) becomes a clip of another (the target) in three steps:

1. **Key-point IK.** Every frame, the target's root position, root rotation and DoFs are fitted by Adam
   (optax) to targets taken from the source pose:

   * positions of mapped bodies: the source body's world position scaled by s (ratio of the target's
     hip-to-ankle length to the source's), scaled about a ground point (the source root's ground
     projection at frame 0, with the source's sole height mapped to the target's), so the root height,
     the stride and the root path all scale together and a planted source foot stays planted; limb
     chains are then shifted by the difference of the characters' hip / shoulder placements
     (`Mapping.anchors`), so the target's feet land under its own hips;
   * directions of mapped segments (e.g. shoulder -> elbow): unit vectors, so limb proportions may differ;
   * world orientations of mapped bodies (root, feet, torso), through their zero-pose rotations
     (target rotation = source rotation * source rest^-1 * target rest), compared by tan-norm;
   * with the target's MjModel: a penalty for foot geoms below the floor, and for the lowest foot point
     above it while the source foot is in contact;
   * a penalty for DoFs outside [dof_low, dof_high], and small pulls toward the previous frame's DoFs and
     toward the rest pose.

   Frames are solved in order under `lax.scan`, each one warm-started from the previous solution (the first
   with more steps). Then the DoFs are clipped into their ranges.
2. **Feet.** Contact frames of each foot are detected on the source (foot height within `contact_height` of
   its lowest height in the clip and horizontal speed below `contact_speed`). During each contact interval
   the target foot's xy is pinned to its mean over the interval by a second IK pass (warm-started from the
   first, with the foot weight raised); intervals that wrap around a looping clip are merged using the
   clip's cycle offset. Finally the whole clip is lifted so that the lowest foot geom over the clip touches
   z = 0.
3. **Quality.** `RetargetResult.quality` has the mean / max key-point error (against the scaled source,
   with the final lift applied to both), the largest joint-range excess before clipping, the largest foot
   slide during contact, and foot heights during contact.

Source -> target mappings are given for our 28-DoF humanoid to G1, Pi Plus and SMPL (`MAPPINGS`).
`retarget_quadruped` maps the Laikago clips of the `motion-imitation` package (Apache-2.0) onto Go2 by
matching the (scaled) feet and root with the same solver. `retarget_file` is the command-line entry point.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tarfile
from pathlib import Path

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import optax

from amp_jax import quat
from amp_jax.character import BALL, FIXED, HINGE, Layout, geom_extent, load_character
from amp_jax.errors import InputError
from amp_jax.motion import Clip, load_clip, save_clip

ASSETS = Path(__file__).resolve().parent.parent / "assets"


# --------------------------------------------------------------------------------------------------
# Mappings


@dataclasses.dataclass(frozen=True)
class Mapping:
    """How a source skeleton's bodies drive a target skeleton's.

    positions: (source body, target body, weight): world positions to match after scaling.
    directions: (source a, source b, target a, target b, weight): unit vector a -> b to match.
    orientations: (source body, target body, weight): world orientations to match (via zero-pose rests).
    feet: (source foot, target foot): contact handling; each pair must also be in `positions`.
    legs: (source hip, source ankle, target hip, target ankle): the scale s is the mean ratio of the
        target's to the source's hip-to-ankle distance at the zero pose.
    anchors: (source anchor, target anchor, target bodies[, source frame body]): the position targets of
        these target bodies are shifted by the difference of the anchors' rest offsets from the hip centre
        (the mean of the legs' hip bodies), target - s * source, carried by the source frame body's
        rotation (relative to its rest), or by the source root's heading when no frame body is given. This
        keeps the target's own proportions: its feet are placed under its hips and its hands hang from its
        shoulders, not the scaled source's.
    """

    positions: tuple[tuple[str, str, float], ...]
    feet: tuple[tuple[str, str], ...]
    legs: tuple[tuple[str, str, str, str], ...]
    directions: tuple[tuple[str, str, str, str, float], ...] = ()
    orientations: tuple[tuple[str, str, float], ...] = ()
    anchors: tuple[tuple, ...] = ()

    @property
    def target_feet(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.feet)


def _sided(template, sides):
    """Expand entries for each (source side, target side): '{s}' and '{t}' in their strings (also inside
    nested tuples) become the sides."""
    def fill(x, a, b):
        if isinstance(x, str):
            return x.format(s=a, t=b)
        if isinstance(x, tuple):
            return tuple(fill(y, a, b) for y in x)
        return x

    return tuple(fill(entry, a, b) for a, b in sides for entry in template)


_HUMANOID_SIDES = (("left", "left"), ("right", "right"))

HUMANOID_TO_G1 = Mapping(
    positions=_sided((("{s}_thigh", "{t}_hip_roll_link", 1.0), ("{s}_shin", "{t}_knee_link", 0.5),
                      ("{s}_foot", "{t}_ankle_roll_link", 3.0), ("{s}_upper_arm", "{t}_shoulder_roll_link", 0.3),
                      ("{s}_hand", "{t}_wrist_yaw_link", 0.2)), _HUMANOID_SIDES),
    feet=(("left_foot", "left_ankle_roll_link"), ("right_foot", "right_ankle_roll_link")),
    legs=(("left_thigh", "left_foot", "left_hip_roll_link", "left_ankle_roll_link"),
          ("right_thigh", "right_foot", "right_hip_roll_link", "right_ankle_roll_link")),
    directions=_sided((("{s}_thigh", "{s}_shin", "{t}_hip_roll_link", "{t}_knee_link", 1.0),
                       ("{s}_shin", "{s}_foot", "{t}_knee_link", "{t}_ankle_roll_link", 1.0),
                       ("{s}_upper_arm", "{s}_lower_arm", "{t}_shoulder_roll_link", "{t}_elbow_link", 1.0),
                       ("{s}_lower_arm", "{s}_hand", "{t}_elbow_link", "{t}_wrist_yaw_link", 1.0)),
                      _HUMANOID_SIDES),
    orientations=(("pelvis", "pelvis", 1.0), ("torso", "torso_link", 0.5),
                  ("left_foot", "left_ankle_roll_link", 1.0), ("right_foot", "right_ankle_roll_link", 1.0)),
    anchors=_sided((("{s}_thigh", "{t}_hip_roll_link", ("{t}_hip_roll_link", "{t}_knee_link", "{t}_ankle_roll_link")),
                    ("{s}_upper_arm", "{t}_shoulder_roll_link", ("{t}_shoulder_roll_link", "{t}_wrist_yaw_link"),
                     "torso")),
                   _HUMANOID_SIDES),
)

_PI_SIDES = (("left", "l"), ("right", "r"))

HUMANOID_TO_PI_PLUS = Mapping(
    positions=_sided((("{s}_thigh", "{t}_hip_roll_link", 1.0), ("{s}_shin", "{t}_calf_link", 0.5),
                      ("{s}_foot", "{t}_ankle_pitch_link", 3.0), ("{s}_upper_arm", "{t}_shoulder_roll_link", 0.3),
                      ("{s}_hand", "{t}_wrist_link", 0.2)), _PI_SIDES),
    feet=(("left_foot", "l_ankle_pitch_link"), ("right_foot", "r_ankle_pitch_link")),
    legs=(("left_thigh", "left_foot", "l_hip_roll_link", "l_ankle_pitch_link"),
          ("right_thigh", "right_foot", "r_hip_roll_link", "r_ankle_pitch_link")),
    directions=_sided((("{s}_thigh", "{s}_shin", "{t}_hip_roll_link", "{t}_calf_link", 1.0),
                       ("{s}_shin", "{s}_foot", "{t}_calf_link", "{t}_ankle_pitch_link", 1.0),
                       ("{s}_upper_arm", "{s}_lower_arm", "{t}_shoulder_roll_link", "{t}_elbow_link", 1.0),
                       ("{s}_lower_arm", "{s}_hand", "{t}_elbow_link", "{t}_wrist_link", 1.0)), _PI_SIDES),
    orientations=(("pelvis", "base_link", 1.0), ("left_foot", "l_ankle_roll_link", 1.0),
                  ("right_foot", "r_ankle_roll_link", 1.0)),
    anchors=_sided((("{s}_thigh", "{t}_hip_roll_link", ("{t}_hip_roll_link", "{t}_calf_link", "{t}_ankle_pitch_link")),
                    ("{s}_upper_arm", "{t}_shoulder_roll_link", ("{t}_shoulder_roll_link", "{t}_wrist_link"), "torso")),
                   _PI_SIDES),
)

_SMPL_SIDES = (("left", "L"), ("right", "R"))

HUMANOID_TO_SMPL = Mapping(
    positions=_sided((("{s}_thigh", "{t}_Hip", 1.0), ("{s}_shin", "{t}_Knee", 0.5), ("{s}_foot", "{t}_Ankle", 3.0),
                      ("{s}_upper_arm", "{t}_Shoulder", 0.3), ("{s}_hand", "{t}_Wrist", 0.2)), _SMPL_SIDES),
    feet=(("left_foot", "L_Ankle"), ("right_foot", "R_Ankle")),
    legs=(("left_thigh", "left_foot", "L_Hip", "L_Ankle"), ("right_thigh", "right_foot", "R_Hip", "R_Ankle")),
    directions=_sided((("{s}_thigh", "{s}_shin", "{t}_Hip", "{t}_Knee", 1.0),
                       ("{s}_shin", "{s}_foot", "{t}_Knee", "{t}_Ankle", 1.0),
                       ("{s}_upper_arm", "{s}_lower_arm", "{t}_Shoulder", "{t}_Elbow", 1.0),
                       ("{s}_lower_arm", "{s}_hand", "{t}_Elbow", "{t}_Wrist", 1.0)), _SMPL_SIDES),
    orientations=(("pelvis", "Pelvis", 1.0), ("torso", "Spine", 0.5), ("torso", "Chest", 0.5), ("head", "Head", 0.3),
                  ("left_foot", "L_Ankle", 1.0), ("right_foot", "R_Ankle", 1.0), ("left_lower_arm", "L_Elbow", 0.3),
                  ("right_lower_arm", "R_Elbow", 0.3)),
    anchors=_sided((("{s}_thigh", "{t}_Hip", ("{t}_Hip", "{t}_Knee", "{t}_Ankle")),
                    ("{s}_upper_arm", "{t}_Shoulder", ("{t}_Shoulder", "{t}_Wrist"), "torso")), _SMPL_SIDES),
)

MAPPINGS = {("humanoid", "g1"): HUMANOID_TO_G1, ("humanoid", "pi_plus"): HUMANOID_TO_PI_PLUS,
            ("humanoid", "smpl"): HUMANOID_TO_SMPL}


# --------------------------------------------------------------------------------------------------
# Solver configuration


@dataclasses.dataclass(frozen=True)
class IKConfig:
    first_steps: int = 600  # Adam steps for the first frame (from the rest pose)
    steps: int = 200  # Adam steps for every later frame (warm-started from the previous one)
    pin_steps: int = 200  # Adam steps per frame in the foot-pinning pass
    lr_start: float = 0.03  # learning rate, decayed geometrically to lr_end within each frame's steps
    lr_end: float = 3e-4
    w_pos: float = 100.0  # per m^2
    w_dir: float = 1.0
    w_rot: float = 1.0
    w_limit: float = 100.0  # per rad^2 outside the range
    w_prev: float = 1e-2  # pull toward the previous frame's DoFs
    w_rest: float = 3e-3  # pull toward the rest DoFs (keeps redundant DoFs: toes, wrists, spine, near rest)
    pin_weight: float = 4.0  # foot weight multiplier during contact in the pinning pass
    w_floor: float = 1000.0  # per m^2 of foot geom below z = 0
    w_contact: float = 300.0  # per m^2 of the lowest foot point's height while the source foot is in contact
    contact_height: float = 0.02  # m (source units) above the foot's lowest height in the clip
    contact_speed: float = 0.3  # m/s (source units), horizontal


@dataclasses.dataclass(frozen=True)
class RetargetResult:
    clip: Clip
    quality: dict
    contacts: np.ndarray  # [N, F] bool, per target foot
    target_points: np.ndarray  # [N, P, 3] the scaled-source key points (final lift applied)
    scale: float


# --------------------------------------------------------------------------------------------------
# Geometry helpers


def rest_pose(layout: Layout):
    """World body positions [B, 3] and rotations [B, 4] at zero DoFs, root at the origin, unrotated."""
    pos, rot = fk(layout, np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(layout.num_dof))
    return pos[0], rot[0]


def _np_mul(a, b):
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def _np_rotate(q, v):
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def _np_exp(v):
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    scale = np.where(angle < 1e-8, 0.5, np.sin(0.5 * angle) / np.maximum(angle, 1e-12))
    return np.concatenate([np.cos(0.5 * angle), scale * v], axis=-1)


def fk(layout: Layout, root_pos, root_rot, dof_pos):
    """World body positions [N, B, 3] and rotations [N, B, 4] of N poses (numpy, float64; the same as
    amp_jax.kinematics.forward_kinematics, without JAX so nothing is compiled)."""
    root_pos = np.asarray(root_pos, np.float64).reshape(-1, 3)
    root_rot = np.asarray(root_rot, np.float64).reshape(-1, 4)
    dof = np.asarray(dof_pos, np.float64).reshape(-1, layout.num_dof)
    n = len(root_pos)
    pos, rot = [root_pos], [root_rot]
    for j in range(1, layout.num_bodies):
        s, kind = layout.dof_start[j], layout.joint_kind[j]
        if kind == BALL:
            q = _np_exp(dof[:, s:s + 3])
        elif kind == HINGE:
            half = 0.5 * dof[:, s:s + 1]
            q = np.concatenate([np.cos(half), np.sin(half) * layout.joint_axis[j].astype(np.float64)], axis=-1)
        else:
            q = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        p = int(layout.parents[j])
        local = _np_mul(np.broadcast_to(layout.body_quat[j].astype(np.float64), (n, 4)), q)
        pos.append(pos[p] + _np_rotate(rot[p], np.broadcast_to(layout.body_pos[j].astype(np.float64), (n, 3))))
        rot.append(_np_mul(rot[p], local))
    return np.stack(pos, axis=1), np.stack(rot, axis=1)


class _LevelFK:
    """Single-pose forward kinematics batched by tree depth: the same result as `fk`, in a few large ops
    instead of a few per body, which makes the IK step several times faster to compile."""

    def __init__(self, layout: Layout):
        self.layout = layout
        nb = layout.num_bodies
        depth = np.zeros(nb, int)
        for j in range(1, nb):
            depth[j] = depth[layout.parents[j]] + 1
        self.levels = [np.where(depth == d)[0] for d in range(1, depth.max() + 1)]
        order = np.concatenate([[0]] + self.levels)
        self.slot = np.empty(nb, int)
        self.slot[order] = np.arange(nb)  # body b sits at slot[b] in depth order
        idx = np.arange(nb)
        self.hinge = np.where((layout.joint_kind == HINGE) & (idx > 0))[0]
        self.ball = np.where((layout.joint_kind == BALL) & (idx > 0))[0]
        self.hinge_dof = layout.dof_start[self.hinge]
        self.ball_dof = layout.dof_start[self.ball][:, None] + np.arange(3)

    def __call__(self, root_pos, root_rot, dof):
        lay = self.layout
        q = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0, 0.0], jnp.float32), (lay.num_bodies, 4))
        if len(self.hinge):
            q = q.at[self.hinge].set(quat.from_axis_angle(jnp.asarray(lay.joint_axis[self.hinge]), dof[self.hinge_dof]))
        if len(self.ball):
            q = q.at[self.ball].set(quat.from_exp_map(dof[self.ball_dof]))
        local = quat.mul(jnp.asarray(lay.body_quat), q)
        offsets = jnp.asarray(lay.body_pos)
        pos, rot = [root_pos[None]], [root_rot[None]]
        for level in self.levels:
            all_pos, all_rot = jnp.concatenate(pos), jnp.concatenate(rot)
            parent = self.slot[lay.parents[level]]
            parent_rot = all_rot[parent]
            pos.append(all_pos[parent] + quat.rotate(parent_rot, offsets[level]))
            rot.append(quat.mul(parent_rot, local[level]))
        return jnp.concatenate(pos)[self.slot], jnp.concatenate(rot)[self.slot]


@functools.lru_cache(maxsize=32)
def _level_fk(layout: Layout) -> _LevelFK:
    return _LevelFK(layout)


@dataclasses.dataclass(frozen=True, eq=False)
class FootGeoms:
    """Collision geoms of the feet (and their descendant bodies): body index, local pose, shape."""

    body: np.ndarray  # [G] layout body index
    pos: np.ndarray  # [G, 3]
    quat: np.ndarray  # [G, 4]
    extent: np.ndarray  # [G, 3] box half-sizes, capsule (0, 0, half length), sphere 0
    radius: np.ndarray  # [G]
    foot: np.ndarray  # [G] index of the foot the geom belongs to


def foot_geoms(model: mujoco.MjModel, layout: Layout, feet) -> FootGeoms:
    """The geoms of each foot body and of the bodies below it (cached per model, layout and feet)."""
    return _foot_geoms(model, layout, tuple(feet))


@functools.lru_cache(maxsize=32)
def _foot_geoms(model: mujoco.MjModel, layout: Layout, feet: tuple[str, ...]) -> FootGeoms:
    children = {i: [] for i in range(layout.num_bodies)}
    for i, p in enumerate(layout.parents):
        if p >= 0:
            children[int(p)].append(i)
    body, pos, q, extent, radius, foot = [], [], [], [], [], []
    for f, name in enumerate(feet):
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
            foot.append(f)
    if not body:
        raise InputError(f"{layout.name}: the feet {list(feet)} have no collision geoms")
    return FootGeoms(np.array(body, np.int32), np.array(pos, np.float32), np.array(q, np.float32),
                     np.array(extent, np.float32), np.array(radius, np.float32), np.array(foot, np.int32))


def _np_matrix(q):
    """Rotation matrices [..., 3, 3] of unit quaternions (w, x, y, z), numpy."""
    w, x, y, z = np.moveaxis(np.asarray(q, np.float64), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def geom_bottoms(geoms: FootGeoms, body_pos, body_rot):
    """Lowest world z of each foot geom [..., G] (numpy)."""
    bpos = np.asarray(body_pos, np.float64)[..., geoms.body, :]
    bmat = _np_matrix(np.asarray(body_rot, np.float64)[..., geoms.body, :])
    gpos = bpos + np.einsum("...ij,...j->...i", bmat, np.broadcast_to(geoms.pos, bpos.shape))
    gmat = bmat @ _np_matrix(geoms.quat)
    reach = np.sum(np.abs(gmat[..., 2, :]) * geoms.extent, axis=-1) + geoms.radius
    return gpos[..., 2] - reach


def _jnp_geom_bottoms(geoms: FootGeoms, body_pos, body_rot):
    """geom_bottoms of one pose in JAX (differentiable)."""
    bpos, brot = body_pos[geoms.body], body_rot[geoms.body]
    gpos = bpos + quat.rotate(brot, jnp.asarray(geoms.pos))
    zrow = quat.to_matrix(quat.mul(brot, jnp.asarray(geoms.quat)))[..., 2, :]
    return gpos[..., 2] - jnp.sum(jnp.abs(zrow) * jnp.asarray(geoms.extent), axis=-1) - jnp.asarray(geoms.radius)


def foot_bottoms(geoms: FootGeoms, body_pos, body_rot, num_feet: int):
    """Lowest world z per foot [..., F]."""
    z = np.asarray(geom_bottoms(geoms, body_pos, body_rot))
    return np.stack([z[..., geoms.foot == f].min(axis=-1) for f in range(num_feet)], axis=-1)


def sole_height(layout: Layout, model: mujoco.MjModel | None, feet) -> float:
    """Mean height of the foot bodies above their lowest geom point at the zero pose (0 without a model)."""
    if model is None:
        return 0.0
    pos, rot = rest_pose(layout)
    geoms = foot_geoms(model, layout, feet)
    bottoms = foot_bottoms(geoms, pos, rot, len(feet))
    ids = [layout.body_names.index(f) for f in feet]
    return float(np.mean(pos[ids, 2] - bottoms))


def _body_index(layout: Layout, name: str, role: str) -> int:
    if name not in layout.body_names:
        raise InputError(f"{layout.name}: unknown {role} body '{name}'; bodies are {list(layout.body_names)}")
    return layout.body_names.index(name)


# --------------------------------------------------------------------------------------------------
# The IK solver


@dataclasses.dataclass(frozen=True)
class _Problem:
    """Static part of an IK problem: which target bodies the terms act on."""

    layout: Layout
    pos_body: tuple[int, ...]
    dir_a: tuple[int, ...]
    dir_b: tuple[int, ...]
    dir_w: tuple[float, ...]
    rot_body: tuple[int, ...]
    rot_w: tuple[float, ...]
    geoms: FootGeoms | None = None  # the target's foot geoms, for the floor and contact terms


def _frame_loss(prob: _Problem, cfg: IKConfig, x, ref_rot, tgt, prev_dof, rest_dof):
    layout = prob.layout
    root_rot = quat.normalize(quat.mul(ref_rot, quat.from_exp_map(x["rot"])))
    bp, br = _level_fk(layout)(x["pos"], root_rot, x["dof"])
    loss = 0.0
    if prob.pos_body:
        d = bp[np.array(prob.pos_body)] - tgt["pos"]
        loss += cfg.w_pos * jnp.sum(tgt["pos_w"] * jnp.sum(d * d, axis=-1))
    if prob.dir_a:
        v = bp[np.array(prob.dir_b)] - bp[np.array(prob.dir_a)]
        v = v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-6)
        d = v - tgt["dir"]
        loss += cfg.w_dir * jnp.sum(jnp.asarray(prob.dir_w) * jnp.sum(d * d, axis=-1))
    if prob.rot_body:
        d = quat.tan_norm(br[np.array(prob.rot_body)]) - quat.tan_norm(tgt["rot"])
        loss += cfg.w_rot * jnp.sum(jnp.asarray(prob.rot_w) * jnp.sum(d * d, axis=-1))
    if prob.geoms is not None:
        z = _jnp_geom_bottoms(prob.geoms, bp, br)
        loss += cfg.w_floor * jnp.sum(jax.nn.relu(-z) ** 2)
        lowest = jnp.stack([jnp.min(z[prob.geoms.foot == f]) for f in range(int(prob.geoms.foot.max()) + 1)])
        loss += cfg.w_contact * jnp.sum(tgt["contact"] * lowest ** 2)
    dof = x["dof"]
    excess = jax.nn.relu(dof - jnp.asarray(layout.dof_high)) + jax.nn.relu(jnp.asarray(layout.dof_low) - dof)
    loss += cfg.w_limit * jnp.sum(excess * excess)
    loss += cfg.w_prev * jnp.sum((dof - prev_dof) ** 2) + cfg.w_rest * jnp.sum((dof - rest_dof) ** 2)
    return loss


@functools.partial(jax.jit, static_argnums=(0, 1))
def _solve_frames(prob: _Problem, cfg: IKConfig, targets, init, use_init, n_steps, rest_dof):
    """Solve the frames in order. targets: per-frame dict; init: per-frame root_pos/root_rot/dof;
    use_init[t]: start from init[t] (else from the previous solution); n_steps[t]: Adam steps."""
    adam = optax.scale_by_adam()
    grad_fn = jax.grad(lambda x, *a: _frame_loss(prob, cfg, x, *a))

    def solve_one(carry, inp):
        tgt, ini, use, n = inp
        start = jax.tree.map(lambda a, b: jnp.where(use, a, b), ini, carry)
        ref_rot = start["root_rot"]
        x = {"pos": start["root_pos"], "rot": jnp.zeros(3, jnp.float32), "dof": start["dof"]}
        prev_dof = carry["dof"]
        nf = jnp.maximum(n.astype(jnp.float32), 1.0)

        def step(k, state):
            x, opt = state
            g = grad_fn(x, ref_rot, tgt, prev_dof, rest_dof)
            upd, opt = adam.update(g, opt)
            lr = cfg.lr_start * (cfg.lr_end / cfg.lr_start) ** (k.astype(jnp.float32) / nf)
            x = jax.tree.map(lambda p, u: p - lr * u, x, upd)
            return x, opt

        x, _ = jax.lax.fori_loop(0, n, step, (x, adam.init(x)))
        sol = {"root_pos": x["pos"], "root_rot": quat.normalize(quat.mul(ref_rot, quat.from_exp_map(x["rot"]))),
               "dof": x["dof"]}
        sol["root_rot"] = quat.positive_w(sol["root_rot"])
        return sol, sol

    first = jax.tree.map(lambda a: a[0], init)
    _, sols = jax.lax.scan(solve_one, first, (targets, init, use_init, n_steps))
    return sols


def _run_ik(prob, cfg, targets, init, use_init, n_steps, rest_dof):
    targets = {k: jnp.asarray(v, jnp.float32) for k, v in targets.items()}
    init = {k: jnp.asarray(v, jnp.float32) for k, v in init.items()}
    sols = _solve_frames(prob, cfg, targets, init, jnp.asarray(use_init), jnp.asarray(n_steps, jnp.int32),
                         jnp.asarray(rest_dof, jnp.float32))
    return {k: np.asarray(v, np.float64) for k, v in sols.items()}


# --------------------------------------------------------------------------------------------------
# Contacts


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


def _pin(foot_xy: np.ndarray, runs, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _slide(foot_xy: np.ndarray, runs, offset: np.ndarray) -> float:
    """Largest distance of a contact frame's foot xy from its interval mean."""
    worst = 0.0
    for run in runs:
        pts = np.array([foot_xy[i] - w * offset for i, w in run])
        worst = max(worst, float(np.max(np.linalg.norm(pts - pts.mean(axis=0), axis=-1))))
    return worst


# --------------------------------------------------------------------------------------------------
# The pipeline shared by the humanoid and quadruped paths


@dataclasses.dataclass
class _Goal:
    """Per-frame IK targets in the target's world, and how to start."""

    prob: _Problem
    pos: np.ndarray  # [N, P, 3]
    pos_w: np.ndarray  # [P]
    dirs: np.ndarray  # [N, Q, 3]
    rots: np.ndarray  # [N, O, 4]
    feet_k: list[int]  # index into the position terms of each foot
    source_feet: np.ndarray  # [N, F, 3] source foot positions (source units) for contact detection
    init_root_pos: np.ndarray  # [N, 3]
    init_root_rot: np.ndarray  # [N, 4]
    rest_dof: np.ndarray  # [D]


def _solve_goal(goal: _Goal, target: Layout, target_model, fps: float, loop: bool, cfg: IKConfig,
                scale: float, target_feet) -> RetargetResult:
    n = len(goal.pos)
    layout = target
    geoms = foot_geoms(target_model, layout, target_feet) if target_model is not None else None
    prob = dataclasses.replace(goal.prob, geoms=geoms)
    # Contacts from the source.
    nf = len(goal.feet_k)
    contacts = np.stack([contact_mask(goal.source_feet[:, f], fps, loop, cfg.contact_height, cfg.contact_speed)
                         for f in range(nf)], axis=-1)
    runs = [contact_intervals(contacts[:, f], loop) for f in range(nf)]

    pos_w = np.broadcast_to(goal.pos_w, goal.pos.shape[:2]).astype(np.float32)
    targets = {"pos": goal.pos, "pos_w": pos_w, "dir": goal.dirs, "rot": goal.rots,
               "contact": contacts.astype(np.float32)}
    init = {"root_pos": goal.init_root_pos, "root_rot": goal.init_root_rot,
            "dof": np.broadcast_to(goal.rest_dof, (n, layout.num_dof))}
    use_init = np.zeros(n, bool)
    use_init[0] = True
    steps = np.full(n, cfg.steps)
    steps[0] = cfg.first_steps
    sol = _run_ik(prob, cfg, targets, init, use_init, steps, goal.rest_dof)

    # Pin each foot's xy to its mean over each contact interval with a second pass.
    offset = (sol["root_pos"][-1, :2] - sol["root_pos"][0, :2]) if loop else np.zeros(2)
    bp, _ = fk(layout, sol["root_pos"], sol["root_rot"], sol["dof"])
    pin_pos = goal.pos.copy()
    pin_w = pos_w.copy()
    for f, k in enumerate(goal.feet_k):
        body = goal.prob.pos_body[k]
        pinned, mask = _pin(bp[:, body, :2], runs[f], offset)
        pin_pos[mask, k, :2] = pinned[mask]
        pin_w[mask, k] *= cfg.pin_weight
    if any(runs):
        targets2 = dict(targets, pos=pin_pos, pos_w=pin_w)
        sol = _run_ik(prob, cfg, targets2, sol, np.ones(n, bool), np.full(n, cfg.pin_steps), goal.rest_dof)

    # Joint ranges, then lift onto the floor.
    lo, hi = layout.dof_low.astype(np.float64), layout.dof_high.astype(np.float64)
    excess = np.maximum(sol["dof"] - hi, 0) + np.maximum(lo - sol["dof"], 0)
    dof = np.clip(sol["dof"], lo, hi)
    root_pos, root_rot = sol["root_pos"].copy(), sol["root_rot"] / np.linalg.norm(sol["root_rot"], axis=-1,
                                                                                  keepdims=True)
    bp, br = fk(layout, root_pos, root_rot, dof)
    if geoms is not None:
        bottoms = foot_bottoms(geoms, bp, br, len(target_feet))
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
    slide = max((_slide(bp[:, goal.prob.pos_body[k], :2], runs[f], offset) for f, k in enumerate(goal.feet_k)),
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


# --------------------------------------------------------------------------------------------------
# Humanoid -> humanoid


def retarget(clip: Clip, source: Layout, target: Layout, mapping: Mapping, *, source_model=None,
             target_model=None, config: IKConfig = IKConfig(), rest_dof=None) -> RetargetResult:
    """Retarget `clip` (of `source`) onto `target` with `mapping`; see the module docstring.

    source_model / target_model (the characters' MjModels) give the feet's collision geoms: the sole
    heights used to map ground contact, the floor and contact terms of the IK, and the lowest foot point
    for the final lift. Without them the foot bodies' origins stand in and those IK terms are off.
    rest_dof: the pose the redundant DoFs are pulled toward (default zeros).
    """
    goal, s, target_feet = _humanoid_goal(clip, source, target, mapping, source_model, target_model, rest_dof)
    return _solve_goal(goal, target, target_model, clip.fps, clip.loop, config, s, target_feet)


def scaled_source_points(clip: Clip, source: Layout, target: Layout, mapping: Mapping, *, source_model=None,
                         target_model=None) -> tuple[tuple[str, ...], np.ndarray, float]:
    """The IK's position targets: (target body names, points [N, P, 3], scale s) — the mapped source bodies
    scaled about the ground, with the anchor shifts (before the final lift, which `retarget` reports)."""
    goal, s, _ = _humanoid_goal(clip, source, target, mapping, source_model, target_model, None)
    return tuple(target.body_names[b] for b in goal.prob.pos_body), goal.pos, s


def _humanoid_goal(clip, source, target, mapping, source_model, target_model, rest_dof):
    clip.validate("retarget source clip", source.num_dof)
    n = clip.num_frames
    sbody = lambda name: _body_index(source, name, "source")
    tbody = lambda name: _body_index(target, name, "target")

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
            carry = _np_mul(sr[:, frame], np.broadcast_to(srot0[frame] * np.array([1, -1, -1, -1]), (n, 4)))
        else:
            carry = heading
        shift = _np_rotate(carry, np.broadcast_to(delta, (n, 3)))
        for b in bodies:
            if b not in pos_tgt_names:
                raise InputError(f"anchor body '{b}' is not a target of the mapping's position pairs")
            pos[:, pos_tgt_names.index(b)] += shift
    d = sp[:, [sbody(e[1]) for e in mapping.directions]] - sp[:, [sbody(e[0]) for e in mapping.directions]]
    dirs = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9) \
        if mapping.directions else np.zeros((n, 0, 3))
    rots = []
    for a, b, _ in mapping.orientations:
        offset = quat.mul(quat.conj(jnp.asarray(srot0[sbody(a)])), jnp.asarray(trot0[tbody(b)]))
        rots.append(np.asarray(quat.mul(jnp.asarray(sr[:, sbody(a)], jnp.float32), offset)))
    rots = np.stack(rots, axis=1) if rots else np.zeros((n, 0, 4))

    prob = _Problem(
        layout=target,
        pos_body=tuple(tbody(b) for _, b, _ in mapping.positions),
        dir_a=tuple(tbody(e[2]) for e in mapping.directions),
        dir_b=tuple(tbody(e[3]) for e in mapping.directions),
        dir_w=tuple(float(e[4]) for e in mapping.directions),
        rot_body=tuple(tbody(b) for _, b, _ in mapping.orientations),
        rot_w=tuple(float(w) for _, _, w in mapping.orientations),
    )
    pairs = [(a, b) for a, b, _ in mapping.positions]
    feet_k = []
    for pair in mapping.feet:
        if tuple(pair) not in pairs:
            raise InputError(f"foot pair {pair} is not among the mapping's position pairs")
        feet_k.append(pairs.index(tuple(pair)))

    # Initial root: the scaled source root, lifted by the difference of the pelvis-over-hips heights,
    # rotated like the source root (through the rests).
    root_off = quat.mul(quat.conj(jnp.asarray(srot0[0])), jnp.asarray(trot0[0]))
    init_rot = np.asarray(quat.mul(jnp.asarray(sr[:, 0], jnp.float32), root_off), np.float64)
    hips_s = [sbody(e[0]) for e in mapping.legs]
    hips_t = [tbody(e[2]) for e in mapping.legs]
    init_pos = scaled(sp[:, 0])
    init_pos[:, 2] += np.mean(tpos0[0, 2] - tpos0[hips_t, 2]) - s * np.mean(spos0[0, 2] - spos0[hips_s, 2])
    rest = np.zeros(target.num_dof) if rest_dof is None else np.asarray(rest_dof, np.float64)
    goal = _Goal(prob=prob, pos=pos, pos_w=pos_w, dirs=dirs, rots=rots, feet_k=feet_k,
                 source_feet=sp[:, [sbody(a) for a in source_feet]], init_root_pos=init_pos, init_root_rot=init_rot,
                 rest_dof=rest)
    return goal, s, target_feet


def retarget_clip(clip: Clip, source: Layout, target: Layout, mapping: Mapping, **kwargs) -> Clip:
    """`retarget(...)`'s clip."""
    return retarget(clip, source, target, mapping, **kwargs).clip


# --------------------------------------------------------------------------------------------------
# Laikago (motion-imitation) -> Go2

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
    goal, s, feet_t = _quadruped_goal(motion, target, target_model, rest_dof)
    return _solve_goal(goal, target, target_model, motion.fps, motion.loop, config, s, feet_t)


def quadruped_target_points(motion: LaikagoMotion, target: Layout, target_model=None):
    """The Go2 IK's position targets: (target body names: base, FL/FR/RL/RR_foot; points [N, 5, 3]; scale)
    (before the final lift, which `retarget_quadruped` reports)."""
    goal, s, _ = _quadruped_goal(motion, target, target_model, (0.0, 0.9, -1.8) * 4)
    return tuple(target.body_names[b] for b in goal.prob.pos_body), goal.pos, s


def _quadruped_goal(motion, target, target_model, rest_dof):
    n = len(motion.root_pos)
    lay, lp, _ = laikago_fk(motion)
    s = GO2_LEG_LENGTH / laikago_leg_length()
    tbody = lambda name: _body_index(target, name, "target")
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
    prob = _Problem(layout=target, pos_body=(0, *[tbody(f) for f in feet_t]), dir_a=(), dir_b=(), dir_w=(),
                    rot_body=(0,), rot_w=(1.0,))
    goal = _Goal(prob=prob, pos=pos, pos_w=np.array([1.0, 3.0, 3.0, 3.0, 3.0], np.float32), dirs=np.zeros((n, 0, 3)),
                 rots=go2_rot[:, None], feet_k=[1, 2, 3, 4], source_feet=lp[:, toes_l], init_root_pos=ref,
                 init_root_rot=go2_rot, rest_dof=np.asarray(rest_dof, np.float64))
    return goal, s, feet_t


# --------------------------------------------------------------------------------------------------
# Files


def load_target(name: str, assets: Path = ASSETS):
    """(Layout, MjModel) of one of our characters, assets/<name>/<name>.xml."""
    char = load_character(assets / name / f"{name}.xml", [], [])
    return char.layout, char.mj_model


def retarget_file(motion: str | Path, target: str, output: str | Path, *, source: str = "humanoid",
                  config: IKConfig = IKConfig(), assets: str | Path = ASSETS) -> dict:
    """Retarget a motion file onto one of our characters and write it as .npz; returns the quality dict.

    motion: an amp-jax .npz / MimicKit .pkl clip of `source` (humanoid -> g1, pi_plus or smpl), or, for
    target go2, a motion-imitation Laikago clip (.txt, e.g. dog_pace.txt).
    """
    assets = Path(assets)
    motion = Path(motion)
    tgt_layout, tgt_model = load_target(target, assets)
    if target == "go2":
        if motion.suffix != ".txt":
            raise InputError(f"{motion}: go2 retargeting reads a motion-imitation Laikago clip (.txt)")
        if not motion.is_file():
            raise InputError(f"{motion}: motion file not found")
        result = retarget_quadruped(parse_laikago_motion(motion.read_text(), str(motion)), tgt_layout, tgt_model,
                                    config=config)
    else:
        key = (source, target)
        if key not in MAPPINGS:
            raise InputError(f"no retargeting mapping from '{source}' to '{target}'; "
                             f"known: {sorted(f'{a}->{b}' for a, b in MAPPINGS)} and Laikago .txt -> go2")
        src_layout, src_model = load_target(source, assets)
        clip = load_clip(motion, src_layout.num_dof)
        result = retarget(clip, src_layout, tgt_layout, MAPPINGS[key], source_model=src_model,
                          target_model=tgt_model, config=config)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    save_clip(output, result.clip)
    return result.quality

