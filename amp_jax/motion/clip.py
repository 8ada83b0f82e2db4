"""Motion clips: amp-jax's .npz format, MimicKit's .pkl format, and their validation.

A clip is a sequence of poses at a fixed frame rate: root position (world, metres), root rotation
(quaternion w, x, y, z, world) and the character's DoF positions (exponential maps for ball joints,
angles for hinges, in depth-first body order). `loop` says whether the clip wraps (MimicKit's
loop_mode 1) or clamps at its ends (loop_mode 0).

The .npz file holds: fps (scalar), loop (bool), root_pos [N, 3], root_rot [N, 4], dof_pos [N, D],
and optionally character (str) and dof_names [D] for documentation and checks.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from amp_jax.errors import InputError


@dataclasses.dataclass(frozen=True, eq=False)
class Clip:
    fps: float
    loop: bool
    root_pos: np.ndarray  # [N, 3]
    root_rot: np.ndarray  # [N, 4] (w, x, y, z)
    dof_pos: np.ndarray  # [N, D]
    character: str = ""
    dof_names: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        return len(self.root_pos)

    @property
    def length(self) -> float:
        """Duration in seconds: (frames - 1) / fps."""
        return (self.num_frames - 1) / self.fps

    def validate(self, source: str, num_dof: int | None = None) -> "Clip":
        """Raise InputError naming `source` if the clip is malformed or does not fit num_dof."""
        n = self.num_frames
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise InputError(f"{source}: fps must be positive, got {self.fps}")
        if n < 2:
            raise InputError(f"{source}: a clip needs at least 2 frames, got {n}")
        shapes = {"root_pos": (n, 3), "root_rot": (n, 4)}
        for key, shape in shapes.items():
            if getattr(self, key).shape != shape:
                raise InputError(f"{source}: {key} has shape {getattr(self, key).shape}, expected {shape}")
        if self.dof_pos.ndim != 2 or len(self.dof_pos) != n:
            raise InputError(f"{source}: dof_pos has shape {self.dof_pos.shape}, expected ({n}, D)")
        if self.dof_names and len(self.dof_names) != self.dof_pos.shape[1]:
            raise InputError(f"{source}: {len(self.dof_names)} dof_names for {self.dof_pos.shape[1]} DoFs")
        if num_dof is not None and self.dof_pos.shape[1] != num_dof:
            raise InputError(f"{source}: frames have {self.dof_pos.shape[1]} DoFs (width {6 + self.dof_pos.shape[1]}), "
                             f"but the character has {num_dof} (width {6 + num_dof})")
        for key in ("root_pos", "root_rot", "dof_pos"):
            bad = ~np.isfinite(getattr(self, key))
            if bad.any():
                frame = int(np.argwhere(bad)[0][0])
                raise InputError(f"{source}: {key} has NaN or inf (first at frame {frame})")
        norms = np.linalg.norm(self.root_rot, axis=-1)
        if np.any(np.abs(norms - 1) > 1e-3):
            frame = int(np.argmax(np.abs(norms - 1)))
            raise InputError(f"{source}: root_rot is not a unit quaternion at frame {frame} (norm {norms[frame]:.4f})")
        return self


def save_clip(path: str | Path, clip: Clip) -> None:
    """Write a clip as amp-jax .npz."""
    np.savez(
        path,
        fps=np.float32(clip.fps),
        loop=np.bool_(clip.loop),
        root_pos=clip.root_pos.astype(np.float32),
        root_rot=clip.root_rot.astype(np.float32),
        dof_pos=clip.dof_pos.astype(np.float32),
        character=np.str_(clip.character),
        dof_names=np.array(clip.dof_names, dtype=np.str_),
    )


def frames_to_clip(frames, fps: float, loop: bool, source: str) -> Clip:
    """A clip from MimicKit frames [N, 6 + D]: root pos, root exp-map, DoFs."""
    try:
        frames = np.asarray(frames, np.float64)
    except (TypeError, ValueError) as e:  # ragged rows, strings
        raise InputError(f"{source}: frames must be a 2-D array of numbers: {e}") from None
    if frames.ndim != 2 or frames.shape[1] < 6:
        raise InputError(f"{source}: frames must be a 2-D array of width 6 + DoFs, got shape {frames.shape}")
    if not np.all(np.isfinite(frames)):
        frame = int(np.argwhere(~np.isfinite(frames))[0][0])
        raise InputError(f"{source}: frames have NaN or inf (first at frame {frame})")
    rot_xyzw = Rotation.from_rotvec(frames[:, 3:6]).as_quat()
    root_rot = np.concatenate([rot_xyzw[:, 3:], rot_xyzw[:, :3]], axis=1)
    return Clip(fps=float(fps), loop=bool(loop), root_pos=frames[:, 0:3].astype(np.float32),
                root_rot=root_rot.astype(np.float32), dof_pos=frames[:, 6:].astype(np.float32))


def clip_to_frames(clip: Clip) -> np.ndarray:
    """MimicKit frames [N, 6 + D] of a clip."""
    q = clip.root_rot.astype(np.float64)
    rotvec = Rotation.from_quat(np.concatenate([q[:, 1:], q[:, :1]], axis=1)).as_rotvec()
    return np.concatenate([clip.root_pos, rotvec, clip.dof_pos], axis=1).astype(np.float32)


def load_clip(path: str | Path, num_dof: int | None = None) -> Clip:
    """Load an amp-jax .npz or a MimicKit .pkl clip, validated (against num_dof when given)."""
    path = Path(path)
    if not path_is_file(path):
        raise InputError(f"{path}: motion file not found")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                missing = [k for k in ("fps", "loop", "root_pos", "root_rot", "dof_pos") if k not in f]
                if missing:
                    raise InputError(f"{path}: not an amp-jax clip, missing {missing}")
                clip = Clip(
                    fps=float(f["fps"]), loop=bool(f["loop"]), root_pos=f["root_pos"].astype(np.float32),
                    root_rot=f["root_rot"].astype(np.float32), dof_pos=f["dof_pos"].astype(np.float32),
                    character=str(f["character"]) if "character" in f else "",
                    dof_names=tuple(str(n) for n in f["dof_names"]) if "dof_names" in f else ())
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"{path}: cannot read the clip: {e}") from None
    elif path.suffix == ".pkl":
        data = _read_pickle(path)
        if not isinstance(data, dict) or not {"fps", "frames", "loop_mode"} <= set(data):
            raise InputError(f"{path}: a MimicKit clip is a dict with keys loop_mode, fps, frames")
        try:
            fps, loop_mode = float(data["fps"]), int(data["loop_mode"])
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{path}: fps must be a number and loop_mode 0 or 1, got {data['fps']!r} and "
                             f"{data['loop_mode']!r}") from None
        clip = frames_to_clip(data["frames"], fps, loop_mode == 1, str(path))
    else:
        raise InputError(f"{path}: unknown motion format '{path.suffix}' (expected .npz or .pkl)")
    return clip.validate(str(path), num_dof)


class _ClipUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only: a clip file never runs other code."""

    ALLOWED = frozenset({"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"})

    def find_class(self, module, name):
        if module.split(".")[0] == "numpy" and name in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refers to {module}.{name}; a MimicKit clip holds only numbers, lists "
                                     "and numpy arrays")


def _read_pickle(path: Path):
    try:
        return _ClipUnpickler(io.BytesIO(path.read_bytes())).load()
    except Exception as e:  # truncated, not a pickle, or a forbidden class
        raise InputError(f"{path}: not a readable MimicKit pickle: {type(e).__name__}: {e}") from None


def path_is_file(path: Path) -> bool:
    """Path.is_file(), False for names the OS refuses (a NUL byte, too long) instead of raising."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def load_motion_set(path: str | Path, num_dof: int | None = None) -> tuple[list[Clip], list[float], list[str]]:
    """Clips, weights and names of a single clip file or a MimicKit dataset YAML
    (`motions: [{file: ..., weight: ...}]`, file paths found as MimicKit finds them, see _dataset_clip_path)."""
    import yaml

    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        return [load_clip(path, num_dof)], [1.0], [path.stem]
    if not path_is_file(path):
        raise InputError(f"{path}: dataset file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    entries = data.get("motions") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: a dataset needs a non-empty 'motions:' list of {{file, weight}}")
    clips, weights, names = [], [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not entry["file"]:
            raise InputError(f"{path}: motions[{i}] needs a 'file' (a path)")
        weight = entry.get("weight", 1.0)
        number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
        if not number or not 0 <= weight <= np.finfo(np.float32).max:
            raise InputError(f"{path}: motions[{i}] weight must be a finite number >= 0, got {weight!r}")
        clips.append(load_clip(_dataset_clip_path(path, i, entry["file"]), num_dof))
        weights.append(float(weight))
        names.append(Path(entry["file"]).stem)
    if sum(weights) <= 0:
        raise InputError(f"{path}: the clip weights sum to zero")
    return clips, weights, names


def _dataset_clip_path(dataset: Path, index: int, file: str) -> Path:
    """Where a dataset's clip `file` is: relative to the working directory (MimicKit's rule: its datasets
    name clips as data/motions/... from MimicKit's root), else to the dataset's folder or the nearest of
    its parents that has it. InputError naming the dataset, the clip and every place looked in."""
    if Path(file).is_absolute():
        places = [Path(file)]
    else:
        folder = dataset.resolve().parent
        places = list(dict.fromkeys([Path.cwd() / file] + [d / file for d in (folder, *folder.parents)]))
    for place in places:
        if path_is_file(place):
            return place
    raise InputError(f"{dataset}: motions[{index}] file '{file}' not found; looked in "
                     + ", ".join(str(p) for p in places))
