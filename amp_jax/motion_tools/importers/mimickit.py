"""MimicKit .pkl clips: reading is amp_jax.motion.clip.load_clip's; this writes them, for users moving clips to
MimicKit and for round-trip tests."""

from __future__ import annotations

import pickle
from pathlib import Path

from amp_jax.motion.clip import Clip, clip_to_frames


def save_mimickit(path: str | Path, clip: Clip) -> None:
    """Write a clip as a MimicKit motion: a pickled dict {loop_mode: 1 wrap / 0 clamp, fps, frames [N, 6 + D]}
    (root position, root exponential map, DoFs)."""
    with open(path, "wb") as fh:
        pickle.dump({"loop_mode": int(clip.loop), "fps": float(clip.fps), "frames": clip_to_frames(clip)}, fh)
