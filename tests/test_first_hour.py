"""A new user's first hour: every bad option, value or path is refused before any work with one line and
exit code 2 (and nothing written); a resume keeps its run's settings; damaged checkpoints are skipped with
one line; no noise from MJX's imports or ffmpeg's fork; --help describes every command and option.

All run in-process through amp_jax.cli.main except the noise test (a fresh interpreter); nothing compiles."""

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

from amp_jax import __version__
from amp_jax.catalog import CONFIG_DIR
from amp_jax.cli import _parser, main
from amp_jax.config import load_config, to_dict
from amp_jax.errors import InputError
from amp_jax.paths import check_output_file
from amp_jax.training import checkpoint

from conftest import REPO_ROOT

SMOKE = CONFIG_DIR / "amp_humanoid_smoke.yaml"
CLIP = str(REPO_ROOT / "motions/humanoid/humanoid_spinkick.npz")


def _refused(capfd, argv, *expected) -> str:
    """main(argv) exits 2 with one `amp-jax: error:` line on stderr holding the expected texts."""
    code = main([str(a) for a in argv])
    err = capfd.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("amp-jax: error: ") and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run_dir(tmp_path):
    """A 16-environment smoke run's folder: its config.yaml and one (fake) checkpoint."""
    run = tmp_path / "run"
    checkpoint.save_config(run, load_config(SMOKE))
    (run / "checkpoints" / "5").mkdir(parents=True)
    (run / "checkpoints" / "5" / "state").write_bytes(b"\x00" * 64)
    return run


# -- 1. a resume keeps its run's settings -----------------------------------------------------------------------
RESUME_CHANGES = {  # options -> the differences the error line names
    "fewer environments": (["--num_envs", "8"], ["train.num_envs: 16 -> 8"]),
    "learning rate x100": (["--set", "agent.actor_optimizer.learning_rate=0.01"],
                           ["agent.actor_optimizer.learning_rate: 0.0001 -> 0.01"]),
    "seed and network": (["--seed", "3", "--set", "agent.hidden_sizes=[64]"],
                         ["agent.hidden_sizes: [128, 64] -> [64]", "train.seed: 0 -> 3"]),
    "with an allowed change": (["--max_samples", "9999", "--set", "env.episode_length=5"],
                               ["env.episode_length: 10.0 -> 5.0"]),
}


@pytest.mark.parametrize("case", list(RESUME_CHANGES))
def test_resume_with_changed_settings_is_refused_before_anything_is_written(run_dir, capfd, case):
    options, differences = RESUME_CHANGES[case]
    before = _snapshot(run_dir)
    err = _refused(capfd, ["train", "amp_humanoid_smoke", "--out_dir", run_dir, "--resume", *options],
                   *differences, "--out_dir")
    assert "max_samples" not in err  # a resumed run may change it
    assert _snapshot(run_dir) == before  # config.yaml and the checkpoint byte for byte
    assert not capfd.readouterr().out


def test_resume_may_change_when_it_stops_and_how_often_it_saves_and_records_that(run_dir, capfd, monkeypatch):
    """Allowed changes pass the check, are printed, and are recorded in config.yaml once the run is built."""
    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(checkpoint, "manager", stop)  # called right after the config is recorded
    with pytest.raises(Stop):
        main(["train", "amp_humanoid_smoke", "--out_dir", str(run_dir), "--resume", "--max_samples", "9999",
              "--set", "train.iters_per_output=7", "--logger", "txt"])
    out = capfd.readouterr().out
    assert "resuming with train.max_samples: 2560 -> 9999" in out and "train.iters_per_output: 5 -> 7" in out
    recorded = checkpoint.load_run_config(run_dir).train
    assert (recorded.max_samples, recorded.iters_per_output, recorded.num_envs) == (9999, 7, 16)


def test_resume_takes_the_runs_own_settings_without_repeating_its_options(tmp_path, capfd, monkeypatch):
    """A run started with --num_envs 8 --seed 3 resumes from `train CASE --out_dir RUN --resume` alone, or
    from `train --out_dir RUN --resume` without the case; naming another case is refused."""
    run = tmp_path / "run"
    checkpoint.save_config(run, load_config(SMOKE, {"train.num_envs": 8, "train.seed": 3}))
    (run / "checkpoints" / "5").mkdir(parents=True)
    built = []

    class Stop(Exception):
        pass

    def stop(cfg, run_dir, **kwargs):
        built.append((cfg.train.num_envs, cfg.train.seed, cfg.case))
        raise Stop

    monkeypatch.setattr("amp_jax.training.trainer.train", stop)
    for argv in (["amp_humanoid_smoke"], []):
        with pytest.raises(Stop):
            main(["train", *argv, "--out_dir", str(run), "--resume"])
    assert built == [(8, 3, "amp_humanoid_smoke")] * 2
    _refused(capfd, ["train", "amp_humanoid", "--out_dir", run, "--resume"], "a run of amp_humanoid_smoke",
             "not amp_humanoid")
    _refused(capfd, ["train", "--out_dir", tmp_path / "nothing", "--resume"], "not a run directory")
    _refused(capfd, ["train", "--resume"], "give a case name")
    _refused(capfd, ["train", "amp_humanoid_smoke", "--out_dir", run], "already holds checkpoints: pass --resume")


def test_a_run_recorded_before_a_setting_existed_keeps_running_without_it(run_dir, capfd, monkeypatch):
    """A config.yaml without env.physics.ball_axis_limits (recorded before per-axis ball limits existed)
    loads with them off, as it was trained; resuming it is not a change, switching them on is refused."""
    recorded = to_dict(load_config(SMOKE))
    del recorded["env"]["physics"]["ball_axis_limits"]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(recorded, sort_keys=False))
    assert checkpoint.load_run_config(run_dir).env.physics.ball_axis_limits is False
    assert checkpoint.resume_changes(run_dir, checkpoint.load_run_config(run_dir)) == []
    _refused(capfd, ["train", "--out_dir", run_dir, "--resume", "--set", "env.physics.ball_axis_limits=true"],
             "env.physics.ball_axis_limits: False -> True")


def test_resume_from_a_config_file_uses_the_files_settings(run_dir, tmp_path, capfd):
    """`train FILE.yaml --resume` (like --config FILE) resumes with FILE's settings: an edited file is refused."""
    edited = tmp_path / "edited.yaml"
    edited.write_text(SMOKE.read_text().replace("num_envs: 16", "num_envs: 32"))
    for argv in ([edited], ["--config", edited]):
        _refused(capfd, ["train", *argv, "--out_dir", run_dir, "--resume"], "train.num_envs: 16 -> 32")


# -- 2. damaged checkpoints --------------------------------------------------------------------------------------
def _tear(run: Path, step: int, where: str) -> None:
    for f in (run / "checkpoints" / str(step) / where).rglob("*"):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


DAMAGE = {  # torn steps (and where) -> the step restored, or None: no readable checkpoint
    "newest data torn": ({2: "default/d"}, 1),
    "newest metadata torn": ({2: ""}, 1),
    "all torn": ({1: "default/d", 2: "default/d"}, None),
}


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # TensorStore's closed-loop errors
@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_checkpoints_are_skipped_with_one_short_line(tmp_path, capfd, case):
    torn, expected = DAMAGE[case]
    template = {f"w{i}": np.zeros((256, 1024), np.float32) for i in range(3)}
    mgr = checkpoint.manager(tmp_path)
    for step in (1, 2):
        checkpoint.save(mgr, step, {k: v + step for k, v in template.items()})
    for step, where in torn.items():
        _tear(tmp_path, step, where)
    capfd.readouterr()
    if expected is None:
        with pytest.raises(InputError) as e:
            checkpoint.restore(checkpoint.manager(tmp_path), template)
        message = str(e.value)
        assert "no readable checkpoint" in message and "step 2: " in message and "step 1: " in message
        assert "tensorstore_spec" not in message and len(message) < 400 and "\n" not in message
        assert not capfd.readouterr().err.strip()  # no Orbax logs or tracebacks
    else:
        step, restored = checkpoint.restore(checkpoint.manager(tmp_path), template)
        assert step == expected and all(np.all(np.asarray(v) == expected) for v in restored.values())
        err = capfd.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "checkpoint step 2" in err and f"using step {expected}" in err, err
        assert "tensorstore_spec" not in err and len(err) < 300


def test_late_closed_loop_errors_of_a_damaged_read_are_dropped_and_others_kept(tmp_path, monkeypatch):
    """Reads still in flight when a damaged step fails call into Orbax's closed event loop later, after
    `restore` returned (CI once saw two such errors at a test's teardown): from the first restore on, the
    process's unraisable hook drops exactly those."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(info.exc_value))
    mgr = checkpoint.manager(tmp_path)
    checkpoint.save(mgr, 1, {"w": np.ones(3, np.float32)})
    checkpoint.restore(mgr, {"w": np.zeros(3, np.float32)})
    late = [RuntimeError("Event loop is closed"), RuntimeError("another"), ValueError("Event loop is closed")]
    for error in late:
        sys.unraisablehook(types.SimpleNamespace(exc_type=type(error), exc_value=error, exc_traceback=None,
                                                 err_msg=None, object=None))
    # (a late error of an earlier test's damaged read may reach the recorder before the restore: not counted)
    assert [e for e in seen if any(e is x for x in late)] == late[1:]

# -- 4. output paths are checked before the work ----------------------------------------------------------------
def _read_only_folder(tmp_path) -> Path:
    """A folder this process cannot write in (chmod 555, or /sys for root, whom modes do not stop)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        return Path("/sys")
    return folder


COMMANDS = {  # command line with OUT for the output path; its option; the extension it writes
    "eval": (["eval", "--model_file", "RUN", "--out", "OUT"], "--out", ".json"),
    "render": (["render", "--model_file", "RUN", "--out", "OUT"], "--out", ".mp4"),
    "view-motion": (["view-motion", CLIP, "--out", "OUT"], "--out", ".mp4"),
    "retarget": (["retarget", CLIP, "--target", "g1", "--out", "OUT"], "--out", ".npz"),
    "inspect": (["inspect", CLIP, "--json", "OUT"], "--json", ".json"),
    "import": (["import", CLIP, "--format", "mimickit", "--out", "OUT"], "--out", ".npz"),
    "bench": (["bench", "--json", "OUT"], "--json", ".json"),
    "plot": (["plot", "RUN", "--out", "OUT"], "--out", ""),
}
BAD_PATHS = {  # how the path is made from (tmp_path, extension) -> a text of the error line
    "read-only folder": (lambda t, ext: _read_only_folder(t) / f"out{ext}", "cannot write"),
    "no extension": (lambda t, ext: t / "out", "expected a file name ending in"),
    "unknown extension": (lambda t, ext: t / "out.avi", "expected a file name ending in"),
    "name too long": (lambda t, ext: t / ("x" * 300 + ext), "longer than 255"),
    "a file as folder": (lambda t, ext: t / "file.txt" / f"out{ext}", "file.txt is a file, not a folder"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("bad", list(BAD_PATHS))
def test_bad_output_paths_are_refused_before_the_work(run_dir, tmp_path, capfd, command, bad):
    argv, option, ext = COMMANDS[command]
    make, expected = BAD_PATHS[bad]
    if ext == "" and bad in ("no extension", "unknown extension"):
        pytest.skip("a folder has no extension")
    (tmp_path / "file.txt").write_text("")
    out = make(tmp_path, ext)
    argv = [str(out) if a == "OUT" else str(run_dir) if a == "RUN" else a for a in argv]
    (run_dir / "metrics.jsonl").write_text('{"iteration": 1}\n')
    before = _snapshot(tmp_path) if bad != "read-only folder" else None
    _refused(capfd, argv, option, expected)
    if before is not None:
        assert _snapshot(tmp_path) == before


def test_missing_output_folders_are_created_and_a_folder_is_not_a_file(tmp_path):
    out = check_output_file(tmp_path / "a" / "b" / "video.mp4", (".mp4", ".gif"), "--out")
    assert out.parent.is_dir() and not out.exists()
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(InputError, match="--out .*folder.mp4: is a folder"):
        check_output_file(tmp_path / "folder.mp4", (".mp4",), "--out")


# -- 5. options are validated where they are accepted and refused where they do not apply -----------------------
OPTIONS = {  # command line -> texts of the error line
    "view-motion --set unknown key": (["view-motion", CLIP, "--out", "OUT.mp4", "--set", "no.such.key=1"],
                                      ["--set no.such.key", "unknown config key"]),
    "view-motion --logger": (["view-motion", CLIP, "--out", "OUT.mp4", "--logger", "wandb"],
                             ["view-motion does not take --logger wandb"]),
    "view-motion --num_envs": (["view-motion", CLIP, "--out", "OUT.mp4", "--num_envs", "7"],
                               ["view-motion does not take --num_envs 7"]),
    "view-motion missing clip": (["view-motion", "nothing.npz", "--out", "OUT.mp4"], ["nothing.npz", "not found"]),
    "test --set": (["test", "--model_file", "RUN", "--set", "train.num_envs=0"], ["test does not take --set"]),
    "eval --set": (["eval", "--model_file", "RUN", "--set", "train.num_envs=0"], ["eval does not take --set"]),
    "case and --config": (["train", "amp_humanoid_smoke", "--config", str(SMOKE), "--out_dir", "OUT"],
                          ["not both"]),
    "train --set out of range": (["train", "amp_humanoid_smoke", "--out_dir", "OUT", "--set", "train.num_envs=0"],
                                 ["error: --set train.num_envs: ", "must be positive"]),
    "train --num_envs out of range": (["train", "amp_humanoid_smoke", "--out_dir", "OUT", "--num_envs", "0"],
                                      ["error: --num_envs: ", "must be positive"]),
    "train --visualize true": (["train", "amp_humanoid_smoke", "--out_dir", "OUT", "--visualize", "true"],
                               ["training is headless"]),
    "test --visualize maybe": (["test", "--model_file", "RUN", "--visualize", "maybe"], ["--visualize"]),
}


@pytest.mark.parametrize("case", list(OPTIONS))
def test_options_are_checked_where_accepted_and_refused_elsewhere(run_dir, tmp_path, capfd, case):
    argv, expected = OPTIONS[case]
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("RUN", str(run_dir)) for a in argv]
    before = _snapshot(tmp_path)
    err = _refused(capfd, argv, *expected)
    assert "amp_humanoid_smoke.yaml" not in err and "amp_humanoid.yaml" not in err  # not the shipped file's fault
    assert _snapshot(tmp_path) == before


# -- 8. values are checked ---------------------------------------------------------------------------------------
VALUES = {  # command line -> texts of the error line
    "no test episodes": (["test", "--model_file", "RUN", "--test_episodes", "0"], ["--test_episodes"]),
    "no test environments": (["test", "--model_file", "RUN", "--num_envs", "0"], ["--num_envs"]),
    "huge width": (["render", "--model_file", "RUN", "--out", "OUT.mp4", "--width", "100000"], ["--width", "4096"]),
    "zero width": (["render", "--model_file", "RUN", "--out", "OUT.mp4", "--width", "0"], ["--width"]),
    "odd height": (["view-motion", CLIP, "--out", "OUT.mp4", "--height", "101"], ["--height", "even"]),
    "tiles too wide": (["render", "--model_file", "RUN", "--out", "OUT.mp4", "--width", "4096", "--num_envs", "8"],
                       ["--num_envs 8"]),
    "zero camera scale": (["view-motion", CLIP, "--out", "OUT.mp4", "--camera_scale", "0"], ["--camera_scale"]),
    "infinite seconds": (["render", "--model_file", "RUN", "--out", "OUT.mp4", "--seconds", "inf"], ["--seconds"]),
}


@pytest.mark.parametrize("case", list(VALUES))
def test_bad_values_are_refused_before_the_work(run_dir, tmp_path, capfd, case):
    argv, expected = VALUES[case]
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("RUN", str(run_dir)) for a in argv]
    _refused(capfd, argv, *expected)
    assert not (tmp_path / "out.mp4").exists()


# -- 6. no noise -------------------------------------------------------------------------------------------------
NOISE = {  # command (MuJoCo Warp's packages made unimportable, as where they are not installed) -> noise
    "view-motion": (["view-motion", CLIP, "--out", "OUT", "--width", "32", "--height", "32"],
                    ["Failed to import", "os.fork()"]),
}


@pytest.mark.parametrize("case", list(NOISE))
def test_commands_print_no_import_or_fork_warnings(tmp_path, case):
    argv, noise = NOISE[case]
    argv = [str(tmp_path / "v.mp4") if a == "OUT" else a for a in argv]
    script = ("import sys; sys.modules['warp'] = None; from amp_jax.cli import main; "
              f"sys.exit(main({argv!r}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    for text in noise:
        assert text not in done.stdout and text not in done.stderr, done.stdout + done.stderr
    assert f"wrote {tmp_path / 'v.mp4'}" in done.stdout and (tmp_path / "v.mp4").stat().st_size > 0


# -- 10. --help --------------------------------------------------------------------------------------------------
def _subcommands():
    parser = _parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("command", list(_subcommands()))
def test_help_describes_every_command_and_option(command, capsys):
    sub = _subcommands()[command]
    assert sub.description, command
    for action in sub._actions:
        assert action.help, (command, action.dest)
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert sub.description.split()[0] in text
    for action in sub._actions:  # defaults are shown when there is one
        if action.default not in (None, False, [], "==SUPPRESS==") and action.option_strings:
            assert f"(default: {action.default})" in " ".join(text.split()), (command, action.dest)


def test_top_level_help_lists_mimickit_style_and_version(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--mode train|test" in text and "--arg_file FILE" in text and "--version" in text
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"amp-jax {__version__}"
