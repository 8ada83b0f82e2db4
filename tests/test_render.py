"""Offscreen rendering: frame count and size, the character actually in view, video files, errors."""

import imageio.v2 as imageio
import numpy as np

from amp_jax import render
from amp_jax.cli import main

W, H = 96, 72


def _read(path):
    with imageio.get_reader(path) as reader:
        return np.stack([f for f in reader.iter_data()])


def _standing_qpos(humanoid):
    q = humanoid.mj_model.qpos0.copy()
    q[2] = 0.9
    return q


def test_frames_have_requested_count_and_size_and_show_the_character(humanoid):
    model = humanoid.mj_model
    q = _standing_qpos(humanoid)
    qpos = np.stack([q + np.r_[dx, np.zeros(len(q) - 1)] for dx in (0.0, 0.5, 1.0)])
    frames = render.render_qpos(model, qpos, W, H)
    assert frames.shape == (3, H, W, 3) and frames.dtype == np.uint8

    hidden = model.__copy__()
    body_geoms = hidden.geom_bodyid > 0
    hidden.geom_rgba[body_geoms, 3] = 0.0  # the same scene and camera without the character
    empty = render.render_qpos(hidden, qpos, W, H)
    # The camera tracks the root, so the character stays in the middle of every frame.
    centre = (slice(H // 4, 3 * H // 4), slice(W // 3, 2 * W // 3))
    for f, e in zip(frames, empty):
        changed = np.abs(f[centre].astype(int) - e[centre].astype(int)).max(axis=-1) > 30
        assert changed.mean() > 0.05
        assert np.abs(f[:4, :4].astype(int) - e[:4, :4].astype(int)).max() <= 2  # background unchanged


def test_write_video_round_trips_frames(tmp_path, humanoid):
    frames = render.render_qpos(humanoid.mj_model, np.stack([_standing_qpos(humanoid)] * 5), W, H)
    path = render.write_video(tmp_path / "clip.mp4", frames, fps=30)
    back = _read(path)
    assert back.shape == (5, H, W, 3)
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 8.0  # lossy codec, same picture


def test_view_motion_plays_the_clip(tmp_path, capsys):
    out = tmp_path / "spinkick.mp4"
    assert main(["view-motion", "motions/humanoid/humanoid_spinkick.npz", "--out", str(out),
                 "--width", str(W), "--height", str(H)]) == 0
    # The 1.28 s clip sampled at the 30 Hz control rate: floor(1.2834 * 30) + 1 frames.
    assert len(_read(out)) == 39


def test_render_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["render", "--model_file", str(tmp_path / "nothing"), "--out", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a run directory" in err
