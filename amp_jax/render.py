"""Offscreen rendering of character poses to H.264 video with MuJoCo's renderer (headless: EGL).

Poses are MuJoCo qpos sequences; the camera tracks the root like MimicKit's recorder (looking at the
root from behind-left and above).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

CAMERA_DISTANCE = 5.0
CAMERA_AZIMUTH = 45.0  # degrees; MimicKit's offset (-3.5, -3.5, 1.0) from the root
CAMERA_ELEVATION = -12.0
LOOKAT_HEIGHT = 1.0


def render_qpos(model: mujoco.MjModel, qpos: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """RGB frames [T, height, width, 3] (uint8) of the poses qpos [T, nq], with a tracking camera."""
    model.vis.headlight.ambient[:] = 0.45
    model.vis.headlight.diffuse[:] = 0.6
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    data = mujoco.MjData(model)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance, camera.azimuth, camera.elevation = CAMERA_DISTANCE, CAMERA_AZIMUTH, CAMERA_ELEVATION
    frames = np.empty((len(qpos), height, width, 3), np.uint8)
    with mujoco.Renderer(model, height, width) as renderer:
        for i, q in enumerate(qpos):
            data.qpos[:] = q
            mujoco.mj_kinematics(model, data)
            camera.lookat[:] = (q[0], q[1], LOOKAT_HEIGHT)
            renderer.update_scene(data, camera)
            frames[i] = renderer.render()
    return frames


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write frames [T, H, W, 3] as an H.264 mp4 (or a GIF if the path ends in .gif)."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        imageio.mimsave(path, list(frames), duration=1.0 / fps, loop=0)
    else:
        imageio.mimsave(path, list(frames), fps=fps, codec="libx264", macro_block_size=1)
    return path


def motion_qpos(layout, library, clip_id: int, fps: float) -> np.ndarray:
    """qpos [T, nq] of one clip of a motion library sampled at fps from start to end."""
    import jax.numpy as jnp

    from amp_jax import kinematics

    length = float(library.clip_length[clip_id])
    times = jnp.arange(int(np.floor(length * fps)) + 1, dtype=jnp.float32) / fps
    s = library.state(jnp.full(times.shape, clip_id), times)
    return np.asarray(kinematics.to_qpos(layout, s.root_pos, s.root_rot, s.joint_rot))
