"""Rendering: frames and videos, the tracking camera, the reference ghost, tiled environments, clip
captions, policy rollouts for video, the training-video hook, `test --visualize`, and CLI errors.

One tiny run (a saved initial TrainState) and one compiled policy rollout are shared by the whole
module; CLI tests hand that rollout to the command instead of compiling another.
"""

import types

import imageio.v2 as imageio
import jax
import mujoco
import numpy as np
import pytest
import yaml

from amp_jax.catalog import CONFIG_DIR
from amp_jax.cli import main
from amp_jax.config import load_config
from amp_jax.envs.amp_env import NULL
from amp_jax.eval import evaluate
from amp_jax.eval import rollout as rollouts
from amp_jax.learning.train_step import init_train_state
from amp_jax.motion.clip import Clip, save_clip
from amp_jax.motion.library import build_motion_library
from amp_jax.render import frames as render
from amp_jax.render import video
from amp_jax.training import checkpoint, trainer
from amp_jax.training import video as training_video
from amp_jax.training.build import build
from amp_jax.training.metrics_logger import MetricsLogger

W, H = 96, 72
TINY = {
    "train.num_envs": 4,
    "train.test_episodes": 0,
    "agent.steps_per_iter": 4,
    "agent.hidden_sizes": [32, 16],
    "agent.disc_buffer_size": 64,
    "agent.disc_replay_samples": 8,
    "env.episode_length": 0.5,  # 15 control steps: every rollout below ends episodes
}
ROLLOUT_ENVS, ROLLOUT_EPISODES = 2, 2


def _read(path):
    with imageio.get_reader(path) as reader:
        return np.stack([f for f in reader.iter_data()])


def _standing_qpos(humanoid):
    q = humanoid.mj_model.qpos0.copy()
    q[2] = 0.9
    return q


@pytest.fixture(scope="module")
def tiny():
    """A tiny humanoid run: cfg, env, learner, its initial TrainState, and a compiled deterministic
    rollout of ROLLOUT_ENVS environments for ROLLOUT_EPISODES episodes, with its output for key 0."""
    cfg = load_config(CONFIG_DIR / "amp_humanoid.yaml", TINY)
    env, learner = build(cfg)
    state = _committed(init_train_state(learner, env, cfg.train.seed))
    rollout = rollouts.make_rollout(learner, env, ROLLOUT_ENVS, ROLLOUT_EPISODES * env.episode_steps)
    record = rollout(state, jax.random.PRNGKey(0))
    out = (record.qpos, record.reference, record.done)
    return types.SimpleNamespace(cfg=cfg, env=env, learner=learner, state=state, rollout=rollout, out=out)


def _committed(tree):
    """Arrays committed to the device, as a restored checkpoint's are (jit compiles once per kind)."""
    return jax.device_put(tree, jax.devices()[0])


def _run_dir(tiny, path, corrupt=()):
    """A run directory with checkpoints 1 and 2 of the initial state; the steps in `corrupt` torn."""
    checkpoint.save_config(path, tiny.cfg)
    mgr = checkpoint.manager(path)
    for step in (1, 2):
        checkpoint.save(mgr, step, tiny.state)
    for step in corrupt:
        for f in (path / "checkpoints" / str(step) / "default").rglob("*"):
            if f.is_file():
                f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return path


def _use_compiled_rollout(monkeypatch, tiny, expect):
    """Make make_rollout (amp_jax.eval.rollout) return the compiled one; records the (envs, steps) asked for."""
    asked = []

    def make(learner, env, num_envs, num_steps):
        asked.append((num_envs, num_steps))
        assert (num_envs, num_steps) == expect
        return tiny.rollout

    monkeypatch.setattr(rollouts, "make_rollout", make)
    monkeypatch.setattr(training_video, "make_rollout", make)
    return asked


# -- frames, videos, camera ------------------------------------------------------------------------
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
    path = video.write_video(tmp_path / "clip.mp4", frames, fps=30)
    back = _read(path)
    assert back.shape == (5, H, W, 3)
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 8.0  # lossy codec, same picture


def test_gif_keeps_the_frame_rate(tmp_path, humanoid):
    from PIL import Image

    q = _standing_qpos(humanoid)
    qpos = np.stack([q + np.r_[0.0, 0.0, dz, np.zeros(len(q) - 3)] for dz in (0.0, 0.3, 0.6)])  # distinct frames
    frames = render.render_qpos(humanoid.mj_model, qpos, W, H)
    with Image.open(video.write_video(tmp_path / "clip.gif", frames, fps=25)) as gif:
        gif.seek(1)
        assert gif.n_frames == 3 and gif.info["duration"] == 40  # milliseconds per frame


def _project(model, lookat, point, width, height):
    """Pixel (column, row) of a world point in render_qpos's free camera looking at `lookat`."""
    az, el = np.radians(render.CAMERA_AZIMUTH), np.radians(render.CAMERA_ELEVATION)
    forward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    up = np.array([-np.sin(el) * np.cos(az), -np.sin(el) * np.sin(az), np.cos(el)])
    right = np.cross(forward, up)
    d = np.asarray(point) - (np.asarray(lookat) - render.CAMERA_DISTANCE * forward)
    focal = 0.5 * height / np.tan(np.radians(model.vis.global_.fovy) / 2)
    return width / 2 + focal * d @ right / (d @ forward), height / 2 - focal * d @ up / (d @ forward)


def test_reference_ghost_is_drawn_two_metres_along_x(humanoid):
    model, q = humanoid.mj_model, _standing_qpos(humanoid)
    width, height = 160, 120
    plain = render.render_qpos(model, q[None], width, height)[0].astype(int)
    ghost = render.render_qpos(model, q[None], width, height, ghost_qpos=q[None])[0].astype(int)
    rows, cols = np.nonzero(np.abs(ghost - plain).max(axis=-1) > 10)
    assert len(rows) > 0.01 * width * height
    lookat = (q[0], q[1], render.LOOKAT_HEIGHT)
    col, row = _project(model, lookat, q[:3] + render.REF_CHAR_OFFSET, width, height)
    assert abs(np.median(cols) - col) < width / 10 and abs(np.median(rows) - row) < height / 6
    me, _ = _project(model, lookat, q[:3], width, height)
    assert col - me > width / 6  # beside the character, not on it
    changed = ghost[rows, cols] - plain[rows, cols]
    assert changed[:, 2].mean() > changed[:, 0].mean() + 10  # the ghost is blue, unlike the character


def test_environments_are_tiled_left_to_right(humanoid):
    q = _standing_qpos(humanoid)
    qpos = np.stack([np.stack([q, q + np.r_[0.0, 0.0, 0.2, np.zeros(len(q) - 3)]])] * 2)  # [T=2, E=2, nq]
    frames = render.render_envs(humanoid.mj_model, qpos, W, H)
    assert frames.shape == (2, H, 2 * W, 3)
    np.testing.assert_array_equal(frames[:, :, :W], render.render_qpos(humanoid.mj_model, qpos[:, 0], W, H))
    assert np.abs(frames[:, :, :W].astype(int) - frames[:, :, W:].astype(int)).max() > 30


def test_caption_writes_the_name_in_the_top_left_corner():
    frames = np.zeros((2, H, W, 3), np.uint8)
    a, b = render.caption(frames, "walk"), render.caption(frames, "spinkick")
    assert a.shape == frames.shape and np.array_equal(a[0], a[1])
    lit = a[0].max(axis=-1) > 128
    assert lit.sum() > 10 and not lit[H // 2:].any() and not lit[:, W // 2:].any()
    assert not np.array_equal(a, b)


# -- motions ----------------------------------------------------------------------------------------
def _walk_clip(layout, seconds, fps=30):
    """A clip whose root moves +1 m/s along x at 0.9 m height, standing still otherwise."""
    n = int(round(seconds * fps)) + 1
    t = np.arange(n) / fps
    root_pos = np.stack([t, np.zeros(n), np.full(n, 0.9)], axis=1).astype(np.float32)
    root_rot = np.tile(np.array([1.0, 0, 0, 0], np.float32), (n, 1))
    return Clip(fps=fps, loop=False, root_pos=root_pos, root_rot=root_rot,
                dof_pos=np.zeros((n, layout.num_dof), np.float32))


def test_motion_qpos_follows_a_known_root_trajectory(humanoid):
    layout = humanoid.layout
    library = build_motion_library(layout, [_walk_clip(layout, 0.5), _walk_clip(layout, 1.0)])
    qpos = render.motion_qpos(layout, library, 1, fps=10)
    assert qpos.shape == (11, humanoid.mj_model.nq)
    np.testing.assert_allclose(qpos[:, 0], np.arange(11) / 10, atol=1e-5)  # 1 m over 1 s
    np.testing.assert_allclose(qpos[:, 1:3], np.tile([0.0, 0.9], (11, 1)), atol=1e-6)
    np.testing.assert_allclose(qpos[:, 3:7], np.tile([1.0, 0, 0, 0], (11, 1)), atol=1e-6)


def test_view_motion_plays_the_clip(tmp_path, capsys):
    out = tmp_path / "spinkick.mp4"
    assert main(["view-motion", "motions/humanoid/humanoid_spinkick.npz", "--out", str(out),
                 "--width", str(W), "--height", str(H)]) == 0
    # The 1.28 s clip sampled at the 30 Hz control rate: floor(1.2834 * 30) + 1 frames.
    assert len(_read(out)) == 39


def test_view_motion_of_a_dataset_plays_every_clip_with_its_name(tmp_path, humanoid, capsys):
    for name, seconds in (("walk_a", 1.0), ("walk_b", 0.5)):
        save_clip(tmp_path / f"{name}.npz", _walk_clip(humanoid.layout, seconds))
    dataset = tmp_path / "dataset.yaml"
    dataset.write_text(yaml.safe_dump({"motions": [{"file": "walk_a.npz", "weight": 1.0},
                                                   {"file": "walk_b.npz", "weight": 2.0}]}))
    out = tmp_path / "dataset.mp4"
    # These clips name no character, so the case giving it is named.
    assert main(["view-motion", str(dataset), "--out", str(out), "--width", str(W), "--height", str(H),
                 "--config", "amp_humanoid"]) == 0
    frames = _read(out).astype(int)
    assert len(frames) == 31 + 16  # 1 s and 0.5 s at 30 Hz, one after the other
    corner = frames[:, : H // 5, : W // 2].max(axis=-1)
    assert all((c > 150).sum() > 10 for c in corner)  # a caption on every frame
    same, changed = np.abs(corner[1] - corner[0]).max(), np.abs(corner[31] - corner[30]).max()
    assert same < 60 and changed > 150  # it changes where the next clip starts


@pytest.mark.parametrize("clip", ["go2/go2_pace", "pi_plus/pi_plus_walk", "g1/g1_walk", "smpl/smpl_walk",
                                  "humanoid_sword_shield/humanoid_sword_shield_walk", "humanoid/humanoid_walk"])
def test_view_motion_plays_a_clip_of_every_character_without_a_config(clip, tmp_path, capsys):
    """The clip names its character; view-motion finds the case (the first using it) and frames it."""
    out = tmp_path / "clip.gif"
    assert main(["view-motion", f"motions/{clip}.npz", "--out", str(out), "--width", "32", "--height", "24"]) == 0
    assert len(_read(out)) > 10


def test_camera_scale_follows_the_characters_size():
    from amp_jax.motion.clip import load_clip

    def scale(name):
        clip = load_clip(f"motions/{name}.npz")
        return render.camera_scale_for(np.concatenate([clip.root_pos, clip.root_rot], axis=1))

    assert scale("humanoid/humanoid_spinkick") > 0.9 and scale("humanoid/humanoid_walk") > 0.9
    assert 0.3 < scale("go2/go2_pace") < 0.45 and 0.35 < scale("pi_plus/pi_plus_walk") < 0.5


# -- policy rollouts ---------------------------------------------------------------------------------
def test_rollout_reference_starts_every_episode_at_the_reset_pose(tiny):
    qpos, ref, done = tiny.out
    steps = ROLLOUT_EPISODES * tiny.env.episode_steps
    assert qpos.shape == ref.shape == (steps + 1, ROLLOUT_ENVS, tiny.env.character.mj_model.nq)
    assert done.shape == (steps, ROLLOUT_ENVS)
    np.testing.assert_allclose(qpos[0], ref[0], atol=1e-5)
    ends = np.argwhere(done != NULL)
    assert len(ends) >= ROLLOUT_ENVS * ROLLOUT_EPISODES  # episodes end by timeout at the latest
    for t, e in ends:  # frame t + 1 is the next episode's reset pose: on its reference
        np.testing.assert_allclose(qpos[t + 1, e], ref[t + 1, e], atol=1e-5)
    assert np.abs(ref[1:, :, :3] - ref[:-1, :, :3]).max() > 0.01  # the reference moves with time


def test_frames_covering_covers_episodes_of_every_environment():
    done = np.array([[0, 0], [1, 0], [0, 3], [0, 0], [1, 0], [0, 1]])
    assert rollouts.frames_covering(done, 1) == 3  # env 1 ends its first episode at step 3
    assert rollouts.frames_covering(done, 2) == 6
    assert rollouts.frames_covering(done, 3) == 7  # not reached: every frame


def test_render_cli_tiles_envs_with_the_reference_from_the_newest_readable_checkpoint(tiny, tmp_path, monkeypatch,
                                                                                       capsys):
    run = _run_dir(tiny, tmp_path / "run", corrupt=[2])
    _use_compiled_rollout(monkeypatch, tiny, (ROLLOUT_ENVS, ROLLOUT_EPISODES * tiny.env.episode_steps))
    out = tmp_path / "policy.mp4"
    assert main(["render", "--model_file", str(run), "--out", str(out), "--num_envs", str(ROLLOUT_ENVS),
                 "--num_episodes", str(ROLLOUT_EPISODES), "--show_reference", "--width", str(W),
                 "--height", str(H)]) == 0
    assert "iteration 1" in capsys.readouterr().out  # step 2 is torn
    frames = _read(out)
    assert frames.shape == (rollouts.frames_covering(tiny.out[2], ROLLOUT_EPISODES), H, ROLLOUT_ENVS * W, 3)


def test_render_without_a_readable_checkpoint_is_a_clear_error(tiny, tmp_path, capsys):
    run = _run_dir(tiny, tmp_path / "run", corrupt=[1, 2])
    assert main(["render", "--model_file", str(run), "--out", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no readable checkpoint" in err


def test_an_html_replay_of_several_envs_or_with_the_ghost_is_refused_before_loading(tmp_path, capsys):
    for extra in (["--num_envs", "2"], ["--show_reference"]):
        assert main(["render", "--model_file", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.html"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "an .html replay shows one environment" in err


def test_render_without_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["render", "--model_file", str(tmp_path / "nothing"), "--out", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a run directory" in err


# -- videos during training ----------------------------------------------------------------------
def test_video_every_writes_videos_and_tensorboard_gifs(tiny, tmp_path, monkeypatch):
    """Two iterations with video_every=1 (the compiled training step replaced by a counter)."""
    _use_compiled_rollout(monkeypatch, tiny, (1, int(round(4.0 * tiny.cfg.env.physics.control_freq))))

    def count(state):
        metrics = {k: 0.0 for k in ("episodes", "episode_length_sum", "episode_return_sum", "actor_loss",
                                    "critic_loss", "disc_loss")}
        return _committed(state.replace(iteration=state.iteration + 1, samples=state.samples + 16.0)), metrics

    monkeypatch.setattr(trainer, "make_train_step", lambda learner, env, mesh=None: count)
    cfg = load_config(CONFIG_DIR / "amp_humanoid.yaml", {**TINY, "train.video_every": 1})
    trainer.train(cfg, tmp_path, max_iterations=2)
    videos = sorted(p.name for p in (tmp_path / "videos").iterdir())
    assert videos == ["iter_000001.mp4", "iter_000002.mp4"]
    frames = _read(tmp_path / "videos" / videos[0])
    assert frames.shape == (len(tiny.out[0]), 240, 320, 3)
    events = b"".join(p.read_bytes() for p in (tmp_path / "tb").iterdir())
    assert events.count(b"GIF89a") == 2 and b"policy" in events


def test_metrics_logger_video_is_a_gif_at_the_sample_count(tmp_path):
    logger = MetricsLogger(tmp_path, None)
    logger.video("policy", np.zeros((3, 8, 12, 3), np.uint8), 64.0, fps=30)
    logger.close()
    events = b"".join(p.read_bytes() for p in (tmp_path / "tb").iterdir())
    assert b"GIF89a" in events and b"policy" in events


# -- test --visualize ------------------------------------------------------------------------------
def test_visualize_without_a_display_writes_test_video(tiny, tmp_path, monkeypatch, capsys):
    run = _run_dir(tiny, tmp_path / "run")
    asked = _use_compiled_rollout(monkeypatch, tiny, (1, tiny.env.episode_steps))
    monkeypatch.setattr(evaluate, "test_policy", lambda *a, **k: {
        "mean_return": 0.0, "mean_episode_length": 1.0, "fall_rate": 0.0, "mean_style_reward": 0.0, "episodes": 1})
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["test", "--model_file", str(run), "--visualize", "true"]) == 0
    video = run / "videos" / "test.mp4"
    assert f"wrote {video}" in capsys.readouterr().out and asked
    assert len(_read(video)) == len(tiny.out[0])


class _FakeViewer:
    """Stands in for mujoco.viewer's passive handle: runs for `frames` syncs, records the poses."""

    def __init__(self, data, frames):
        self.data, self.left, self.poses = data, frames, []
        self.cam = mujoco.MjvCamera()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def is_running(self):
        return self.left > 0

    def lock(self):
        import contextlib

        return contextlib.nullcontext()

    def sync(self):
        self.poses.append(self.data.qpos.copy())
        self.left -= 1


def test_view_plays_the_poses_in_a_loop_when_a_viewer_opens(humanoid, monkeypatch):
    import mujoco.viewer

    q = _standing_qpos(humanoid)
    qpos = np.stack([q, q + np.r_[1.0, np.zeros(len(q) - 1)]])
    opened = []
    monkeypatch.setattr(mujoco.viewer, "launch_passive",
                        lambda model, data: opened.append(_FakeViewer(data, 3)) or opened[-1])
    monkeypatch.delenv("DISPLAY", raising=False)
    assert not render.view(humanoid.mj_model, qpos, fps=1000) and not opened  # no display: nothing opened

    monkeypatch.setenv("DISPLAY", ":0")
    assert render.view(humanoid.mj_model, qpos, fps=1000)
    np.testing.assert_array_equal(np.stack(opened[0].poses), qpos[[0, 1, 0]])
    assert opened[0].cam.type == mujoco.mjtCamera.mjCAMERA_TRACKING

    def fail(model, data):
        raise RuntimeError("glfw: cannot open display")

    monkeypatch.setattr(mujoco.viewer, "launch_passive", fail)
    assert not render.view(humanoid.mj_model, qpos, fps=1000)


def test_show_in_notebook_only_inside_a_kernel(tmp_path, monkeypatch):
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not video.show_in_notebook(tmp_path / "v.mp4") and not shown
    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setattr(IPython, "get_ipython", lambda: kernel)
    path = video.write_video(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), np.uint8), fps=30)
    assert video.show_in_notebook(path)
    assert isinstance(shown[0], IPython.display.Video)
