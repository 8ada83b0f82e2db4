"""Typed, validated run configuration: one YAML file per case, overridable from the command line.

Every setting is declared once, below, with its default (MimicKit's amp_humanoid value), its doc and its
range rule; a case YAML states only what differs. Loading checks unknown keys, types, the range rules and
a few cross-field checks, and names the key path in its error (amp_jax.errors.InputError).
`amp-jax config CASE` prints a case's resolved config with these docs (amp_jax.config_text).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from amp_jax.catalog import case_path, config_sources, resolve_path
from amp_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class Rule:
    """A range rule on a numeric setting (on each item of a list; a null value is not checked)."""

    holds: Callable[[Any], bool]
    requirement: str  # the error: "<key>: <requirement>, got <value>"
    label: str  # for the docs


POSITIVE = Rule(lambda v: v > 0, "must be positive", "> 0")
NON_NEGATIVE = Rule(lambda v: v >= 0, "must be >= 0", ">= 0")
UNIT_INTERVAL = Rule(lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]", "in [0, 1]")
SEED = (NON_NEGATIVE, Rule(lambda v: v < 2**32, "must be below 2**32", "< 2**32"))


def setting(default, doc: str, *, rule: Rule | tuple[Rule, ...] = ()):
    """A config field with its doc (first sentence: a summary for `amp-jax train --help`) and range rule."""
    rules = (rule,) if isinstance(rule, Rule) else tuple(rule)
    return dataclasses.field(default=default, metadata={"doc": doc, "rules": rules})


@dataclasses.dataclass(frozen=True)
class PhysicsConfig:
    """MuJoCo (MJX) simulation settings."""

    sim_freq: int = setting(120, "Physics steps per second (Hz). A multiple of control_freq; MimicKit's Isaac Gym "
                                 "engine: 120.", rule=POSITIVE)
    control_freq: int = setting(30, "Policy actions per second (Hz). Each action's PD targets are held for "
                                    "sim_freq / control_freq physics steps; MimicKit: 30.", rule=POSITIVE)
    solver_iterations: int = setting(2, "MuJoCo Newton solver iterations per physics step. Tuned per character: "
                                        "few, for speed, but enough to stand and track the clip (BENCHMARKS.md, "
                                        "MJX settings per character); MuJoCo's default is 100.", rule=POSITIVE)
    ls_iterations: int = setting(4, "MuJoCo line-search iterations per solver iteration. Tuned per character with "
                                    "solver_iterations; MuJoCo's default is 50.", rule=POSITIVE)
    floor_friction: float = setting(1.0, "Sliding friction of the floor's contacts with the contact bodies. The "
                                         "contacts have condim 3; MimicKit's ground plane: 1.0.", rule=NON_NEGATIVE)
    impl: Literal["jax", "warp"] = setting("jax", "MJX backend: jax (MJX's own) or warp (MuJoCo Warp). Warp needs "
                                                  "pip install -e '.[warp]', an NVIDIA GPU or the CPU, and one "
                                                  "device.")
    jacobian: Literal["auto", "dense", "sparse"] = setting(
        "auto", "MuJoCo's constraint Jacobian: auto, dense or sparse. auto is dense below 60 DoFs (nv, the root's "
                "6 included), sparse from 60 (SMPL).")
    euler_damping: bool = setting(True, "Integrate joint damping (the PD servos' D term) implicitly. Off makes it "
                                        "explicit: faster, but NaN at 120 Hz for every character but Go2 "
                                        "(BENCHMARKS.md).")
    ball_axis_limits: bool = setting(True, "Keep each 3-DoF joint's three exp-map coordinates in their own ranges "
                                           "from the character file, as MimicKit's Isaac Gym engine does (stiff "
                                           "limit springs: amp_jax.envs.joint_limits). Off leaves MuJoCo's one "
                                           "cone, as wide as the widest axis range.")
    self_collision: bool = setting(False, "Limbs collide with each other and with the trunk (explicit pairs, "
                                          "amp_jax.characters.character). MimicKit's default, but about 7x slower physics on "
                                          "the CPU (BENCHMARKS.md), so off.")

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return self.sim_freq // self.control_freq


@dataclasses.dataclass(frozen=True)
class LocationConfig:
    """Reach a point on the ground (MimicKit's TaskLocationEnv defaults)."""

    tar_speed: float = setting(1.0, "Speed toward the target (m/s) that earns the full velocity reward. "
                                    "r_vel = exp(-vel_err_scale * max(0, tar_speed - s)^2), s the root's planar "
                                    "speed toward the target (0 when moving away).", rule=NON_NEGATIVE)
    tar_change_time_min: float = setting(5.0, "Shortest time (s) before a new target is drawn. The time is drawn "
                                              "uniformly in [min, max] at every draw.", rule=POSITIVE)
    tar_change_time_max: float = setting(10.0, "Longest time (s) before a new target is drawn.")
    tar_dist_min: float = setting(0.0, "Nearest new target (m from the root). The distance is drawn uniformly in "
                                       "[min, max], the direction uniformly.", rule=NON_NEGATIVE)
    tar_dist_max: float = setting(10.0, "Farthest new target (m from the root).")
    dist_threshold: float = setting(0.5, "Squared planar distance (m^2) under which the velocity and facing "
                                         "rewards count as met. 0.5 m^2 is within about 0.71 m.", rule=NON_NEGATIVE)
    pos_err_scale: float = setting(0.5, "Scale of the position reward, per m^2. r_pos = exp(-pos_err_scale * "
                                        "squared planar distance to the target).", rule=NON_NEGATIVE)
    vel_err_scale: float = setting(4.0, "Scale of the velocity reward, per (m/s)^2 (see tar_speed).",
                                   rule=NON_NEGATIVE)
    pos_reward_w: float = setting(0.5, "Weight of r_pos in the task reward.")
    vel_reward_w: float = setting(0.4, "Weight of r_vel in the task reward.")
    face_reward_w: float = setting(0.1, "Weight of r_face in the task reward. r_face = max(0, cosine between the "
                                        "character's heading and the direction to the target).")


@dataclasses.dataclass(frozen=True)
class SteeringConfig:
    """Move in a direction at a speed while facing a direction (MimicKit's TaskSteeringEnv defaults)."""

    rand_tar_dir: bool = setting(True, "Draw the target direction uniformly (false: always +x).")
    rand_face_dir: bool = setting(False, "Draw the facing direction independently and uniformly (false: face the "
                                         "target direction). MimicKit's sword-and-shield case: true.")
    tar_speed_min: float = setting(0.5, "Slowest target speed (m/s). The speed is drawn uniformly in [min, max] "
                                        "at every draw.", rule=NON_NEGATIVE)
    tar_speed_max: float = setting(5.0, "Fastest target speed (m/s).")
    tar_change_time_min: float = setting(4.0, "Shortest time (s) before a new target is drawn. The time is drawn "
                                              "uniformly in [min, max] at every draw.", rule=POSITIVE)
    tar_change_time_max: float = setting(7.0, "Longest time (s) before a new target is drawn.")
    tar_reward_w: float = setting(0.7, "Weight of the velocity reward r_tar in the task reward. r_tar = "
                                       "exp(-vel_scale * |target velocity - planar root velocity|^2), 0 when "
                                       "moving against the target direction.")
    face_reward_w: float = setting(0.3, "Weight of r_face in the task reward. r_face = max(0, cosine between the "
                                        "character's heading and the facing direction).")
    vel_scale: float = setting(0.5, "Scale of r_tar, per (m/s)^2. MimicKit: 0.5 (humanoid), 2.0 (sword and "
                                    "shield).", rule=NON_NEGATIVE)


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The character, its reference motion, observations, episodes and task."""

    character: str = setting("assets/humanoid/humanoid.xml",
                             "The character's MJCF file. MimicKit's style: three hinges name_x/_y/_z per ball "
                             "joint, PD gains in joint stiffness/damping, torque limits in actuatorfrcrange or "
                             "motor gears; relative to the working directory, else to the repository.")
    motion_file: str = setting("motions/humanoid/humanoid_spinkick.npz",
                               "The reference motion: a clip (.npz, or MimicKit's .pkl) or a dataset YAML "
                               "(motions: [{file, weight}]). Paths as for character.")
    key_bodies: tuple[str, ...] = setting(("head", "right_hand", "left_hand", "right_foot", "left_foot"),
                                          "Bodies whose positions relative to the root the policy and the "
                                          "discriminator observe.")
    contact_bodies: tuple[str, ...] = setting(("right_foot", "left_foot"),
                                              "Bodies that may touch the floor. Only they collide with it; any "
                                              "other body reaching it ends the episode (early termination).")
    episode_length: float = setting(10.0, "Episode time limit (s). 10 s is 300 control steps at 30 Hz; MimicKit's "
                                          "location cases: 20.", rule=POSITIVE)
    global_obs: bool = setting(True, "Observe root rotation, velocities and key bodies in the world frame. False: "
                                     "in the character's heading frame (MimicKit's task cases).")
    root_height_obs: bool = setting(True, "Observe the root height (policy and discriminator).")
    num_disc_obs_steps: int = setting(10, "Frames (control steps) in the discriminator's observation window. "
                                          "Oldest first; MimicKit: 10.", rule=POSITIVE)
    rand_reset: bool = setting(True, "Start episodes at a random time of the drawn clip (false: at its start). "
                                     "Clips are drawn by their dataset weights either way.")
    zero_center_action: bool = setting(False, "Centre the hinges' PD-target bounds on 0, not on the joint range's "
                                              "middle. MimicKit: true for G1 and Pi Plus.")
    enable_early_termination: bool = setting(True, "End an episode as a fall when a body other than the contact "
                                                   "bodies touches the floor.")
    physics: PhysicsConfig = setting(PhysicsConfig(), "MuJoCo (MJX) simulation settings.")
    task: Literal["none", "location", "steering"] = setting(
        "none", "The task rewarded beside the style: none, location (env.location) or steering (env.steering).")
    location: LocationConfig = setting(LocationConfig(), "The location task (MimicKit's TaskLocationEnv).")
    steering: SteeringConfig = setting(SteeringConfig(), "The steering task (MimicKit's TaskSteeringEnv).")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """One network's optimiser."""

    type: Literal["sgd", "adam"] = setting("sgd", "Optimiser: sgd (with momentum, as torch.optim.SGD; MimicKit's) "
                                                  "or adam (AdamW).")
    learning_rate: float = setting(1e-4, "Learning rate.", rule=POSITIVE)
    momentum: float = setting(0.9, "SGD momentum. MimicKit: 0.9; adam ignores it.", rule=UNIT_INTERVAL)
    weight_decay: float = setting(0.0, "Weight decay. Coupled L2 (added to the gradient) for sgd, decoupled for "
                                       "adam.", rule=NON_NEGATIVE)


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """AMP's learner: networks, PPO, discriminator, rewards (MimicKit's amp_humanoid_agent.yaml)."""

    hidden_sizes: tuple[int, ...] = setting((1024, 512), "Hidden layer widths of the actor, critic and "
                                                         "discriminator MLPs (ReLU). MimicKit: "
                                                         "fc_2layers_1024units.", rule=POSITIVE)
    action_std: float = setting(0.05, "Exploration std of the Gaussian policy (fixed, not learned). In normalised "
                                      "action units, where +-1 reaches the PD-target bounds; MimicKit: 0.05, Go2 "
                                      "0.1.", rule=POSITIVE)
    actor_optimizer: OptimizerConfig = setting(OptimizerConfig(learning_rate=1e-4),
                                               "The actor's optimiser. MimicKit: SGD, lr 1e-4 (Go2 2e-4, task "
                                               "cases 5e-5).")
    critic_optimizer: OptimizerConfig = setting(OptimizerConfig(learning_rate=1e-4),
                                                "The critic's optimiser. MimicKit: SGD, lr 1e-4.")
    disc_optimizer: OptimizerConfig = setting(OptimizerConfig(learning_rate=2.5e-4, weight_decay=1e-4),
                                              "The discriminator's optimiser. MimicKit: SGD, lr 2.5e-4, weight "
                                              "decay 1e-4.")
    discount: float = setting(0.99, "Discount factor gamma.", rule=UNIT_INTERVAL)
    td_lambda: float = setting(0.95, "Lambda of the TD(lambda) returns.", rule=UNIT_INTERVAL)
    steps_per_iter: int = setting(32, "Control steps per environment per iteration. An iteration trains on "
                                      "steps_per_iter * num_envs samples.", rule=POSITIVE)
    actor_epochs: int = setting(5, "Passes over the iteration's samples in the actor update.", rule=POSITIVE)
    actor_batch_size: int = setting(4, "Actor minibatch, in steps per environment. actor_batch_size * num_envs "
                                       "samples (MimicKit's convention); at most steps_per_iter.", rule=POSITIVE)
    critic_epochs: int = setting(2, "Passes over the iteration's samples in the critic update.", rule=POSITIVE)
    critic_batch_size: int = setting(2, "Critic minibatch, in steps per environment (as actor_batch_size).",
                                     rule=POSITIVE)
    disc_epochs: int = setting(2, "Passes over the iteration's samples in the discriminator update.", rule=POSITIVE)
    disc_batch_size: int = setting(2, "Discriminator minibatch, in steps per environment. As many replayed and "
                                      "demo windows join each minibatch's agent windows.", rule=POSITIVE)
    ppo_clip_ratio: float = setting(0.2, "PPO's clip on the probability ratio (1 +- this).", rule=POSITIVE)
    norm_adv_clip: float = setting(4.0, "Normalised advantages are clipped to +- this.", rule=POSITIVE)
    action_bound_weight: float = setting(10.0, "Weight of the loss keeping the policy mean within the action "
                                               "bounds (+-1, normalised).", rule=NON_NEGATIVE)
    disc_loss: Literal["bce", "lsgan"] = setting("bce", "Discriminator loss and style reward: bce (MimicKit) or "
                                                        "lsgan (the AMP paper's least squares).")
    disc_buffer_size: int = setting(200_000, "Capacity (windows) of the replay buffer of past agent windows for "
                                             "the discriminator.", rule=POSITIVE)
    disc_replay_samples: int = setting(1000, "Agent windows pushed into the replay buffer per iteration once it "
                                             "is full. Until then, all of each iteration's.", rule=POSITIVE)
    disc_logit_reg: float = setting(0.01, "Weight of the discriminator output layer's squared weights in its "
                                          "loss.", rule=NON_NEGATIVE)
    disc_grad_penalty: float = setting(5.0, "Weight of the gradient penalty on demo and agent inputs. MimicKit: 5 "
                                            "(G1, SMPL: 10).", rule=NON_NEGATIVE)
    disc_reward_scale: float = setting(2.0, "Style reward scale. bce: -log(max(1 - sigmoid(logit), 1e-4)) * "
                                            "scale.", rule=NON_NEGATIVE)
    task_reward_weight: float = setting(0.0, "Weight of the task reward in the reward. MimicKit's task cases: "
                                             "0.5.", rule=NON_NEGATIVE)
    disc_reward_weight: float = setting(1.0, "Weight of the style reward in the reward. MimicKit's task cases: "
                                             "0.5.", rule=NON_NEGATIVE)
    normalizer_samples: float = setting(1e8, "The observation normalisers stop updating after this many samples "
                                             "(environment steps).", rule=NON_NEGATIVE)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training run: batch, budget, seed, outputs."""

    num_envs: int = setting(4096, "Parallel environments (over all devices). MimicKit: 4096.", rule=POSITIVE)
    max_samples: int | None = setting(None, "Stop after this many samples (environment steps). null: train until "
                                            "stopped (MimicKit's default).", rule=POSITIVE)
    seed: int = setting(0, "Random seed (networks, environments, sampling).", rule=SEED)
    iters_per_output: int = setting(100, "Save a checkpoint every this many iterations. MimicKit: 100 (task cases: "
                                         "200).", rule=POSITIVE)
    test_episodes: int = setting(32, "Deterministic test episodes after training (0: none). MimicKit: 32.",
                                 rule=NON_NEGATIVE)
    keep_checkpoints: int = setting(3, "Newest checkpoints kept in RUN_DIR/checkpoints.", rule=POSITIVE)
    video_every: int = setting(0, "Render a 4 s policy video every this many iterations (0: off). Written to "
                                  "RUN_DIR/videos and TensorBoard.", rule=NON_NEGATIVE)
    eval_every: int = setting(50, "Log the motion-matching score every this many iterations (0: off). mm_stay, "
                                  "mm_cover and the root's speed (root_speed, m/s), from the first episode of up to 4 "
                                  "environments.", rule=NON_NEGATIVE)
    num_devices: int = setting(0, "Devices the environments are split over (0: every visible device).",
                               rule=NON_NEGATIVE)
    matmul_precision: Literal["highest", "high", "default"] = setting(
        "highest", "jax_default_matmul_precision, set by every command that builds from a config (amp_jax.training.build): "
                   "highest is full float32; high and default let Ampere/Hopper GPUs use TF32, which inside MJX's "
                   "solver is a known cause of failed training.")


@dataclasses.dataclass(frozen=True)
class Config:
    """A case: what to train and how."""

    case: str = setting("amp_humanoid", "The case's name. Runs go to output/CASE by default.")
    description: str = setting("", "One line about the case, listed by amp-jax cases.")
    env: EnvConfig = setting(EnvConfig(), "The environment.")
    agent: AgentConfig = setting(AgentConfig(), "The learner.")
    train: TrainConfig = setting(TrainConfig(), "The training run.")


def _check_type(value, hint, path: str):
    """Coerce a YAML value to the annotated type or raise InputError naming the key path."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_type(value, inner[0], path)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise InputError(f"{path}: must be one of {list(choices)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{path}: expected a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_check_type(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{path}: expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise InputError(f"{path}: expected a finite number, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint} at {path}")


def _build(cls, data, path: str, base=None):
    """A `cls` from a mapping of some of its keys; the others keep their values in `base` (the field's
    default in the enclosing section, e.g. agent.disc_optimizer's weight decay, else cls())."""
    if not isinstance(data, dict):
        raise InputError(f"{path or 'config'}: expected a mapping, got {data!r}")
    base = cls() if base is None else base
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        where = f"{path}." if path else ""
        raise InputError(f"unknown config key '{where}{unknown[0]}' (known keys here: {sorted(names)})")
    kwargs = {}
    for k, v in data.items():
        key = f"{path}.{k}" if path else k
        if dataclasses.is_dataclass(hints[k]):
            kwargs[k] = _build(hints[k], v, key, getattr(base, k))
        else:
            kwargs[k] = _check_type(v, hints[k], key)
    return dataclasses.replace(base, **kwargs)


def _check_rules(section, path: str = "") -> None:
    """Every field's range rule (setting(rule=...)), section by section."""
    for f in dataclasses.fields(section):
        value, key = getattr(section, f.name), f"{path}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_rules(value, key + ".")
            continue
        items = [(key, value)] if not isinstance(value, tuple) else [(f"{key}[{i}]", v) for i, v in enumerate(value)]
        for rule in f.metadata.get("rules", ()):
            for where, v in items:
                if v is not None and not rule.holds(v):
                    raise InputError(f"{where}: {rule.requirement}, got {v}")


# Minimum/maximum pairs: (section, name) for name_min <= name_max.
_ORDERED = (("location", "tar_change_time"), ("location", "tar_dist"), ("steering", "tar_change_time"),
            ("steering", "tar_speed"))


def _validate(cfg: Config) -> None:
    _check_rules(cfg)
    for section, name in _ORDERED:
        low, high = (getattr(getattr(cfg.env, section), f"{name}_{end}") for end in ("min", "max"))
        if low > high:
            raise InputError(f"env.{section}.{name}_min: must not exceed env.{section}.{name}_max ({low} > {high})")
    physics = cfg.env.physics
    if round(cfg.env.episode_length * physics.control_freq) < 1:
        raise InputError(f"env.episode_length: {cfg.env.episode_length} s is shorter than one control step")
    if physics.sim_freq % physics.control_freq:
        raise InputError("env.physics.sim_freq: must be a multiple of env.physics.control_freq")
    for key in ("character", "motion_file"):
        try:
            found = resolve_path(getattr(cfg.env, key)).exists()
        except (OSError, ValueError) as e:  # a NUL byte, a name too long
            raise InputError(f"env.{key}: not a usable path ({e}): {getattr(cfg.env, key)!r}") from None
        if not found:
            raise InputError(f"env.{key}: file not found: {getattr(cfg.env, key)}")


def config_from_dict(data: dict, overrides: dict[str, Any] | None = None) -> Config:
    """A validated Config from a nested mapping of some of its keys, with dotted-key overrides on top."""
    if overrides:
        data = copy.deepcopy(data)
        for key, value in overrides.items():
            _set_path(data, key, value)
    cfg = _build(Config, data, "")
    _validate(cfg)
    return cfg


def to_dict(cfg: Config) -> dict:
    def plain(x):
        if isinstance(x, tuple):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x

    return plain(dataclasses.asdict(cfg))


def _set_path(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    if not isinstance(node, dict):
        raise InputError(f"--set {dotted}: the config is not a mapping")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise InputError(f"--set {dotted}: '{k}' is not a section")
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'agent.action_std=0.1' -> ('agent.action_std', 0.1); values are parsed as YAML."""
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise InputError(f"--set {key.strip()}: the value is not valid YAML: {e}") from None


def read_yaml(path: Path) -> dict:
    """A YAML file's mapping; InputError naming the file where it is not valid YAML or not a mapping."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def dotted_keys(tree: dict, prefix: str = "") -> dict:
    """{'train.num_envs': 16, ...} of a nested config dict."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(dotted_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _merged(base: dict, over: dict) -> dict:
    """base with over's keys on top, section by section."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _preset_keys(path: Path, case: str) -> dict:
    """The keys a preset (configs/presets/P.yaml) sets on `case`: its own, with those of its `cases: {case:
    {...}}` section on top (settings measured on that case only)."""
    preset = read_yaml(path)
    per_case = preset.pop("cases", {})
    if not isinstance(per_case, dict) or not all(isinstance(v, dict) for v in per_case.values()):
        raise InputError(f"{path}: cases: expected a mapping of case names to config keys")
    unknown = sorted(c for c in per_case if not case_path(c).is_file())
    if unknown:
        raise InputError(f"{path}: cases: no such case {', '.join(unknown)} (the cases: configs/*.yaml)")
    return _merged(preset, per_case.get(case, {}))


def load_config(path: str | Path, overrides: dict[str, Any] | None = None,
                flags: dict[str, str] | None = None) -> Config:
    """Read a YAML config (or a case with a preset: catalog.config_sources), apply dotted-key overrides,
    validate.

    An error names the file, or, when the file alone is valid, the override to blame: `--set KEY`, or the
    command-line option that `flags` ({key: option}) says set it.
    """
    path = Path(path)
    sources = config_sources(path)
    if not sources:
        raise InputError(f"{path}: config file not found")
    data = read_yaml(sources[0])
    if len(sources) == 2:  # a case with a preset: the preset's keys (and its case's own) over the case's
        preset = _preset_keys(sources[1], sources[0].stem)
        description = f"{data.get('description', '')}; {preset.pop('description', sources[1].stem)}"
        data = _merged(data, {**preset, "case": path.stem, "description": description})
    where = " + ".join(map(str, sources))  # what an error names
    merged = copy.deepcopy(data)
    for key, value in (overrides or {}).items():
        _set_path(merged, key, value)
    try:
        return config_from_dict(merged)
    except InputError as e:
        culprit = _culprit(data, overrides or {})
        if culprit is not None:
            message = str(e).removeprefix(f"{culprit}: ")  # "--set KEY: must be ...", not "KEY: KEY: ..."
            raise InputError(f"{(flags or {}).get(culprit, f'--set {culprit}')}: {message}") from None
        raise InputError(f"{where}: {e}") from None


def _culprit(data: dict, overrides: dict[str, Any]) -> str | None:
    """The override that first makes a valid config invalid, applied in order (None if `data` alone is not
    valid)."""
    data = copy.deepcopy(data)
    for key, value in [(None, None), *overrides.items()]:
        if key is not None:
            _set_path(data, key, value)
        if not _is_valid(data):
            return key
    return None


def _is_valid(data) -> bool:
    try:
        config_from_dict(data)
    except InputError:
        return False
    return True
