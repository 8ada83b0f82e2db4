"""Poses to frames with MuJoCo's offscreen renderer (headless: EGL), and MuJoCo's interactive viewer.

Poses are MuJoCo qpos sequences; the camera tracks the root like MimicKit's recorder (looking at the
root from behind-left and above). The reference motion can be drawn as a translucent ghost beside
the character, several environments side by side, and a caption in the corner. A policy's poses come
from the one deterministic rollout (amp_jax.eval.rollout); a clip's from motion_qpos.
"""

from __future__ import annotations

import os
import time

import jax.numpy as jnp
import mujoco
import numpy as np

from amp_jax.characters import kinematics

CAMERA_DISTANCE = 5.0
CAMERA_AZIMUTH = 45.0  # degrees; MimicKit's offset (-3.5, -3.5, 1.0) from the root
CAMERA_ELEVATION = -12.0
LOOKAT_HEIGHT = 1.0
REF_CHAR_OFFSET = np.array([2.0, 0.0, 0.0])  # MimicKit's ref_char_offset: the ghost stands 2 m along x
GHOST_ALPHA = 0.3
GHOST_RGB = (0.35, 0.6, 1.0)  # the reference ghost is blue, whatever the character's colours
STANDING_ROOT_HEIGHT = 0.9  # the humanoid's, which the camera distance and look-at height are made for


def render_qpos(model: mujoco.MjModel, qpos: np.ndarray, width: int = 640, height: int = 480,
                ghost_qpos: np.ndarray | None = None, camera_scale: float = 1.0) -> np.ndarray:
    """RGB frames [T, height, width, 3] (uint8) of the poses qpos [T, nq], with a tracking camera.

    ghost_qpos [T, nq], if given, is drawn translucent at REF_CHAR_OFFSET (the reference motion).
    camera_scale multiplies the camera distance and look-at height (e.g. 0.4 frames the small Go2).
    """
    model.vis.headlight.ambient[:] = 0.45
    model.vis.headlight.diffuse[:] = 0.6
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    data, ghost = mujoco.MjData(model), mujoco.MjData(model)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance, camera.azimuth, camera.elevation = CAMERA_DISTANCE * camera_scale, CAMERA_AZIMUTH, CAMERA_ELEVATION
    frames = np.empty((len(qpos), height, width, 3), np.uint8)
    with mujoco.Renderer(model, height, width) as renderer:
        for i, q in enumerate(qpos):
            data.qpos[:] = q
            mujoco.mj_kinematics(model, data)
            camera.lookat[:] = (q[0], q[1], LOOKAT_HEIGHT * camera_scale)
            renderer.update_scene(data, camera)
            if ghost_qpos is not None:
                ghost.qpos[:] = ghost_qpos[i]
                ghost.qpos[:3] += REF_CHAR_OFFSET
                _add_ghost(model, ghost, renderer.scene)
            frames[i] = renderer.render()
    return frames


def _add_ghost(model: mujoco.MjModel, ghost: mujoco.MjData, scene: mujoco.MjvScene) -> None:
    """Add the character's geoms in pose `ghost` to the scene, translucent (the floor is not added)."""
    mujoco.mj_kinematics(model, ghost)
    first = scene.ngeom
    mujoco.mjv_addGeoms(model, ghost, mujoco.MjvOption(), mujoco.MjvPerturb(), mujoco.mjtCatBit.mjCAT_DYNAMIC, scene)
    for g in range(first, scene.ngeom):
        scene.geoms[g].rgba[:] = (*GHOST_RGB, GHOST_ALPHA)


def camera_scale_for(qpos: np.ndarray) -> float:
    """The camera_scale that frames a character of the size of poses qpos [..., nq] (its mean root height
    against the humanoid's; at most 1): about 0.4 for Go2 and Pi Plus."""
    return round(min(1.0, float(np.mean(np.asarray(qpos)[..., 2])) / STANDING_ROOT_HEIGHT), 2)


def render_envs(model: mujoco.MjModel, qpos: np.ndarray, width: int = 640, height: int = 480,
                ghost_qpos: np.ndarray | None = None, camera_scale: float = 1.0) -> np.ndarray:
    """Frames [T, height, E * width, 3] of E environments' poses qpos [T, E, nq], tiled left to right,
    each with its own tracking camera (and ghost, if ghost_qpos [T, E, nq] is given)."""
    tiles = [render_qpos(model, qpos[:, e], width, height, None if ghost_qpos is None else ghost_qpos[:, e],
                         camera_scale) for e in range(qpos.shape[1])]
    return np.concatenate(tiles, axis=2)


def caption(frames: np.ndarray, text: str) -> np.ndarray:
    """Frames [T, H, W, 3] with text written in white in the top-left corner."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = frames.shape[1:3]
    mask = Image.new("L", (width, height), 0)
    font = ImageFont.load_default(size=max(10, height // 20))
    ImageDraw.Draw(mask).text((height // 40 + 2, height // 40 + 2), text, fill=255, font=font,
                              stroke_width=1, stroke_fill=128)
    alpha = np.asarray(mask, np.float32)[None, :, :, None] / 255.0
    return (frames * (1.0 - alpha) + 255.0 * alpha).astype(np.uint8)


def motion_qpos(layout, library, clip_id: int, fps: float) -> np.ndarray:
    """qpos [T, nq] of one clip of a motion library sampled at fps from start to end."""
    length = float(library.clip_length[clip_id])
    times = jnp.arange(int(np.floor(length * fps)) + 1, dtype=jnp.float32) / fps
    s = library.state(jnp.full(times.shape, clip_id), times)
    return np.asarray(kinematics.to_qpos(layout, s.root_pos, s.root_rot, s.joint_rot))


def view(model: mujoco.MjModel, qpos: np.ndarray, fps: float) -> bool:
    """Play poses qpos [T, nq] in a loop in MuJoCo's interactive viewer until its window is closed.

    Returns False, having shown nothing, when there is no display or the viewer cannot start.
    """
    if not os.environ.get("DISPLAY"):
        return False
    data = mujoco.MjData(model)
    try:
        from mujoco import viewer as mujoco_viewer

        viewer = mujoco_viewer.launch_passive(model, data)
    except Exception:  # no usable display (GLFW cannot open a window)
        return False
    with viewer:
        viewer.cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        viewer.cam.trackbodyid = 1
        i = 0
        while viewer.is_running():
            with viewer.lock():
                data.qpos[:] = qpos[i % len(qpos)]
                mujoco.mj_kinematics(model, data)
            viewer.sync()
            time.sleep(1.0 / fps)
            i += 1
    return True
