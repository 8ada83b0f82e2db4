"""The config states each fact once and documents itself: every key has its doc and range rule where it is
declared (amp_jax/config.py), `amp-jax config CASE` and `amp-jax train --help` print them, and the case YAMLs
state only what differs from the defaults, resolving to exactly what they resolved to before they were cut
down (tests/data/resolved_configs.json, written from the full YAMLs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from amp_jax.catalog import CONFIG_DIR, case_names
from amp_jax.cli import main
from amp_jax.config import Config, load_config, to_dict
from amp_jax.errors import InputError

CASES = case_names()  # the files of configs/ and each of them with each preset of configs/presets/
CASE_FILES = [c for c in CASES if (CONFIG_DIR / f"{c}.yaml").is_file()]
FROZEN = json.loads((Path(__file__).parent / "data" / "resolved_configs.json").read_text())


def _fields(section, path=""):
    """(dotted key, field, value) of every field, sections included, depth first."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        yield f"{path}{f.name}", f, value
        if dataclasses.is_dataclass(value):
            yield from _fields(value, f"{path}{f.name}.")


LEAF_KEYS = [key for key, _, value in _fields(Config()) if not dataclasses.is_dataclass(value)]


def test_every_key_and_section_has_a_doc():
    undocumented = [key for key, f, _ in _fields(Config()) if not f.metadata.get("doc", "").strip()]
    assert undocumented == []
    assert len(LEAF_KEYS) > 80


def _with_later_keys(frozen: dict, defaults: dict) -> dict:
    """The frozen resolved config plus the keys added to config.py since it was frozen, at their defaults."""
    return {k: _with_later_keys(frozen[k], d) if isinstance(d, dict) and k in frozen else frozen.get(k, d)
            for k, d in defaults.items()}


@pytest.mark.parametrize("case", sorted(FROZEN))  # the files, and amp_humanoid_fast (a file when frozen)
def test_a_case_resolves_as_before_its_yaml_was_cut_to_the_differences(case):
    assert to_dict(load_config(CONFIG_DIR / f"{case}.yaml")) == _with_later_keys(FROZEN[case], to_dict(Config()))


def _leaves(tree: dict, path=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{path}{k}.")
        else:
            yield f"{path}{k}", v


@pytest.mark.parametrize("case", CASE_FILES)
def test_a_case_yaml_states_only_what_differs_from_the_defaults(case):
    stated = dict(_leaves(yaml.safe_load((CONFIG_DIR / f"{case}.yaml").read_text())))
    defaults = dict(_leaves(to_dict(Config())))
    assert stated["case"] == case and stated["description"]
    assert [k for k, v in stated.items() if k != "case" and defaults[k] == v] == []


@pytest.mark.parametrize("case", CASES)
def test_config_command_prints_the_resolved_config_as_yaml(capsys, case):
    assert main(["config", case]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == to_dict(load_config(CONFIG_DIR / f"{case}.yaml"))


def test_config_command_comments_each_key_with_its_doc_and_marks_what_differs(capsys):
    assert main(["config", "amp_go2", "--set", "agent.discount=0.9"]) == 0
    out = capsys.readouterr().out
    resolved = to_dict(load_config(CONFIG_DIR / "amp_go2.yaml", {"agent.discount": 0.9}))
    assert yaml.safe_load(out) == resolved
    lines = out.splitlines()
    i = lines.index("  discount: 0.9  # default: 0.99")
    assert lines[i - 1] == "  # Discount factor gamma. [in [0, 1]]"
    assert "  action_std: 0.1  # default: 0.05" in lines
    assert "    solver_iterations: 1  # default: 2" in lines  # under env.physics
    assert "  td_lambda: 0.95" in lines  # as the default: no mark
    assert "  actor_optimizer:" in lines and "    learning_rate: 0.0002  # default: 0.0001" in lines


def test_config_command_refuses_a_bad_override_in_one_line(capsys):
    assert main(["config", "amp_humanoid", "--set", "train.num_envs=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("amp-jax: error: ") and err.endswith("train.num_envs: must be positive, got 0")


def test_train_help_lists_every_key_with_its_default(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line for line in lines if line.startswith("  ") and " = " in line}
    assert sorted(listed) == sorted(LEAF_KEYS)
    assert "agent.disc_optimizer.weight_decay = 0.0001 [>= 0]" in listed["agent.disc_optimizer.weight_decay"]
    assert "train.seed = 0 [>= 0, < 2**32]" in listed["train.seed"]
    assert "env.physics: MuJoCo (MJX) simulation settings." in lines


# key, bad value, the error after the config file's name (the same messages as before the rules moved onto
# the fields)
BAD_VALUES = [
    ("env.episode_length", 0, "env.episode_length: must be positive, got 0.0"),
    ("env.physics.sim_freq", -120, "env.physics.sim_freq: must be positive, got -120"),
    ("agent.actor_optimizer.learning_rate", 0, "agent.actor_optimizer.learning_rate: must be positive, got 0.0"),
    ("env.steering.tar_change_time_min", 0, "env.steering.tar_change_time_min: must be positive, got 0.0"),
    ("agent.hidden_sizes", [64, 0], "agent.hidden_sizes[1]: must be positive, got 0"),
    ("train.max_samples", 0, "train.max_samples: must be positive, got 0"),
    ("env.physics.floor_friction", -0.5, "env.physics.floor_friction: must be >= 0, got -0.5"),
    ("agent.disc_optimizer.weight_decay", -1e-4, "agent.disc_optimizer.weight_decay: must be >= 0, got -0.0001"),
    ("env.location.dist_threshold", -1, "env.location.dist_threshold: must be >= 0, got -1.0"),
    ("train.seed", -1, "train.seed: must be >= 0, got -1"),
    ("train.seed", 2**32, "train.seed: must be below 2**32, got 4294967296"),
    ("agent.discount", 1.5, "agent.discount: must be in [0, 1], got 1.5"),
    ("agent.td_lambda", -0.1, "agent.td_lambda: must be in [0, 1], got -0.1"),
    ("agent.critic_optimizer.momentum", 2, "agent.critic_optimizer.momentum: must be in [0, 1], got 2.0"),
    ("env.steering.tar_speed_min", 6.0,
     "env.steering.tar_speed_min: must not exceed env.steering.tar_speed_max (6.0 > 5.0)"),
    ("env.physics.sim_freq", 100, "env.physics.sim_freq: must be a multiple of env.physics.control_freq"),
    ("env.episode_length", 0.01, "env.episode_length: 0.01 s is shorter than one control step"),
]


@pytest.mark.parametrize("key, value, message", BAD_VALUES, ids=[f"{k}={v}" for k, v, _ in BAD_VALUES])
def test_the_range_rules_reject_bad_values(key, value, message):
    """A bad value given as an override is blamed on it (`--set KEY`), not on the valid case file."""
    path = CONFIG_DIR / "amp_humanoid.yaml"
    with pytest.raises(InputError) as error:
        load_config(path, {key: value})
    assert str(error.value) == f"--set {key}: {message.removeprefix(f'{key}: ')}"


def test_the_range_rules_accept_their_bounds():
    cfg = load_config(CONFIG_DIR / "amp_humanoid.yaml", {"agent.discount": 1.0, "agent.td_lambda": 0.0,
                                                         "train.seed": 2**32 - 1, "env.physics.floor_friction": 0})
    assert (cfg.agent.discount, cfg.agent.td_lambda, cfg.train.seed) == (1.0, 0.0, 2**32 - 1)


def test_a_partial_section_keeps_the_enclosing_default():
    """agent.disc_optimizer defaults to weight decay 1e-4 (OptimizerConfig's own default is 0): setting only
    its learning rate keeps that."""
    cfg = load_config(CONFIG_DIR / "amp_humanoid.yaml", {"agent.disc_optimizer.learning_rate": 1e-3})
    opt = cfg.agent.disc_optimizer
    assert (opt.type, opt.learning_rate, opt.momentum, opt.weight_decay) == ("sgd", 1e-3, 0.9, 1e-4)
