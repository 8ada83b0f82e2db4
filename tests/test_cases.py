"""Every case in configs/ builds its environment, trains a few tiny iterations on CPU, checkpoints,
restores and runs test mode."""

import jax
import numpy as np
import pytest
import yaml

from amp_jax.catalog import CONFIG_DIR, PRESET_DIR, case_names, case_path, preset_names
from amp_jax.config import dotted_keys, load_config, to_dict
from amp_jax.envs.observations import DISC_FEATURES
from amp_jax.errors import InputError
from amp_jax.eval import report as eval_report
from amp_jax.learning.train_step import init_train_state, make_train_step
from amp_jax.training import checkpoint
from amp_jax.training.build import build

PRESETS = tuple(f"_{p}" for p in preset_names())
# The nine cases, and one case with a preset (the others differ from theirs only in the preset's keys:
# test_a_case_with_a_preset_is_the_case_with_the_presets_keys).
CASES = [c for c in case_names() if not c.endswith("_smoke") and not c.endswith(PRESETS)] + ["amp_humanoid_fast"]
TINY = {
    "train.num_envs": 2,
    "agent.steps_per_iter": 4,
    "agent.hidden_sizes": [16],
    "agent.disc_buffer_size": 16,
    "agent.disc_replay_samples": 2,
    "env.episode_length": 0.2,  # 6 control steps, so test mode finishes episodes quickly
}
# Observation sizes per case (MimicKit's formulas, reference section 1.8).
EXPECTED_SIZES = {
    "amp_humanoid": (28, 140, 1420),
    "amp_location_humanoid": (28, 142, 1420),
    "amp_steering_humanoid": (28, 145, 1420),
    "amp_location_humanoid_sword_shield": (31, 160, 1600),
    "amp_steering_humanoid_sword_shield": (31, 163, 1600),
    "amp_smpl": (69, 235, 2370),
    "amp_g1": (29, 1 + 6 + 3 + 3 + 6 * 30 + 29 + 15, 10 * (3 + 6 + 6 * 30 + 15 + 3 + 3 + 29)),
    "amp_go2": (12, 1 + 6 + 3 + 3 + 6 * 16 + 12 + 12, 10 * (3 + 6 + 6 * 16 + 12 + 3 + 3 + 12)),
    "amp_pi_plus": (22, 1 + 6 + 3 + 3 + 6 * 22 + 22 + 12, 10 * (3 + 6 + 6 * 22 + 12 + 3 + 3 + 22)),
}


@pytest.mark.parametrize("case", CASES)
def test_case_trains_checkpoints_and_tests(case, tmp_path):
    cfg = load_config(CONFIG_DIR / f"{case}.yaml", TINY)
    env, learner = build(cfg)
    if case in EXPECTED_SIZES:
        assert (env.action_size, env.obs_size, env.disc_obs_size) == EXPECTED_SIZES[case]
    train_step = make_train_step(learner, env)
    state = init_train_state(learner, env, cfg.train.seed)
    for _ in range(2):
        state, metrics = train_step(state)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    if cfg.agent.task_reward_weight > 0:
        assert float(metrics["task_reward_mean"]) > 0.0

    mgr = checkpoint.manager(tmp_path)
    checkpoint.save(mgr, 2, state)
    step, restored = checkpoint.restore(mgr, init_train_state(learner, env, cfg.train.seed + 1))
    assert step == 2
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    report = eval_report.eval_report(learner, env, restored, num_episodes=2, num_envs=2)
    check_report_schema(report, env)
    assert report["episodes"] >= 2
    assert 1 <= report["mean_episode_length"] <= env.episode_steps
    assert (report["kick"] is not None) == case.startswith("amp_humanoid")  # the spinkick and its preset
    assert (report["task"] is not None) == (cfg.env.task != "none")
    if cfg.env.task == "location":
        assert {"location_success_rate", "location_mean_time_to_reach"} <= set(report["task"])
    if cfg.env.task == "steering":
        assert {"mean_steering_velocity_error", "mean_steering_facing_error"} <= set(report["task"])


REPORT_FIELDS = {"bar": dict, "episodes": int, "num_envs": int, "seed": int, "mean_episode_length": float,
                 "episode_steps": int, "fall_rate": float, "mean_style_reward": float, "physics": dict,
                 "root_speed": dict, "motion_matching": dict, "kick": (dict, type(None)), "task": (dict, type(None)),
                 "style_tells": (dict, type(None))}
MATCHING_FIELDS = {"stay": float, "cover": float, "clip_frame_step": float, "near": float, "policy_frames": int,
                   "reference_frames": int, "spread": dict}
KICK_FIELDS = {"foot": str, "clip_peak_height": float, "clip_spin": float, "peak_height_mean": (float, type(None)),
               "spin_mean": (float, type(None)), "kick_rate": float, "kick_fraction": float}


def check_report_schema(report, env):
    """The `amp-jax eval` report's fields and their types and ranges (the JSON schema users parse)."""
    parts = [(REPORT_FIELDS, report), (MATCHING_FIELDS, report["motion_matching"])]
    if report["kick"] is not None:
        parts.append((KICK_FIELDS, report["kick"]))
    for fields, part in parts:
        assert set(part) == set(fields)
        for key, kind in fields.items():
            assert isinstance(part[key], kind), (key, part[key])
    assert 0.0 <= report["fall_rate"] <= 1.0 and report["episode_steps"] == env.episode_steps
    speed = report["root_speed"]
    assert set(speed) == {"policy", "reference"} and speed["policy"] >= 0.0 and speed["reference"] >= 0.0
    mm = report["motion_matching"]
    assert mm["stay"] >= 0.0 and 0.0 <= mm["cover"] <= 1.0 and mm["policy_frames"] >= report["episodes"]
    bar = report["bar"]
    assert bar["passed"] == all(m["passed"] for m in bar["measures"].values())
    tells = report["style_tells"]
    if tells is not None:  # a style reward is >= 0 for every window (both forms, amp_jax.learning.discriminator)
        assert set(tells) == {"policy", "data", "data_with_policy"}
        assert tuple(tells["data_with_policy"]) == DISC_FEATURES
        assert min(tells["policy"], tells["data"], *tells["data_with_policy"].values()) >= 0.0
    assert {"fall_rate", "mm_stay", "mm_cover"} <= set(bar["measures"])
    # The speed bar judges the style-only walks and pace, which all travel (the spinkick has its kick, task cases
    # their task).
    assert ("root_speed" in bar["measures"]) == (report["kick"] is None and report["task"] is None)


@pytest.mark.parametrize("case", [c for c in CASES if not c.endswith(PRESETS)])
def test_a_case_with_a_preset_is_the_case_with_the_presets_keys(case):
    """CASE_fast resolves to CASE with configs/presets/fast.yaml's keys (then those of its section for CASE, if
    any) given as overrides, renamed and its description extended; a case with a preset that does not exist is
    not found."""
    preset = yaml.safe_load((PRESET_DIR / "fast.yaml").read_text())
    description = preset.pop("description")
    own = preset.pop("cases", {}).get(case, {})
    expected = to_dict(load_config(CONFIG_DIR / f"{case}.yaml", {**dotted_keys(preset), **dotted_keys(own)}))
    got = to_dict(load_config(case_path(f"{case}_fast")))
    assert got.pop("case") == f"{case}_fast" and got.pop("description") == f"{expected.pop('description')}; {description}"
    del expected["case"]
    assert got == expected
    with pytest.raises(InputError, match="config file not found"):
        load_config(case_path(f"{case}_slow"))


def test_a_presets_case_section_sets_its_keys_on_that_case_only(tmp_path, monkeypatch):
    (tmp_path / "p.yaml").write_text("agent: {actor_epochs: 3}\ncases: {amp_go2: {agent: {discount: 0.9}}}\n")
    monkeypatch.setattr("amp_jax.catalog.PRESET_DIR", tmp_path)
    go2, g1 = load_config(case_path("amp_go2_p")).agent, load_config(case_path("amp_g1_p")).agent
    assert (go2.actor_epochs, go2.discount) == (3, 0.9) and (g1.actor_epochs, g1.discount) == (3, 0.99)


@pytest.mark.parametrize("cases, error", [
    ("[amp_go2]", "cases: expected a mapping of case names to config keys"),
    ("{amp_go2: 0.9}", "cases: expected a mapping of case names to config keys"),
    ("{amp_go3: {agent: {discount: 0.9}}}", "cases: no such case amp_go3 (the cases: configs/*.yaml)"),
])
def test_a_bad_case_section_of_a_preset_is_refused_naming_the_preset_file(tmp_path, monkeypatch, cases, error):
    (tmp_path / "p.yaml").write_text(f"cases: {cases}\n")
    monkeypatch.setattr("amp_jax.catalog.PRESET_DIR", tmp_path)
    with pytest.raises(InputError) as refused:
        load_config(case_path("amp_g1_p"))
    assert str(refused.value) == f"{tmp_path / 'p.yaml'}: {error}"


def test_a_bad_preset_is_refused_naming_the_case_and_the_preset_file(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("description: broken\nagent: {actor_epochs: 0}\n")
    monkeypatch.setattr("amp_jax.catalog.PRESET_DIR", tmp_path)
    assert "amp_go2_bad" in case_names()
    with pytest.raises(InputError) as refused:
        load_config(case_path("amp_go2_bad"))
    assert str(refused.value) == (f"{CONFIG_DIR / 'amp_go2.yaml'} + {tmp_path / 'bad.yaml'}: "
                                  "agent.actor_epochs: must be positive, got 0")


def test_the_cases_of_a_character_share_its_physics_settings():
    """The MJX settings are tuned per character (BENCHMARKS.md) and checked by tests/test_characters.py
    with the settings of one case per character: every other case of that character must use the same."""
    physics = {}
    for case in CASES + ["amp_humanoid_smoke"]:
        env = load_config(CONFIG_DIR / f"{case}.yaml").env
        physics.setdefault(env.character, set()).add(env.physics)
    assert all(len(settings) == 1 for settings in physics.values()), physics


def test_cases_command_lists_every_case_with_a_description(capsys):
    from amp_jax.cli import main

    assert main(["cases"]) == 0
    listed = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert set(CASES) <= set(listed) and len([c for c in CASES if not c.endswith(PRESETS)]) == 9
    assert {f"{c}_fast" for c in CASES if not c.endswith(PRESETS)} <= set(listed)
    assert all(listed[case].strip() for case in CASES)


def test_cases_command_into_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    lister = subprocess.Popen([sys.executable, "-m", "amp_jax.cli", "cases"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    lister.stdout.close()  # the reader stopped before the first line, as `amp-jax cases | head -0` would
    assert lister.wait(timeout=60) == 1
    assert lister.stderr.read() == b""
