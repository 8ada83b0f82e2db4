"""Reliability (issue 8): bad input is refused before anything compiles with one clear line; an
interrupted run resumes to the same result as an uninterrupted one; a killed save never leaves a
half-written newest checkpoint; physics faults are reset, counted and kept from the learner; non-finite
parameters stop a run without saving; the same seed gives the same numbers.

JAX compilations are the cost here: one in-process compile of a tiny training step (module fixture),
and three `amp-jax train` subprocesses that share the session's persistent compilation cache
(conftest.py) with it, so that they do not compile the same step again."""

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from amp_jax.catalog import CONFIG_DIR
from amp_jax.cli import main
from amp_jax.config import load_config
from amp_jax.errors import InputError
from amp_jax.learning import discriminator, normalizer, ppo, replay_buffer
from amp_jax.learning.train_step import init_train_state, make_train_step
from amp_jax.training import checkpoint
from amp_jax.training.build import build
from amp_jax.training.trainer import iteration_row, numerical_fault

from conftest import REPO_ROOT

SMOKE = CONFIG_DIR / "amp_humanoid_smoke.yaml"
TINY = {"train.num_envs": 4, "agent.steps_per_iter": 4, "agent.hidden_sizes": [16], "agent.disc_buffer_size": 64,
        "agent.disc_replay_samples": 8, "train.num_devices": 1, "train.eval_every": 0, "train.test_episodes": 0,
        "train.iters_per_output": 1}
N = 4 * 4  # samples per iteration
SPINKICK = REPO_ROOT / "motions/humanoid/humanoid_spinkick.npz"


# -- 1. bad input: one line, exit code 2, nothing written ------------------------------------------------
def _clip_file(tmp_path, name="clip.npz", **changes):
    with np.load(SPINKICK) as f:
        data = {k: f[k] for k in f.files}
    data.update({k: v(data) if callable(v) else v for k, v in changes.items()})
    np.savez(tmp_path / name, **data)
    return tmp_path / name


def _pkl_file(tmp_path, content: bytes):
    (tmp_path / "clip.pkl").write_bytes(content)
    return tmp_path / "clip.pkl"


def _dataset(tmp_path, entries):
    _clip_file(tmp_path, "a.npz")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"motions": entries}))
    return tmp_path / "data.yaml"


def _xml(tmp_path, text_from_humanoid):
    path = tmp_path / "character.xml"
    path.write_text(text_from_humanoid((REPO_ROOT / "assets/humanoid/humanoid.xml").read_text()))
    return path


def _no_neck_z(xml: str) -> str:
    return "\n".join(line for line in xml.splitlines() if 'name="neck_z"' not in line)


def _pickled_clip():
    frames = np.zeros((5, 34))
    return pickle.dumps({"loop_mode": 1, "fps": 30, "frames": frames})


# id -> (overrides given the tmp dir, texts the error line must contain)
BAD_INPUT = {
    "unknown key": (lambda t: {"agent.learning_rat": 1}, ["agent.learning_rat"]),
    "wrong type": (lambda t: {"agent.steps_per_iter": "many"}, ["agent.steps_per_iter", "integer"]),
    "out of range": (lambda t: {"agent.discount": 1.5}, ["agent.discount", "[0, 1]"]),
    "not finite": (lambda t: {"agent.action_std": ".nan"}, ["agent.action_std", "finite"]),
    "missing file": (lambda t: {"env.character": "assets/nope.xml"}, ["env.character", "nope.xml"]),
    "unknown key body": (lambda t: {"env.key_bodies": "[head,tail]"}, ["humanoid.xml", "key body", "tail"]),
    "unknown contact body": (lambda t: {"env.contact_bodies": "[hoof]"}, ["humanoid.xml", "contact body", "hoof"]),
    "unmappable joints": (lambda t: {"env.character": _xml(t, _no_neck_z)}, ["character.xml", "head", "2 joints"]),
    "unreadable xml": (lambda t: {"env.character": _xml(t, lambda x: x[: len(x) // 2])},
                       ["character.xml", "not a valid MJCF"]),
    "clip width": (lambda t: {"env.motion_file": _clip_file(t, dof_pos=lambda d: d["dof_pos"][:, :27])},
                   ["clip.npz", "27 DoFs"]),
    "clip NaN": (lambda t: {"env.motion_file": _clip_file(t, dof_pos=lambda d: np.where(
        np.arange(len(d["dof_pos"]))[:, None] == 5, np.nan, d["dof_pos"]))}, ["clip.npz", "NaN"]),
    "clip fps": (lambda t: {"env.motion_file": _clip_file(t, fps=np.float32(0.0))}, ["clip.npz", "fps"]),
    "one frame": (lambda t: {"env.motion_file": _clip_file(t, root_pos=lambda d: d["root_pos"][:1],
                                                           root_rot=lambda d: d["root_rot"][:1],
                                                           dof_pos=lambda d: d["dof_pos"][:1])},
                  ["clip.npz", "at least 2 frames"]),
    "quaternion norm": (lambda t: {"env.motion_file": _clip_file(t, root_rot=lambda d: 2 * d["root_rot"])},
                        ["clip.npz", "unit quaternion"]),
    "truncated pickle": (lambda t: {"env.motion_file": _pkl_file(t, _pickled_clip()[:100])},
                         ["clip.pkl", "not a readable MimicKit pickle"]),
    "not a pickle": (lambda t: {"env.motion_file": _pkl_file(t, b"frames: [1, 2]\n")},
                     ["clip.pkl", "not a readable MimicKit pickle"]),
    "dataset missing clip": (lambda t: {"env.motion_file": _dataset(t, [{"file": "a.npz"}, {"file": "gone.npz"}])},
                             ["gone.npz", "not found"]),
    "dataset negative weight": (lambda t: {"env.motion_file": _dataset(t, [{"file": "a.npz", "weight": -1}])},
                                ["data.yaml", "motions[0] weight"]),
    "dataset zero weights": (lambda t: {"env.motion_file": _dataset(t, [{"file": "a.npz", "weight": 0}] * 2)},
                             ["data.yaml", "sum to zero"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, case):
    overrides, expected = BAD_INPUT[case]
    sets = [a for k, v in overrides(tmp_path).items() for a in ("--set", f"{k}={v}")]
    run = tmp_path / "run"
    code = main(["train", "--config", str(SMOKE), "--out_dir", str(run), *sets])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err and err.startswith("amp-jax: error: ")
    for text in expected:
        assert text in err
    assert not (run / "config.yaml").exists()  # refused before the run started


def test_unknown_key_in_a_config_file_names_the_file(tmp_path, capsys):
    data = yaml.safe_load(SMOKE.read_text())
    data["agent"]["learning_rat"] = 1.0
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(data))
    code = main(["train", "--config", str(cfg), "--out_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "agent.learning_rat" in err and str(cfg) in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(InputError, match="agent.discount"):
        main(["train", "--config", str(SMOKE), "--out_dir", str(tmp_path), "--set", "agent.discount=2", "--debug"])


def test_numerical_fault_names_what_is_not_finite():
    row = {"actor_loss": 0.1, "critic_loss": 2.0, "disc_loss": 1.0, "nonfinite_params": 0.0}
    assert numerical_fault(row) is None
    assert numerical_fault({**row, "critic_loss": float("nan")}) == "critic_loss"
    assert numerical_fault({**row, "disc_loss": float("inf"), "nonfinite_params": 12.0}) == "disc_loss and 12 parameters"


# -- 3. masks: a left-out sample changes nothing ------------------------------------------------------
def test_masked_losses_equal_the_losses_without_the_masked_samples():
    rng = np.random.default_rng(0)
    mean, actions = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    log_std, old_lp, adv = np.log(np.full(3, 0.3)), rng.normal(size=6), rng.normal(size=6)
    mask = np.array([1, 1, 0, 1, 0, 1], np.float32)
    keep = mask > 0
    loss_masked, stats_masked = ppo.actor_loss(mean, log_std, actions, old_lp, adv, 0.2, 10.0, mask)
    loss_kept, stats_kept = ppo.actor_loss(mean[keep], log_std, actions[keep], old_lp[keep], adv[keep], 0.2, 10.0)
    np.testing.assert_allclose(loss_masked, loss_kept, rtol=1e-6)
    np.testing.assert_allclose(stats_masked["clip_frac"], stats_kept["clip_frac"], rtol=1e-6)
    values, returns = rng.normal(size=6), rng.normal(size=6)
    np.testing.assert_allclose(ppo.critic_loss(values, returns, mask), np.mean((returns - values)[keep] ** 2), rtol=1e-6)
    norm_adv = ppo.normalize_advantages(jnp.asarray(adv), 4.0, mask)
    kept = (adv[keep] - adv[keep].mean()) / adv[keep].std()
    np.testing.assert_allclose(np.asarray(norm_adv)[keep], kept, rtol=1e-5)
    assert np.all(np.asarray(norm_adv)[~keep] == 0)

    def apply(params, x):
        return jnp.tanh(x @ params["params"]["w"]) @ params["params"]["head"]["kernel"]

    params = {"params": {"w": jnp.asarray(rng.normal(size=(4, 5))), "head": {"kernel": jnp.asarray(rng.normal(size=(5, 1)))}}}
    agent, demo = rng.normal(size=(6, 4)), rng.normal(size=(3, 4))
    agent[~keep] = np.nan  # whatever a left-out sample holds
    for kind in ("bce", "lsgan"):
        masked = discriminator.loss(apply, params, agent, demo, kind, 5.0, 0.01, mask)[0]
        kept_only = discriminator.loss(apply, params, agent[keep], demo, kind, 5.0, 0.01)[0]
        np.testing.assert_allclose(masked, kept_only, rtol=1e-6)


def test_masked_normaliser_and_replay_take_only_the_kept_rows():
    rng = np.random.default_rng(1)
    batch, mask = rng.normal(size=(5, 3)).astype(np.float32), np.array([1, 0, 1, 1, 0], np.float32)
    batch[1] = np.nan
    masked = normalizer.update(normalizer.init(3), batch, mask)
    kept = normalizer.update(normalizer.init(3), batch[mask > 0])
    for a, b in zip(jax.tree.leaves(masked), jax.tree.leaves(kept)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    unchanged = normalizer.update(kept, batch, np.zeros(5))
    for a, b in zip(jax.tree.leaves(unchanged), jax.tree.leaves(kept)):
        np.testing.assert_array_equal(a, b)

    buf = replay_buffer.add(replay_buffer.init(4, 3), batch[2:])  # rows 2, 3, 4 at slots 0, 1, 2
    buf = replay_buffer.add(buf, batch[:4], mask[:4])  # rows 0, 2, 3 (not 1) at slots 3, 0, 1
    assert int(buf.head) == 2 and int(buf.count) == 4
    np.testing.assert_array_equal(np.asarray(buf.data), np.stack([batch[2], batch[3], batch[4], batch[0]]))


# -- 3 and 4 in the compiled step ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    """(learner, env, compiled train_step) of the tiny smoke config that the subprocesses below also run."""
    cfg = load_config(SMOKE, TINY)
    env, learner = build(cfg)
    return learner, env, make_train_step(learner, env)


def _host(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _finite(tree):
    return all(np.all(np.isfinite(x)) for x in _host(tree) if np.issubdtype(x.dtype, np.floating))


def test_physics_fault_is_reset_counted_and_kept_from_the_learner(tiny):
    learner, env, train_step = tiny
    state = init_train_state(learner, env, seed=0)
    data = state.env_state.data
    data = data.replace(qvel=data.qvel.at[0].set(jnp.nan).at[1].set(1e6))  # env 0 NaN, env 1 exploding
    state = state.replace(env_state=state.env_state.replace(data=data))

    state, metrics = train_step(state)
    assert float(metrics["physics_faults"]) == 2
    assert float(metrics["nonfinite_params"]) == 0
    assert _finite(state)  # parameters, normalisers, replay buffer, environments
    # Both faulted at their first step and were reset: three steps since.
    np.testing.assert_array_equal(np.asarray(state.env_state.step_count)[:2], [3, 3])
    # Their two transitions reached neither the replay buffer nor the normalisers.
    assert int(state.replay.count) == N - 2
    assert float(state.obs_norm.count) == N - 2
    assert float(state.disc_norm.count) == 2 * N - 2  # agent windows + demo windows

    state, metrics = train_step(state)  # training goes on
    assert int(state.iteration) == 2 and float(metrics["physics_faults"]) == 0
    assert numerical_fault(iteration_row(metrics, 2, 2 * N, 1.0, N)) is None


def test_same_seed_same_numbers(tiny):
    """Two runs from the same seed on the same device agree bit for bit."""
    learner, env, train_step = tiny
    runs = []
    for _ in range(2):
        state = init_train_state(learner, env, seed=5)
        for _ in range(2):
            state, metrics = train_step(state)
        runs.append((_host(state), {k: np.asarray(v) for k, v in metrics.items()}))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1].keys() == runs[1][1].keys()
    for k in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])


# -- 2. interruption -------------------------------------------------------------------------------------
def _cli(run_dir, *extra):
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    cmd = [sys.executable, "-m", "amp_jax.cli", "train", "--config", str(SMOKE), "--out_dir", str(run_dir),
           "--logger", "txt", *sets, *extra]
    return cmd, dict(os.environ)  # the session's platform and compilation cache (conftest.py)


def _rows(run_dir):
    """metrics.jsonl rows without the timing."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows]


def _reference(tiny, iterations):
    """States (after each iteration) and metrics rows of an uninterrupted in-process run, seed 0."""
    learner, env, train_step = tiny
    state, states, rows = init_train_state(learner, env, seed=0), [], []
    for i in range(1, iterations + 1):
        state, metrics = train_step(state)
        states.append(_host(state))
        row = iteration_row(metrics, i, float(state.samples), 1.0, N)
        rows.append({k: v for k, v in json.loads(json.dumps(row)).items() if k != "samples_per_s"})
    return states, rows


def _restore(run_dir, tiny, step=None):
    learner, env, _ = tiny
    return checkpoint.restore(checkpoint.manager(run_dir), init_train_state(learner, env, seed=1), step)


def _assert_rows_equal(got, expected):
    """The same metrics rows; the message names the first iteration and keys that differ."""
    assert len(got) == len(expected), ([r["iteration"] for r in got], [r["iteration"] for r in expected])
    for g, e in zip(got, expected):
        diff = {k: (g.get(k), e.get(k)) for k in set(g) | set(e) if g.get(k) != e.get(k)}
        assert not diff, (e["iteration"], diff)


def _assert_state_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_sigterm_then_resume_equals_an_uninterrupted_run(tiny, tmp_path):
    """`amp-jax train` stopped by SIGTERM saves at the iteration boundary and exits cleanly; with its
    newest checkpoint then truncated, `--resume` starts from the one before and ends exactly where an
    uninterrupted run ends (metrics rows and the full state); a run whose parameters turn non-finite
    stops with one line and exit code 1 and saves nothing."""
    run = tmp_path / "run"
    cmd, env = _cli(run, "--set", "train.max_samples=null")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(900, proc.kill)
    watchdog.start()
    output = []
    for line in proc.stdout:
        output.append(line)
        if line.startswith("it ") and int(line.split()[1]) >= 2:  # the second logged iteration
            proc.send_signal(signal.SIGTERM)
            break
    output += proc.stdout.readlines()
    watchdog.cancel()
    assert proc.wait() == 0, "".join(output)[-3000:]
    assert "received signal" in "".join(output)
    k = checkpoint.manager(run).latest_step()
    assert k >= 2 and [r["iteration"] for r in _rows(run)] == list(range(1, k + 1))

    total = k + 2
    states, rows = _reference(tiny, total)
    step, state = _restore(run, tiny)  # the checkpoint written on SIGTERM is complete and exact
    assert step == k
    _assert_state_equal(_host(state), states[k - 1])

    for f in (run / "checkpoints" / str(k)).rglob("*"):  # a torn newest checkpoint
        if f.is_file():
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    cmd, env = _cli(run, "--resume", "--max_samples", str(total * N))
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resumed from {run}/checkpoints step {k - 1}" in resumed.stdout
    assert (run / "checkpoints_unreadable" / str(k)).is_dir()
    _assert_rows_equal(_rows(run), rows)
    step, state = _restore(run, tiny)
    assert step == total
    _assert_state_equal(_host(state), states[-1])

    # Weights so large that the next update overflows: the run stops at once, keeping its checkpoint.
    diverging = tmp_path / "diverging"
    state = state.replace(actor_params=jax.tree.map(lambda w: w * 1e30, state.actor_params))
    checkpoint.save(checkpoint.manager(diverging), total, state)
    cmd, env = _cli(diverging, "--resume", "--max_samples", str((total + 3) * N))
    stopped = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert stopped.returncode == 1, stopped.stdout[-3000:] + stopped.stderr[-3000:]
    error = stopped.stderr.strip().splitlines()[-1]
    assert error.startswith(f"amp-jax: error: iteration {total + 1}: ") and "parameters not finite" in error
    assert f"step {total}" in error and "Traceback" not in stopped.stderr
    assert list(checkpoint.manager(diverging).all_steps()) == [total]
    assert _rows(diverging)[-1]["nonfinite_params"] > 0
    _assert_state_equal(_host(_restore(diverging, tiny)[1]), _host(state))



@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a tmpfs of that many bytes under tmp_path (skips where mounting is not allowed)."""
    mounts = []

    def mount(size: int) -> Path:
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode != 0:
            pytest.skip("this machine does not let the tests mount a small tmpfs")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_a_full_disk_stops_training_with_one_line_and_keeps_the_newest_checkpoint(tiny, tmp_path, small_disk):
    """A disk with room for about two and a half checkpoints: after the first save the run warns that the three
    it keeps will not fit; one soon fails and the run stops with one line (no Orbax tracebacks), exit code 2,
    naming the newest complete checkpoint, which restores, and leaving no partial write behind."""
    learner, env, _ = tiny
    probe = checkpoint.manager(tmp_path / "probe")
    checkpoint.save(probe, 1, init_train_state(learner, env, seed=0))
    one = sum(f.stat().st_size for f in (tmp_path / "probe/checkpoints/1").rglob("*") if f.is_file())
    run = small_disk(int(2.5 * one) + 64 * 1024) / "run"  # and room for config.yaml, metrics.jsonl and the log
    cmd, env_vars = _cli(run, "--set", "train.max_samples=null", "--set", "train.keep_checkpoints=3")
    proc = subprocess.run(cmd, env=env_vars, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr and "RESOURCE_EXHAUSTED" not in proc.stdout + proc.stderr
    assert "keep_checkpoints is 3: the run will need about" in proc.stdout
    error = proc.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"amp-jax: error: {run}/checkpoints: the disk is full: "), error
    newest = checkpoint.manager(run).latest_step()
    assert newest >= 1 and f"checkpoint {newest + 1} could not be written" in error[0]  # later ones grow
    assert f"the newest complete checkpoint is step {newest}" in error[0]
    assert not list((run / "checkpoints").glob("*tmp*"))
    assert _restore(run, tiny)[0] == newest


SAVER = """
import sys
import numpy as np
from amp_jax.training import checkpoint
mgr = checkpoint.manager(sys.argv[1], keep=2)
step = (mgr.latest_step() or 0) + 1
while True:
    checkpoint.save(mgr, step, {f"w{i}": np.full((512, 1024), step, np.float32) for i in range(8)})
    print(step, flush=True)
    step += 1
"""


def test_sigkill_mid_save_leaves_the_newest_checkpoint_complete(tmp_path):
    """A process saving 16 MB checkpoints back to back, killed at random moments: each time the newest
    checkpoint restores completely (every array holds its step) and nothing older than the last
    reported save is lost."""
    template = {f"w{i}": np.zeros((512, 1024), np.float32) for i in range(8)}
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    rng = random.Random(0)
    last_reported = 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT)
        last_reported = int(proc.stdout.readline())  # one save done: saves are now back to back
        threading.Event().wait(rng.uniform(0.0, 1.0))
        proc.kill()
        proc.wait()
        last_reported = max([last_reported, *(int(x) for x in proc.stdout.read().split())])
        step, restored = checkpoint.restore(checkpoint.manager(tmp_path), template)
        assert step >= last_reported and step == max(checkpoint.manager(tmp_path).all_steps())
        assert all(np.all(np.asarray(v) == step) for v in restored.values())


def test_a_second_signal_stops_at_once_even_where_python_handlers_cannot_run():
    """The first SIGINT asks for a save at the iteration's end; a second ends the process at once (exit 130),
    here while the main thread sits in a long call, as it does in a compile."""
    script = textwrap.dedent("""
        import os, signal, time
        from amp_jax.training import trainer
        with trainer._StopFlag() as flag:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
            print("asked to stop:", flag.stop, flush=True)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(60)
        print("not reached", flush=True)
    """)
    start = time.time()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50, cwd=REPO_ROOT)
    assert proc.returncode == 130 and time.time() - start < 30, (proc.returncode, proc.stdout, proc.stderr)
    assert "asked to stop: True" in proc.stdout and "not reached" not in proc.stdout
    assert "second signal: stopping now" in proc.stderr


def test_ctrl_c_while_setting_up_is_one_line():
    """Ctrl-C before training's own handler is in place (loading, building, the first resets) gives one line and
    exit code 130, not a traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "amp_jax.cli", "train", "--config", str(SMOKE), "--out_dir",
                             str(Path(tempfile.mkdtemp()) / "run")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO_ROOT)
    assert proc.stdout.readline().startswith("training ")  # printed just before the environment is built
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.strip() == "amp-jax: interrupted" and "Traceback" not in err
