"""AMASS-style SMPL motions (.npz with poses, trans, mocap_framerate) and their conversion to amp-jax's
SMPL character (assets/smpl/smpl.xml), both ways.

An AMASS file holds `poses` [N, 72 | 156 | 165]: axis-angle rotations, 3 numbers per joint in SMPL's joint
order (Pelvis, L_Hip, R_Hip, Spine1, L_Knee, ...; `SMPL_JOINTS`). 72 is SMPL's 24 joints; SMPL-H (156)
and SMPL-X (165) files begin with the same 22 body joints and then hold hand (and face) joints instead of
SMPL's L_Hand / R_Hand, which are then left at zero. `trans` [N, 3] is the root translation (metres) and
`mocap_framerate` (SMPL-X files: `mocap_frame_rate`; MimicKit's tool also reads `fps`) the frame rate.

Axes. The SMPL body is modelled y-up, facing +z, with its left side at +x; every joint's rest frame is that
canonical frame. AMASS's root rotation (poses[:, 0:3]) takes the canonical frame into the capture's world,
which is z-up. Our SMPL character is modelled z-up, facing +x, left at +y, with the same joint tree and
unrotated body frames. With B the rotation taking our body axes to SMPL's (x -> z, y -> x, z -> y, i.e.
B = [[0, 1, 0], [0, 0, 1], [1, 0, 0]]; MimicKit's smpl_to_mimickit right-multiplies by the same rotation,
the conjugate of (x, y, z, w) = (0.5, 0.5, 0.5, 0.5)):

* root rotation = R_root B (our body frame -> SMPL canonical -> world), the world kept z-up as captured;
* a joint's DoFs (the exponential map of its local rotation in our frames, B^T R_j B) = B^T a_j for its
  SMPL axis-angle a_j: a permutation of the three numbers, (a_z, a_x, a_y);
* root position = trans, as MimicKit's converter does. (SMPL puts the pelvis at trans + J_0(betas),
  where J_0 is the body's rest pelvis position; it shifts the whole clip by a constant of a few
  centimetres, which the floor option below takes care of vertically.)

The subject's body shape (betas) is not used: the motion drives our fixed neutral body. `floor` then
shifts the root height: 'none' keeps trans; 'calibrate' puts the lowest collision-geom point over the
first 30 frames on the floor (z = 0), 'full' that of the whole clip (MimicKit's z_correction options, with
our geoms instead of its lowest joint at 2.5 cm).

`clip_to_amass` / `save_amass` write an SMPL clip back as a 72-wide AMASS file (betas zero, gender
neutral), so that export then import gives the same frames.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from amp_jax.characters.character import BALL, Layout
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip, path_is_file

SMPL_JOINTS = ("Pelvis", "L_Hip", "R_Hip", "Torso", "L_Knee", "R_Knee", "Spine", "L_Ankle", "R_Ankle", "Chest",
               "L_Toe", "R_Toe", "Neck", "L_Thorax", "R_Thorax", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow",
               "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand")  # SMPL's order, our body names
POSE_WIDTHS = {72: 24, 156: 22, 165: 22}  # poses width -> leading SMPL joints it holds (SMPL, SMPL-H, SMPL-X)
FPS_KEYS = ("mocap_framerate", "mocap_frame_rate", "fps")
FLOOR_MODES = ("none", "calibrate", "full")
CALIBRATION_FRAMES = 30
# Columns: our body axes in SMPL's canonical frame (our x = SMPL z, our y = SMPL x, our z = SMPL y).
B = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
_B = Rotation.from_matrix(B)


@dataclasses.dataclass(frozen=True, eq=False)
class AmassMotion:
    """A checked AMASS motion: axis-angle per SMPL joint [N, 24, 3] (absent joints zero) and trans [N, 3]."""

    source: str
    fps: float
    poses: np.ndarray
    trans: np.ndarray


def read_amass(path: str | Path) -> AmassMotion:
    """Read and check an AMASS-style .npz. Raises InputError naming the file and the problem."""
    path = Path(path)
    if not path_is_file(path):
        raise InputError(f"{path}: AMASS file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise InputError(f"{path}: not a readable AMASS .npz: {type(e).__name__}: {e}") from None
    return parse_amass(arrays, str(path))


def parse_amass(arrays: dict, source: str) -> AmassMotion:
    """Check the arrays of an AMASS file; `source` names it in errors."""
    missing = [k for k in ("poses", "trans") if k not in arrays]
    fps_key = next((k for k in FPS_KEYS if k in arrays), None)
    if missing or fps_key is None:
        raise InputError(f"{source}: an AMASS motion needs 'poses', 'trans' and one of {list(FPS_KEYS)}; "
                         f"missing {missing + ([] if fps_key else ['mocap_framerate'])}")
    poses, trans = _numeric(arrays["poses"], "poses", source), _numeric(arrays["trans"], "trans", source)
    fps = _numeric(arrays[fps_key], fps_key, source)
    if fps.size != 1 or not np.isfinite(fps).all() or float(fps.reshape(())) <= 0:
        raise InputError(f"{source}: {fps_key} must be one positive number, got {fps.tolist()}")
    if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTHS:
        raise InputError(f"{source}: poses has shape {poses.shape}; AMASS poses are [frames, 72] (SMPL, 24 joints "
                         "x 3 axis-angle numbers), [frames, 156] (SMPL-H) or [frames, 165] (SMPL-X)")
    n = len(poses)
    if n < 2:
        raise InputError(f"{source}: a clip needs at least 2 frames, got {n}")
    if trans.shape != (n, 3):
        raise InputError(f"{source}: trans has shape {trans.shape}, expected ({n}, 3) to match poses")
    for key, value in (("poses", poses), ("trans", trans)):
        bad = ~np.isfinite(value)
        if bad.any():
            raise InputError(f"{source}: {key} has NaN or inf (first at frame {int(np.argwhere(bad)[0][0])})")
    joints = POSE_WIDTHS[poses.shape[1]]
    full = np.zeros((n, len(SMPL_JOINTS), 3))
    full[:, :joints] = poses[:, :3 * joints].reshape(n, joints, 3)
    return AmassMotion(source=source, fps=float(fps.reshape(())), poses=full, trans=trans)


def _numeric(value, key: str, source: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise InputError(f"{source}: {key} must hold numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def check_smpl_layout(layout: Layout, source: str) -> None:
    """Raise InputError unless `layout` is an SMPL skeleton: the 24 SMPL bodies, a ball joint on each but
    the root (69 DoFs), unrotated body frames."""
    if sorted(layout.body_names) != sorted(SMPL_JOINTS):
        raise InputError(f"{source}: AMASS motions convert to the SMPL character (24 bodies, 69 DoFs) only; "
                         f"character '{layout.name}' has {layout.num_bodies} bodies and {layout.num_dof} DoFs "
                         f"(width {layout.frame_width}, an SMPL clip's is 75)")
    if any(layout.joint_kind[1:] != BALL) or not np.allclose(layout.body_quat, [1.0, 0.0, 0.0, 0.0]):
        raise InputError(f"{source}: character '{layout.name}' has SMPL's bodies but not a ball joint on each "
                         "with unrotated body frames")


def amass_to_clip(motion: AmassMotion, layout: Layout, model: mujoco.MjModel | None = None, *,
                  floor: str = "none", loop: bool = False) -> Clip:
    """Convert to a clip of the SMPL character `layout` (see the module docstring); `model` (its MjModel)
    is needed for floor 'calibrate' or 'full'."""
    check_smpl_layout(layout, motion.source)
    if floor not in FLOOR_MODES:
        raise InputError(f"{motion.source}: floor must be one of {list(FLOOR_MODES)}, got {floor!r}")
    n = len(motion.poses)
    root_rot = (Rotation.from_rotvec(motion.poses[:, 0]) * _B).as_quat()  # x, y, z, w
    root_rot = np.concatenate([root_rot[:, 3:], root_rot[:, :3]], axis=1)
    root_rot = np.where(root_rot[:, :1] < 0, -root_rot, root_rot)
    dof = np.zeros((n, layout.num_dof))
    for b, name in enumerate(layout.body_names[1:], start=1):
        s = layout.dof_start[b]
        dof[:, s:s + 3] = motion.poses[:, SMPL_JOINTS.index(name)] @ B  # B^T a, row-wise
    root_pos = motion.trans.copy()
    clip = Clip(fps=motion.fps, loop=loop, root_pos=root_pos.astype(np.float32), root_rot=root_rot.astype(np.float32),
                dof_pos=dof.astype(np.float32), character=layout.name, dof_names=tuple(layout.dof_names))
    clip.validate(motion.source, layout.num_dof)
    if floor == "none":
        return clip
    if model is None:
        raise InputError(f"{motion.source}: floor '{floor}' needs the character's MjModel")
    return _on_floor(clip, layout, model, CALIBRATION_FRAMES if floor == "calibrate" else n)


def _on_floor(clip: Clip, layout: Layout, model: mujoco.MjModel, frames: int) -> Clip:
    """The clip raised or lowered so that its lowest geom point over the first `frames` frames is at z = 0."""
    from amp_jax.motion_tools import host_kinematics as hk

    bp, br = hk.fk(layout, clip.root_pos[:frames], clip.root_rot[:frames], clip.dof_pos[:frames])
    lowest = hk.geom_bottoms(hk.subtree_geoms(model, layout, [layout.body_names[0]]), bp, br).min()
    root_pos = clip.root_pos.astype(np.float64)
    root_pos[:, 2] -= lowest
    return dataclasses.replace(clip, root_pos=root_pos.astype(np.float32))


def clip_to_amass(clip: Clip, layout: Layout) -> dict:
    """The arrays of an AMASS file (poses [N, 72], trans, mocap_framerate, betas, gender) of an SMPL clip."""
    check_smpl_layout(layout, "clip")
    clip.validate("clip", layout.num_dof)
    n = clip.num_frames
    q = clip.root_rot.astype(np.float64)
    poses = np.zeros((n, len(SMPL_JOINTS), 3))
    poses[:, 0] = (Rotation.from_quat(np.concatenate([q[:, 1:], q[:, :1]], axis=1)) * _B.inv()).as_rotvec()
    for b, name in enumerate(layout.body_names[1:], start=1):
        s = layout.dof_start[b]
        poses[:, SMPL_JOINTS.index(name)] = clip.dof_pos[:, s:s + 3].astype(np.float64) @ B.T  # B d, row-wise
    return {"poses": poses.reshape(n, -1), "trans": clip.root_pos.astype(np.float64),
            "mocap_framerate": np.float64(clip.fps), "betas": np.zeros(10), "gender": np.str_("neutral")}


def save_amass(path: str | Path, clip: Clip, layout: Layout) -> None:
    """Write an SMPL clip as an AMASS-style .npz."""
    np.savez(path, **clip_to_amass(clip, layout))
