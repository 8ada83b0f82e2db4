"""Videos of the policy during training (RUN_DIR/videos/), from the one deterministic rollout."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from amp_jax.eval.rollout import make_rollout
from amp_jax.render.frames import render_qpos
from amp_jax.render.video import write_video


class TrainingVideo:
    """Videos of the policy during training: a short deterministic rollout (compiled once, the same
    start every time) rendered to RUN_DIR/videos/iter_XXXXXX.mp4."""

    def __init__(self, learner, env, run_dir: str | Path, seconds: float = 4.0, width: int = 320, height: int = 240):
        self.model = env.character.mj_model
        self.fps = env.cfg.physics.control_freq
        self.folder = Path(run_dir) / "videos"
        self.size = (width, height)
        self.rollout = make_rollout(learner, env, 1, int(round(seconds * self.fps)))

    def record(self, state, iteration: int) -> np.ndarray:
        """Render the policy of a train state, write its video, return the frames [T, H, W, 3]."""
        qpos = np.asarray(self.rollout(state, jax.random.PRNGKey(0)).qpos[:, 0])
        frames = render_qpos(self.model, qpos, *self.size)
        write_video(self.folder / f"iter_{iteration:06d}.mp4", frames, self.fps)
        return frames
