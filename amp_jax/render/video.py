"""Frames to files: H.264 video, animated GIF, and a video shown inline in a notebook (no MuJoCo here)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write frames [T, H, W, 3] as an H.264 mp4 (or a GIF if the path ends in .gif)."""
    import imageio.v2 as imageio

    path = Path(path)
    if not (frames.ndim == 4 and min(frames.shape) > 0):
        raise ValueError(f"{path}: no frames to write (frames of shape {frames.shape})")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        path.write_bytes(gif_bytes(frames, fps))
    else:
        # imageio-ffmpeg starts ffmpeg with preexec_fn=os.setpgrp (so Ctrl-C stops Python, not the encoder):
        # a fork whose child only calls setpgrp and exec, which cannot deadlock on JAX's threads, but JAX
        # warns of every fork.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            imageio.mimsave(path, list(frames), fps=fps, codec="libx264", macro_block_size=1)
    return path


def gif_bytes(frames: np.ndarray, fps: float) -> bytes:
    """Frames [T, H, W, 3] as a looping animated GIF."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", frames, extension=".gif", duration=1000.0 / fps, loop=0)  # ms per frame


def show_in_notebook(path: str | Path) -> bool:
    """Show a video inline when running in a Jupyter (IPython) kernel; returns whether it did."""
    try:
        from IPython import get_ipython
        from IPython.display import Video, display
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or "IPKernelApp" not in shell.config:
        return False
    display(Video(str(path), embed=True))
    return True
