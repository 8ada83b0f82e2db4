"""DeepMimic humanoid3d motions (the .txt clips of xbpeng/DeepMimic, also shipped in the pybullet wheel)
and their conversion to amp-jax's humanoid (assets/humanoid/humanoid.xml).

The pybullet wheel's walker clips (pybullet_data/data/motions/walker/{0walk_forward,turn_left0,turn_left1,
turn_right0,turn_right1}.txt) are in the same format for the same skeleton (44 numbers a frame, 38 frames at
30 Hz, "Loop": "wrap"), except that their last frame also carries a duration; it is unused here too.

A DeepMimic file is JSON {"Loop": "wrap" | "none", "Frames": [[...], ...]} with 44 numbers a frame:
dt, root position (3), root quaternion (w, x, y, z), then per joint its rotation local to the parent,
a quaternion (w, x, y, z) or, for knees and elbows, an angle about the joint's z axis. The skeleton is
y-up, faces +x, has its right side at +z and its arms hanging down.

Our humanoid is z-up, faces +x and is T-posed with the same bone offsets. The conversion turns y-up into
z-up with C (+90 degrees about x: (x, y, z) -> (x, -z, y)) and gives every body the world rotation
C G C^-1 A, where G is the DeepMimic body's world rotation and A turns our body's rest frame onto
DeepMimic's (a quarter turn about x for the arm bodies, which rest sideways instead of down; identity
elsewhere). A joint's local rotation is then A_parent^-1 (C q C^-1) A; ball joints keep its exponential
map, hinges its angle about their axis.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from amp_jax.characters.character import Layout
from amp_jax.characters.kinematics import joint_rot_to_dof
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip

FRAME_WIDTH = 44
_C = Rotation.from_rotvec([np.pi / 2, 0.0, 0.0])  # y-up -> z-up
_QUARTER = np.pi / 2

# Per body, in our humanoid's depth-first order: our body name, parent index, offset from the parent
# (DeepMimic frame, metres), first frame column of its joint, number of columns (4: quaternion, 1: angle
# about z, 0: fixed), and our rest frame relative to DeepMimic's as an angle about x.
_SKELETON = (
    ("pelvis", -1, (0.0, 0.0, 0.0), 4, 4, 0.0),
    ("torso", 0, (0.0, 0.236151, 0.0), 8, 4, 0.0),
    ("head", 1, (0.0, 0.223894, 0.0), 12, 4, 0.0),
    ("right_upper_arm", 1, (-0.02405, 0.24350, 0.18311), 25, 4, _QUARTER),
    ("right_lower_arm", 3, (0.0, -0.274788, 0.0), 29, 1, _QUARTER),
    ("right_hand", 4, (0.0, -0.258947, 0.0), 0, 0, _QUARTER),
    ("left_upper_arm", 1, (-0.02405, 0.24350, -0.18311), 39, 4, -_QUARTER),
    ("left_lower_arm", 6, (0.0, -0.274788, 0.0), 43, 1, -_QUARTER),
    ("left_hand", 7, (0.0, -0.258947, 0.0), 0, 0, -_QUARTER),
    ("right_thigh", 0, (0.0, 0.0, 0.084887), 16, 4, 0.0),
    ("right_shin", 9, (0.0, -0.421546, 0.0), 20, 1, 0.0),
    ("right_foot", 10, (0.0, -0.409870, 0.0), 21, 4, 0.0),
    ("left_thigh", 0, (0.0, 0.0, -0.084887), 30, 4, 0.0),
    ("left_shin", 12, (0.0, -0.421546, 0.0), 34, 1, 0.0),
    ("left_foot", 13, (0.0, -0.409870, 0.0), 35, 4, 0.0),
)
BODY_NAMES = tuple(b[0] for b in _SKELETON)


@dataclasses.dataclass(frozen=True, eq=False)
class DeepMimicMotion:
    """A parsed DeepMimic humanoid3d clip; `frames` [N, 44] has its quaternions normalised."""

    source: str
    loop: bool
    dt: float
    frames: np.ndarray


def read_deepmimic(path: str | Path) -> DeepMimicMotion:
    """Read and check a DeepMimic humanoid3d .txt file. Raises InputError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: cannot read the motion file: {e}") from None
    return parse_deepmimic(text, str(path))


def parse_deepmimic(text: str, source: str) -> DeepMimicMotion:
    """Parse and check the text of a DeepMimic humanoid3d clip; `source` names it in errors."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{source}: not a DeepMimic motion, invalid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("Frames"), list):
        raise InputError(f"{source}: a DeepMimic motion is a JSON object with a 'Frames' list")
    loop = data.get("Loop", "none")
    if loop not in ("wrap", "none"):
        raise InputError(f"{source}: Loop must be 'wrap' or 'none', got {loop!r}")
    rows = data["Frames"]
    if len(rows) < 2:
        raise InputError(f"{source}: a clip needs at least 2 frames, got {len(rows)}")
    for i, row in enumerate(rows):
        width = len(row) if isinstance(row, list) else None
        if width != FRAME_WIDTH:
            raise InputError(f"{source}: frame {i} has {width} numbers, a DeepMimic humanoid3d frame has {FRAME_WIDTH}")
    try:
        frames = np.array(rows, np.float64)
    except (TypeError, ValueError):
        frames = None
    if frames is None or frames.ndim != 2:
        raise InputError(f"{source}: frames must hold numbers only")
    if not np.all(np.isfinite(frames)):
        i = int(np.argwhere(~np.isfinite(frames))[0][0])
        raise InputError(f"{source}: frame {i} has NaN or inf")
    dt = frames[:-1, 0]  # the last frame's duration is unused (DeepMimic writes 0)
    if np.any(dt <= 0):
        i = int(np.argmax(dt <= 0))
        raise InputError(f"{source}: frame {i} has duration {dt[i]}; durations must be positive")
    if np.ptp(dt) > 1e-5:
        raise InputError(f"{source}: frame durations vary from {dt.min()} to {dt.max()}; a clip needs a fixed rate")
    for c in (b[3] for b in _SKELETON if b[4] == 4):
        norms = np.linalg.norm(frames[:, c:c + 4], axis=1)
        if np.any(np.abs(norms - 1) > 1e-2):
            i = int(np.argmax(np.abs(norms - 1)))
            raise InputError(f"{source}: frame {i}: the quaternion in columns {c}-{c + 3} has norm "
                             f"{norms[i]:.4f}, not 1")
        frames[:, c:c + 4] /= norms[:, None]
    return DeepMimicMotion(source=source, loop=loop == "wrap", dt=float(dt[0]), frames=frames)


def _local_rotations(frames: np.ndarray) -> list[Rotation]:
    """Per body, its joint rotation over the frames (the root's is its world rotation), y-up."""
    rots = []
    for _, _, _, col, width, _ in _SKELETON:
        if width == 4:
            rots.append(Rotation.from_quat(frames[:, [col + 1, col + 2, col + 3, col]]))
        elif width == 1:
            rots.append(Rotation.from_rotvec(frames[:, col, None] * np.array([0.0, 0.0, 1.0])))
        else:
            rots.append(Rotation.identity(len(frames)))
    return rots


def _wxyz(r: Rotation) -> np.ndarray:
    xyzw = r.as_quat()
    return np.concatenate([xyzw[..., 3:], xyzw[..., :3]], axis=-1)


def deepmimic_body_positions(motion: DeepMimicMotion) -> np.ndarray:
    """World positions [N, 15, 3] of the source skeleton's joints, turned z-up, in our body order."""
    rots = _local_rotations(motion.frames)
    pos, world = [], []
    for i, (_, parent, offset, _, _, _) in enumerate(_SKELETON):
        if parent < 0:
            pos.append(motion.frames[:, 1:4])
            world.append(rots[i])
        else:
            pos.append(pos[parent] + world[parent].apply(offset))
            world.append(world[parent] * rots[i])
    pos = np.stack(pos, axis=1)
    return _C.apply(pos.reshape(-1, 3)).reshape(pos.shape)


def deepmimic_to_humanoid(motion: DeepMimicMotion, layout: Layout) -> Clip:
    """Convert a DeepMimic humanoid3d clip to a clip of amp-jax's humanoid (the layout gives the DoFs)."""
    if tuple(layout.body_names) != BODY_NAMES:
        raise InputError(f"{motion.source}: DeepMimic humanoid3d clips convert to amp-jax's humanoid only; "
                         f"character '{layout.name}' has bodies {list(layout.body_names)}")
    rots = _local_rotations(motion.frames)
    rest = [Rotation.from_rotvec([b[5], 0.0, 0.0]) for b in _SKELETON]
    joint_rot = np.zeros((len(motion.frames), len(_SKELETON), 4))
    joint_rot[:, 0, 0] = 1.0
    for i, (_, parent, _, _, _, _) in enumerate(_SKELETON[1:], start=1):
        joint_rot[:, i] = _wxyz(rest[parent].inv() * _C * rots[i] * _C.inv() * rest[i])
    root_rot = _wxyz(_C * rots[0] * _C.inv())
    root_rot = np.where(root_rot[:, :1] < 0, -root_rot, root_rot)
    dof_pos = np.asarray(joint_rot_to_dof(layout, jnp.asarray(joint_rot, jnp.float32)))
    clip = Clip(fps=1.0 / motion.dt, loop=motion.loop, root_pos=_C.apply(motion.frames[:, 1:4]).astype(np.float32),
                root_rot=root_rot.astype(np.float32), dof_pos=dof_pos.astype(np.float32), character="humanoid",
                dof_names=tuple(layout.dof_names))
    return clip.validate(motion.source, layout.num_dof)


def humanoid_to_deepmimic(clip: Clip, layout: Layout) -> DeepMimicMotion:
    """The inverse of `deepmimic_to_humanoid`: a DeepMimic humanoid3d motion of a humanoid clip (each
    DeepMimic joint rotation is C^-1 A_parent r A^-1 C of our joint rotation r; knees and elbows keep the
    angle of that rotation about z)."""
    from amp_jax.motion_tools.host_kinematics import quat_exp

    if tuple(layout.body_names) != BODY_NAMES:
        raise InputError(f"clip: only amp-jax's humanoid converts to DeepMimic humanoid3d; character "
                         f"'{layout.name}' has bodies {list(layout.body_names)}")
    clip.validate("clip", layout.num_dof)
    n = clip.num_frames
    dof = clip.dof_pos.astype(np.float64)
    frames = np.zeros((n, FRAME_WIDTH))
    frames[:, 0] = 1.0 / clip.fps
    frames[:, 1:4] = _C.inv().apply(clip.root_pos.astype(np.float64))
    root = _C.inv() * Rotation.from_quat(_xyzw(clip.root_rot.astype(np.float64))) * _C
    frames[:, 4:8] = _wxyz(root)
    rest = [Rotation.from_rotvec([b[5], 0.0, 0.0]) for b in _SKELETON]
    for i, (_, parent, _, col, width, _) in enumerate(_SKELETON[1:], start=1):
        s = layout.dof_start[i]
        if width == 4:
            joint = Rotation.from_quat(_xyzw(quat_exp(dof[:, s:s + 3])))
        elif width == 1:
            joint = Rotation.from_rotvec(dof[:, s:s + 1] * layout.joint_axis[i].astype(np.float64))
        else:
            continue
        local = _C.inv() * rest[parent] * joint * rest[i].inv() * _C
        if width == 4:
            frames[:, col:col + 4] = _wxyz(local)
        else:
            frames[:, col] = local.as_rotvec()[:, 2]
    return DeepMimicMotion(source="clip", loop=clip.loop, dt=1.0 / clip.fps, frames=frames)


def deepmimic_text(motion: DeepMimicMotion) -> str:
    """The JSON text of a DeepMimic motion file."""
    return json.dumps({"Loop": "wrap" if motion.loop else "none", "Frames": motion.frames.tolist()})


def _xyzw(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)
