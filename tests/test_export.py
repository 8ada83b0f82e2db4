"""amp-jax export (policy .npz, ONNX, learner state), --model_file taking an exported policy, train
--init_from, and train.matmul_precision.

One smoke run (amp_humanoid_smoke, 4 environments, 2 iterations) is trained once for the module; the
rollouts of `test`/`eval` from it and from its export compile once (the same program, cached).
"""

import json
import shutil

import jax
import numpy as np
import pytest

from amp_jax.catalog import CONFIG_DIR
from amp_jax.cli import main
from amp_jax.config import load_config
from amp_jax.errors import InputError
from amp_jax.learning.learner import policy_of, policy_shapes
from amp_jax.learning.train_step import init_train_state
from amp_jax.training import checkpoint, export, learner_state, trainer
from amp_jax.training.build import build, build_env, load_trained

SMOKE = {"train.num_envs": 4, "train.test_episodes": 0, "train.eval_every": 0, "train.iters_per_output": 1}
SMOKE_ARGS = ["--num_envs", "4", "--set", "train.test_episodes=0", "--set", "train.eval_every=0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A smoke run trained for 2 iterations (checkpoints 1 and 2), exported as a policy .npz, ONNX and a
    learner state."""
    root = tmp_path_factory.mktemp("export")
    cfg = load_config(CONFIG_DIR / "amp_humanoid_smoke.yaml", SMOKE)
    trainer.train(cfg, root / "run", max_iterations=2)
    for out, fmt in (("policy.npz", "npz"), ("policy.onnx", "onnx"), ("learner", "learner")):
        assert main(["export", str(root / "run"), "--out", str(root / out), "--format", fmt]) == 0
    return root


def _full_state(path):
    """The newest checkpoint of a run as a TrainState, and the fresh state of its config (seed)."""
    cfg = checkpoint.load_run_config(path)
    env, learner = build(cfg)
    fresh = init_train_state(learner, env, cfg.train.seed)
    return checkpoint.restore(checkpoint.manager(path), fresh)[1], fresh


def _assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# -- the loader and the exported policy ------------------------------------------------------------
def test_exported_policy_loads_as_the_run_directory_does(run):
    _, _, learner, step, from_run = load_trained(run / "run")
    cfg, _, _, step_npz, from_npz = load_trained(run / "policy.npz")
    assert step == step_npz == 2 and cfg.case == "amp_humanoid_smoke"
    _assert_same(from_run, from_npz)
    saved, _ = _full_state(run / "run")
    _assert_same(policy_of(saved), from_npz)
    with np.load(run / "policy.npz") as data:
        np.testing.assert_array_equal(data["log_std"], learner.log_std)
        assert "critic_params/params/head/bias" not in data.files


def test_test_and_eval_from_the_export_match_the_run_directory(run, capsys):
    printed = {}
    for name in ("run", "policy.npz"):
        assert main(["test", "--model_file", str(run / name), "--test_episodes", "2", "--num_envs", "2"]) == 0
        printed[name] = capsys.readouterr().out.splitlines()[1:]  # after "model: ..."
    assert printed["run"] == printed["policy.npz"] and any("Mean Style Reward" in x for x in printed["run"])
    reports = {}
    for name in ("run", "policy.npz"):
        out = run / f"eval_{name}.json"
        assert main(["eval", "--model_file", str(run / name), "--test_episodes", "2", "--num_envs", "2",
                     "--out", str(out)]) == 0
        reports[name] = {k: v for k, v in json.loads(out.read_text()).items() if k != "run_dir"}
    assert reports["run"] == reports["policy.npz"] and reports["run"]["iteration"] == 2


def test_a_checkpoint_of_a_run_is_a_model_file_and_eval_names_its_report_after_it(run, tmp_path, capsys):
    """RUN/checkpoints/1 in place of the run's newest checkpoint (2): its own leaves, and eval's default
    report in the run's eval/ with the step in its name (nothing written into the checkpoint)."""
    checkpoints = run / "run" / "checkpoints"
    _, _, _, step, first = load_trained(checkpoints / "1")
    _, _, _, newest, last = load_trained(run / "run")
    assert (step, newest) == (1, 2)
    cfg = checkpoint.load_run_config(run / "run")
    env, learner = build(cfg)
    _, saved = checkpoint.restore(checkpoint.manager(run / "run"), init_train_state(learner, env, cfg.train.seed), 1)
    _assert_same(policy_of(saved), first)
    assert not np.array_equal(first.actor_params["params"]["head"]["bias"], last.actor_params["params"]["head"]["bias"])
    files = sorted(p.name for p in (checkpoints / "1").rglob("*"))
    assert main(["eval", "--model_file", str(checkpoints / "1"), "--test_episodes", "2", "--num_envs", "2"]) == 0
    assert json.loads((run / "run" / "eval" / "report_1.json").read_text())["iteration"] == 1
    assert (run / "run" / "eval" / "report_1.md").is_file()
    assert sorted(p.name for p in (checkpoints / "1").rglob("*")) == files
    capsys.readouterr()
    assert main(["test", "--model_file", str(checkpoints / "7")]) == 2  # no such step
    assert "not a run directory, a run's checkpoint (RUN/checkpoints/STEP)" in capsys.readouterr().err
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    (copy / "checkpoints" / "5").mkdir()  # a step that cannot be read: said, with no fallback to another
    assert main(["eval", "--model_file", str(copy / "checkpoints" / "5")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no readable checkpoint (step 5:" in err


def test_eval_checkpoints_compares_a_runs_checkpoints_against_the_bar(run, tmp_path, capsys):
    """`eval --checkpoints all`: each checkpoint's report as `eval --model_file RUN/checkpoints/STEP` writes it,
    with its samples (iteration x environments x steps per iteration), and the table of them; a step that
    cannot be read is a row that says so, the others are still evaluated."""
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    (copy / "checkpoints" / "5").mkdir()
    shutil.rmtree(copy / "eval", ignore_errors=True)
    episodes = ["--test_episodes", "2", "--num_envs", "2"]
    assert main(["eval", "--model_file", str(copy), "--checkpoints", "all", *episodes]) == 0
    out, err = capsys.readouterr()
    assert "iteration 5: unreadable, left out" in err
    assert "None of the 2 readable checkpoints reaches the whole bar (1 unreadable, left out)." in out
    table = json.loads((copy / "eval" / "checkpoints.json").read_text())
    batch = 4 * load_config(CONFIG_DIR / "amp_humanoid_smoke.yaml").agent.steps_per_iter
    assert [(r["iteration"], r.get("samples")) for r in table["checkpoints"]] == [(1, batch), (2, 2 * batch), (5, None)]
    assert "unreadable" in table["checkpoints"][2] and table["first_reached"] is None
    assert main(["eval", "--model_file", str(copy / "checkpoints" / "1"), *episodes, "--out", str(tmp_path / "one.json")]) == 0
    alone = json.loads((tmp_path / "one.json").read_text())
    first = json.loads((copy / "eval" / "report_1.json").read_text())
    assert first == {**alone, "run_dir": first["run_dir"]} and alone["samples"] == batch
    assert table["checkpoints"][0]["measures"] == {k: {"value": m["value"], "passed": m["passed"]}
                                                   for k, m in alone["bar"]["measures"].items()}
    assert (copy / "eval" / "checkpoints.md").read_text().count("\n| ") == 5  # header, limits and 3 rows
    capsys.readouterr()
    empty = tmp_path / "empty_run"
    empty.mkdir()
    shutil.copy(copy / checkpoint.CONFIG_FILE, empty)  # a run stopped before its first checkpoint
    for args, said in ((["--model_file", str(copy), "--checkpoints", "1,7"], "holds no step 7 (it holds: 1, 2, 5)"),
                       (["--model_file", str(copy), "--checkpoints", "last"], "expected all or steps separated"),
                       (["--model_file", str(copy / "checkpoints" / "1"), "--checkpoints", "all"], "give the run directory"),
                       (["--model_file", str(run / "policy.npz"), "--checkpoints", "all"], "give the run directory"),
                       (["--model_file", str(copy), "--checkpoints", "all", "--out", "x.json"], "drop --out"),
                       (["--model_file", str(empty), "--checkpoints", "all"], "has no checkpoints")):
        assert main(["eval", *args]) == 2
        assert said in capsys.readouterr().err


def test_every_saved_form_says_the_samples_trained_on_and_an_older_export_none(run, tmp_path):
    cfg = checkpoint.load_run_config(run / "run")
    env, learner = build(cfg)
    shapes = policy_shapes(learner, env)
    batch = cfg.train.num_envs * cfg.agent.steps_per_iter
    for source, samples in (("run", 2 * batch), ("run/checkpoints/1", batch), ("policy.npz", 2 * batch),
                            ("learner", 2 * batch)):
        assert learner_state.read(run / source, shapes).samples == samples, source
    with np.load(run / "policy.npz") as data:  # as exported before the samples were recorded
        np.savez(tmp_path / "older.npz", **{k: data[k] for k in data.files if k != "samples"})
    assert learner_state.read(tmp_path / "older.npz", shapes).samples is None


def test_onnx_actions_match_jax(run):
    import onnxruntime

    _, env, learner, _, policy = load_trained(run / "policy.npz")
    norm = policy.obs_norm
    # observations around the normaliser's statistics, some far enough out to be clipped at +-10 std
    obs = np.asarray(norm.mean + norm.std * 12.0 * np.random.default_rng(0).standard_normal((64, env.obs_size)),
                     np.float32)
    expected = np.asarray(learner.policy_mean(policy.actor_params, policy.obs_norm, obs))
    session = onnxruntime.InferenceSession(str(run / "policy.onnx"), providers=["CPUExecutionProvider"])
    (actions,) = session.run(None, {"obs": obs})
    assert actions.shape == (64, env.action_size)
    np.testing.assert_allclose(actions, expected, atol=1e-5, rtol=0)
    assert np.abs(expected).max() > 1e-3  # not trivially zero


def test_a_bad_model_file_is_one_line_and_exit_2(run, tmp_path, capsys):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    for bad in ("other.npz", "notes.txt", "empty", "missing.npz"):
        assert main(["test", "--model_file", str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "not a run directory, a run's checkpoint" in err
    assert main(["eval", "--model_file", str(run / "policy.onnx")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["export", str(run / "policy.npz"), "--out", str(tmp_path / "l"), "--format", "learner"]) == 2
    assert "holds no critic" in capsys.readouterr().err


# -- the learner state and --init_from --------------------------------------------------------------
@pytest.mark.parametrize("source", ["run", "learner"])
def test_init_from_continues_the_saved_learner_with_fresh_replay_and_environments(run, tmp_path, source):
    """Zero iterations from --init_from: the new run's checkpoint is the state it starts from."""
    out = tmp_path / "continued"
    assert main(["train", "amp_humanoid_smoke", "--out_dir", str(out), "--init_from", str(run / source),
                 "--max_iterations", "0"] + SMOKE_ARGS) == 0
    started, fresh = _full_state(out)
    saved, _ = _full_state(run / "run")
    assert int(started.iteration) == 2 and float(started.samples) == 2 * 16 * 4
    for field in learner_state.LEARNER_FIELDS:  # parameters, optimiser states, normalisers, counters
        _assert_same(getattr(started, field), getattr(saved, field))
    assert float(started.obs_norm.count) > 0 and int(saved.replay.count) > 0
    for field in ("replay", "env_state", "episode_return", "episode_length"):
        _assert_same(getattr(started, field), getattr(fresh, field))
    assert int(started.replay.count) == 0
    _assert_same(started.key, jax.random.fold_in(fresh.key, 2))


def test_a_networks_only_learner_state_continues_with_fresh_optimisers(run, tmp_path, capsys):
    """export --format learner --networks_only (what a GPU session brings back): half the size; --init_from
    takes its networks, normalisers and counters, and the optimisers start fresh."""
    nets = tmp_path / "nets"
    assert main(["export", str(run / "run"), "--out", str(nets), "--format", "learner", "--networks_only"]) == 0
    full_bytes = sum(f.stat().st_size for f in (run / "learner").glob("*.npz"))
    nets_bytes = sum(f.stat().st_size for f in nets.glob("*.npz"))
    assert 0.45 < nets_bytes / full_bytes < 0.55  # SGD with momentum: one trace per parameter
    out = tmp_path / "continued"
    assert main(["train", "amp_humanoid_smoke", "--out_dir", str(out), "--init_from", str(nets),
                 "--max_iterations", "0"] + SMOKE_ARGS) == 0
    assert "initialised the networks (fresh optimisers) and normalisers" in capsys.readouterr().out
    started, fresh = _full_state(out)
    saved, _ = _full_state(run / "run")
    for field in learner_state.NETWORK_FIELDS:
        _assert_same(getattr(started, field), getattr(saved, field))
    for field in ("actor_opt", "critic_opt", "disc_opt"):
        _assert_same(getattr(started, field), getattr(fresh, field))
    assert main(["export", str(run / "run"), "--out", str(tmp_path / "p.npz"), "--networks_only"]) == 2
    assert "--networks_only is for --format learner" in capsys.readouterr().err


def test_init_from_an_exported_policy_sets_actor_and_discriminator_only(run, tmp_path, capsys):
    out = tmp_path / "finetune"
    assert main(["train", "amp_humanoid_smoke", "--out_dir", str(out), "--init_from", str(run / "policy.npz"),
                 "--max_iterations", "0"] + SMOKE_ARGS) == 0
    assert "the critic, the optimiser states and the counters start fresh" in capsys.readouterr().out
    started, fresh = _full_state(out)
    saved, _ = _full_state(run / "run")
    for field in learner_state.POLICY_FIELDS:
        _assert_same(getattr(started, field), getattr(saved, field))
    for field in ("critic_params", "actor_opt", "critic_opt", "disc_opt", "iteration", "samples"):
        _assert_same(getattr(started, field), getattr(fresh, field))


def test_init_from_refuses_another_case_shape_and_resume(run, tmp_path, capsys):
    out = str(tmp_path / "x")
    assert main(["train", "amp_humanoid_smoke", "--out_dir", out, "--init_from", str(run / "learner"),
                 "--set", "agent.hidden_sizes=[32]"] + SMOKE_ARGS) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not fit this case" in err
    assert "saved: observations 140, discriminator observations 1420, actions 28, hidden layers [128, 64]" in err
    assert "this case: observations 140, discriminator observations 1420, actions 28, hidden layers [32]" in err
    assert main(["train", "amp_humanoid_smoke", "--out_dir", out, "--init_from", str(run / "run"),
                 "--set", "agent.actor_optimizer.type=adam"] + SMOKE_ARGS) == 2
    assert "does not fit this case (actor_opt/" in capsys.readouterr().err
    assert main(["train", "amp_humanoid_smoke", "--out_dir", out, "--init_from", str(run / "run"), "--resume"]) == 2
    assert "--init_from" in capsys.readouterr().err
    assert not (tmp_path / "x" / "config.yaml").exists()


def test_learner_state_parts_stay_under_the_part_size_and_round_trip(tmp_path):
    """The full-size humanoid (hidden 1024, 512; SGD momentum): its learner state is 2 x 3.33M float32
    (25.4 MiB), written as two .npz parts of at most PART_BYTES (15 MiB) each, and read back exactly."""
    cfg = load_config(CONFIG_DIR / "amp_humanoid.yaml", {"train.num_envs": 2})
    env, learner = build(cfg)
    shapes = jax.eval_shape(lambda: init_train_state(learner, env, 0))
    rng = np.random.default_rng(0)
    learner_shapes = {field: getattr(shapes, field) for field in learner_state.LEARNER_FIELDS}
    arrays = learner_state.leaves(jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(s.dtype), learner_shapes))
    params = sum(v.size for k, v in arrays.items() if k.split("/")[0].endswith("_params"))
    assert 3.3e6 < params < 3.4e6
    files = learner_state.save(tmp_path / "state", cfg, arrays)
    parts = [f for f in files if f.suffix == ".npz"]
    assert len(parts) == 2 and all(f.stat().st_size <= learner_state.PART_BYTES + 2**16 for f in parts)
    assert sum(v.nbytes for v in arrays.values()) == pytest.approx(2 * 4 * params, rel=1e-3)
    saved = learner_state.read(tmp_path / "state", shapes)
    assert saved.leaves.keys() == arrays.keys() and saved.iteration == int(arrays["iteration"])
    for k, v in arrays.items():
        np.testing.assert_array_equal(saved.leaves[k], v)


# -- train.matmul_precision -------------------------------------------------------------------------
def test_matmul_precision_validates_and_is_applied_when_building():
    with pytest.raises(InputError, match="train.matmul_precision: must be one of"):
        load_config(CONFIG_DIR / "amp_humanoid_smoke.yaml", {"train.matmul_precision": "tf32"})
    try:
        for precision in ("default", "high", "highest"):
            build_env(load_config(CONFIG_DIR / "amp_go2.yaml", {"train.matmul_precision": precision}))
            assert jax.config.jax_default_matmul_precision == precision
    finally:
        jax.config.update("jax_default_matmul_precision", "highest")


def test_export_refuses_a_wrong_suffix_or_format(run, tmp_path):
    with pytest.raises(InputError, match="--format onnx writes a .onnx file"):
        export.export(run / "run", tmp_path / "p.npz", "onnx")
    with pytest.raises(InputError, match="--format must be one of"):
        export.export(run / "run", tmp_path / "p.npz", "pt")
