"""The compiled training step end to end on CPU: learning signals, exact checkpoint resume, the CLI."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from amp_jax.catalog import CONFIG_DIR
from amp_jax.config import load_config
from amp_jax.learning.train_step import init_train_state, make_train_step
from amp_jax.training import checkpoint
from amp_jax.training.build import build

TINY = {
    "train.num_envs": 4,
    "agent.steps_per_iter": 4,
    "agent.hidden_sizes": [32, 16],
    "agent.disc_buffer_size": 64,
    "agent.disc_replay_samples": 8,
}


@pytest.fixture(scope="session")
def tiny_run():
    """(cfg, env, learner, compiled train_step) for a tiny humanoid spinkick config, compiled once."""
    cfg = load_config(CONFIG_DIR / "amp_humanoid.yaml", TINY)
    env, learner = build(cfg)
    return cfg, env, learner, make_train_step(learner, env)


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_train_step_updates_everything(tiny_run):
    cfg, env, learner, train_step = tiny_run
    state = init_train_state(learner, env, seed=0)
    before = jax.tree.map(np.asarray, (state.actor_params, state.critic_params, state.disc_params))
    state, metrics = train_step(state)
    after = (state.actor_params, state.critic_params, state.disc_params)
    for b, a in zip(before, after):
        assert any(not np.allclose(x, y) for x, y in zip(_leaves(b), _leaves(a)))
    n = cfg.agent.steps_per_iter * cfg.train.num_envs
    assert int(state.iteration) == 1 and float(state.samples) == n
    # Replay buffer takes every sample while it has room; the normalisers saw the iteration.
    assert int(state.replay.count) == min(n, cfg.agent.disc_buffer_size)
    assert float(state.obs_norm.count) == n
    assert float(state.disc_norm.count) == 2 * n  # agent + demo windows
    m = {k: float(v) for k, v in metrics.items()}
    assert all(np.isfinite(v) for v in m.values())
    assert 0.0 <= m["disc_reward_mean"] <= -np.log(1e-4) * cfg.agent.disc_reward_scale
    assert m["physics_faults"] == 0.0


def test_resume_equals_straight_run(tiny_run, tmp_path):
    """N+M iterations through a checkpoint equal N+M iterations straight through, exactly."""
    cfg, env, learner, train_step = tiny_run
    state = init_train_state(learner, env, seed=3)
    for _ in range(3):
        state, straight_metrics = train_step(state)
    straight = _leaves(state)

    state = init_train_state(learner, env, seed=3)
    state, _ = train_step(state)
    mgr = checkpoint.manager(tmp_path)
    checkpoint.save(mgr, 1, state)
    step, resumed = checkpoint.restore(checkpoint.manager(tmp_path), init_train_state(learner, env, seed=99))
    assert step == 1
    for _ in range(2):
        resumed, resumed_metrics = train_step(resumed)
    for a, b in zip(straight, _leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    for k in straight_metrics:
        np.testing.assert_array_equal(np.asarray(straight_metrics[k]), np.asarray(resumed_metrics[k]))


def test_restore_skips_a_corrupt_newest_checkpoint(tiny_run, tmp_path):
    cfg, env, learner, train_step = tiny_run
    state = init_train_state(learner, env, seed=0)
    mgr = checkpoint.manager(tmp_path)
    checkpoint.save(mgr, 1, state)
    state, _ = train_step(state)
    checkpoint.save(mgr, 2, state)
    for f in (tmp_path / "checkpoints" / "2" / "default").rglob("*"):  # a torn write of step 2
        if f.is_file():
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    step, _ = checkpoint.restore(checkpoint.manager(tmp_path), init_train_state(learner, env, seed=0))
    assert step == 1


def test_cli_smoke_train_then_test(tmp_path):
    """`amp-jax train` writes config, metrics and a checkpoint; `amp-jax test` reads them back."""
    run = tmp_path / "run"
    args = ["--num_envs", "4", "--set", "agent.steps_per_iter=4", "--set", "agent.hidden_sizes=[32,16]",
            "--set", "train.test_episodes=0"]
    arg_file = tmp_path / "args.txt"  # MimicKit style: the command line wins over the file
    arg_file.write_text(f"# smoke\n--config {CONFIG_DIR / 'amp_humanoid_smoke.yaml'} --num_envs 8\n")
    train = subprocess.run([sys.executable, "-m", "amp_jax.cli", "--mode", "train", "--arg_file", str(arg_file),
                            "--out_dir", str(run), "--max_iterations", "2", *args],
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2]
    assert rows[-1]["samples"] == 2 * 4 * 4
    assert checkpoint.manager(run).latest_step() == 2
    assert checkpoint.load_run_config(run).train.num_envs == 4
    assert list((run / "tb").iterdir())

    test = subprocess.run([sys.executable, "-m", "amp_jax.cli", "test", "--model_file", str(run),
                           "--test_episodes", "2", "--num_envs", "2"], capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    out = dict(line.split(": ", 1) for line in test.stdout.splitlines() if ": " in line)
    assert int(out["Episodes"]) >= 2
    assert 1.0 <= float(out["Mean Episode Length"]) <= 300.0
    assert 0.0 <= float(out["Fall Rate"]) <= 1.0


def test_the_time_limit_counts_the_probe_and_the_checkpoint_save(tmp_path, monkeypatch):
    """A fake clock: a training step takes 10 s, a motion-matching probe (every 2nd iteration) 30 s, a
    checkpoint save (every iteration) 5 s; deadline 100 s. Iterations end at 15, 60 (probe) and 75 s; the 4th
    would probe and end at 120 s, so the run stops after 3. An estimate of the step alone (10 s) would have
    started it and missed the deadline by 20 s."""
    from types import SimpleNamespace

    from amp_jax.eval import evaluate
    from amp_jax.training import trainer

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(trainer, "time", SimpleNamespace(time=lambda: clock.now))

    def costs(seconds, f):
        def timed(*args, **kwargs):
            out = f(*args, **kwargs)
            clock.now += seconds
            return out
        return timed

    real_make = trainer.make_train_step
    monkeypatch.setattr(trainer, "make_train_step", lambda *a, **k: costs(10.0, real_make(*a, **k)))
    monkeypatch.setattr(evaluate.MotionMatchingProbe, "measure", costs(30.0, evaluate.MotionMatchingProbe.measure))
    monkeypatch.setattr(checkpoint, "save", costs(5.0, checkpoint.save))
    cfg = load_config(CONFIG_DIR / "amp_humanoid.yaml", {**TINY, "train.eval_every": 2, "train.iters_per_output": 1,
                                                         "train.test_episodes": 0, "train.video_every": 0})
    trainer.train(cfg, tmp_path / "run", deadline=100.0)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert "mm_stay" in rows[1] and "mm_stay" not in rows[2] and clock.now == 75.0
