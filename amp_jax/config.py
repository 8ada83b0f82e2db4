"""Typed, validated run configuration: one YAML file per case, overridable from the command line.

Every setting a user tunes lives here with MimicKit's default beside it. Loading checks unknown keys,
types, ranges and file paths, and names the key path in its error (amp_jax.errors.InputError).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from amp_jax.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"


@dataclasses.dataclass(frozen=True)
class PhysicsConfig:
    sim_freq: int = 120
    control_freq: int = 30
    solver_iterations: int = 2  # Newton iterations; 2 and 4 line-search steps tuned per character (BENCHMARKS.md)
    ls_iterations: int = 4
    floor_friction: float = 1.0
    impl: Literal["jax", "warp"] = "jax"  # MJX backend; warp: MuJoCo Warp (amp-jax[warp]), GPU or CPU, one device
    jacobian: Literal["auto", "dense", "sparse"] = "auto"  # MuJoCo's constraint Jacobian (auto: sparse from nv 60)
    euler_damping: bool = True  # joint damping (the PD servos' D term) integrated implicitly; off is faster, less stable

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return self.sim_freq // self.control_freq


@dataclasses.dataclass(frozen=True)
class LocationConfig:
    """Reach a point on the ground (MimicKit's TaskLocationEnv defaults)."""

    tar_speed: float = 1.0
    tar_change_time_min: float = 5.0
    tar_change_time_max: float = 10.0
    tar_dist_min: float = 0.0
    tar_dist_max: float = 10.0
    dist_threshold: float = 0.5  # squared planar distance under which velocity and facing count as met
    pos_err_scale: float = 0.5
    vel_err_scale: float = 4.0
    pos_reward_w: float = 0.5
    vel_reward_w: float = 0.4
    face_reward_w: float = 0.1


@dataclasses.dataclass(frozen=True)
class SteeringConfig:
    """Move in a direction at a speed while facing a direction (MimicKit's TaskSteeringEnv)."""

    rand_tar_dir: bool = True
    rand_face_dir: bool = False
    tar_speed_min: float = 0.5
    tar_speed_max: float = 5.0
    tar_change_time_min: float = 4.0
    tar_change_time_max: float = 7.0
    tar_reward_w: float = 0.7
    face_reward_w: float = 0.3
    vel_scale: float = 0.5


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    character: str = "assets/humanoid/humanoid.xml"
    motion_file: str = "motions/humanoid/humanoid_spinkick.npz"
    key_bodies: tuple[str, ...] = ("head", "right_hand", "left_hand", "right_foot", "left_foot")
    contact_bodies: tuple[str, ...] = ("right_foot", "left_foot")
    episode_length: float = 10.0  # seconds
    global_obs: bool = True
    root_height_obs: bool = True
    num_disc_obs_steps: int = 10
    rand_reset: bool = True
    zero_center_action: bool = False
    enable_early_termination: bool = True
    physics: PhysicsConfig = PhysicsConfig()
    task: Literal["none", "location", "steering"] = "none"
    location: LocationConfig = LocationConfig()
    steering: SteeringConfig = SteeringConfig()


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    type: Literal["sgd", "adam"] = "sgd"
    learning_rate: float = 1e-4
    momentum: float = 0.9  # SGD only (MimicKit: torch SGD with momentum 0.9)
    weight_decay: float = 0.0  # coupled L2 for SGD, decoupled (AdamW) for Adam


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    hidden_sizes: tuple[int, ...] = (1024, 512)
    action_std: float = 0.05
    actor_optimizer: OptimizerConfig = OptimizerConfig(learning_rate=1e-4)
    critic_optimizer: OptimizerConfig = OptimizerConfig(learning_rate=1e-4)
    disc_optimizer: OptimizerConfig = OptimizerConfig(learning_rate=2.5e-4, weight_decay=1e-4)
    discount: float = 0.99
    td_lambda: float = 0.95
    steps_per_iter: int = 32
    actor_epochs: int = 5
    actor_batch_size: int = 4  # minibatch = actor_batch_size * num_envs samples
    critic_epochs: int = 2
    critic_batch_size: int = 2
    disc_epochs: int = 2
    disc_batch_size: int = 2
    ppo_clip_ratio: float = 0.2
    norm_adv_clip: float = 4.0
    action_bound_weight: float = 10.0
    disc_loss: Literal["bce", "lsgan"] = "bce"
    disc_buffer_size: int = 200_000
    disc_replay_samples: int = 1000
    disc_logit_reg: float = 0.01
    disc_grad_penalty: float = 5.0
    disc_reward_scale: float = 2.0
    task_reward_weight: float = 0.0
    disc_reward_weight: float = 1.0
    normalizer_samples: float = 1e8


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    num_envs: int = 4096
    max_samples: int | None = None  # None: train until stopped
    seed: int = 0
    iters_per_output: int = 100  # checkpoint (and test) every this many iterations
    test_episodes: int = 32
    keep_checkpoints: int = 3
    video_every: int = 0  # render a short policy video to RUN_DIR/videos every this many iterations (0: off)
    eval_every: int = 50  # log the motion-matching score (mm_stay, mm_cover) on a few envs every N iterations (0: off)
    num_devices: int = 0  # devices the environments are split over (0: every visible device)


@dataclasses.dataclass(frozen=True)
class Config:
    case: str = "amp_humanoid"
    description: str = ""
    env: EnvConfig = EnvConfig()
    agent: AgentConfig = AgentConfig()
    train: TrainConfig = TrainConfig()


def _check_type(value, hint, path: str):
    """Coerce a YAML value to the annotated type or raise InputError naming the key path."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
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


def _build(cls, data, path: str):
    if not isinstance(data, dict):
        raise InputError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        where = f"{path}." if path else ""
        raise InputError(f"unknown config key '{where}{unknown[0]}' (known keys here: {sorted(names)})")
    kwargs = {k: _check_type(v, hints[k], f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


# Range rules by key path, checked after the types.
_POSITIVE = (
    "env.episode_length", "env.num_disc_obs_steps", "env.physics.sim_freq", "env.physics.control_freq",
    "env.physics.solver_iterations", "env.physics.ls_iterations", "agent.action_std", "agent.steps_per_iter",
    "agent.disc_buffer_size", "agent.disc_replay_samples", "agent.ppo_clip_ratio", "agent.norm_adv_clip",
    "train.num_envs", "train.iters_per_output", "train.keep_checkpoints",
    *(f"agent.{n}_{k}" for n in ("actor", "critic", "disc")
      for k in ("epochs", "batch_size", "optimizer.learning_rate")),
    "env.location.tar_change_time_min", "env.steering.tar_change_time_min",
)
_NON_NEGATIVE = (
    "env.physics.floor_friction", "agent.action_bound_weight", "agent.disc_logit_reg", "agent.disc_grad_penalty",
    "agent.disc_reward_scale", "agent.task_reward_weight", "agent.disc_reward_weight", "agent.normalizer_samples",
    "train.seed", "train.test_episodes", "train.video_every", "train.eval_every", "train.num_devices",
    *(f"agent.{n}_optimizer.weight_decay" for n in ("actor", "critic", "disc")),
    *(f"env.location.{k}" for k in ("tar_speed", "tar_dist_min", "dist_threshold", "pos_err_scale", "vel_err_scale")),
    "env.steering.tar_speed_min", "env.steering.vel_scale",
)
_UNIT_INTERVAL = ("agent.discount", "agent.td_lambda",
                  *(f"agent.{n}_optimizer.momentum" for n in ("actor", "critic", "disc")))
_ORDERED = tuple((f"env.{task}.{k}_min", f"env.{task}.{k}_max")
                 for task, k in (("location", "tar_change_time"), ("location", "tar_dist"),
                                 ("steering", "tar_change_time"), ("steering", "tar_speed")))


def _get(cfg: Config, dotted: str):
    value = cfg
    for k in dotted.split("."):
        value = getattr(value, k)
    return value


def _validate(cfg: Config) -> None:
    for key in _POSITIVE:
        if not _get(cfg, key) > 0:
            raise InputError(f"{key}: must be positive, got {_get(cfg, key)}")
    for key in _NON_NEGATIVE:
        if not _get(cfg, key) >= 0:
            raise InputError(f"{key}: must be >= 0, got {_get(cfg, key)}")
    for key in _UNIT_INTERVAL:
        if not 0.0 <= _get(cfg, key) <= 1.0:
            raise InputError(f"{key}: must be in [0, 1], got {_get(cfg, key)}")
    for low, high in _ORDERED:
        if _get(cfg, low) > _get(cfg, high):
            raise InputError(f"{low}: must not exceed {high} ({_get(cfg, low)} > {_get(cfg, high)})")
    for i, size in enumerate(cfg.agent.hidden_sizes):
        if size <= 0:
            raise InputError(f"agent.hidden_sizes[{i}]: must be positive, got {size}")
    if cfg.train.seed >= 2**32:
        raise InputError(f"train.seed: must be below 2**32, got {cfg.train.seed}")
    if round(cfg.env.episode_length * cfg.env.physics.control_freq) < 1:
        raise InputError(f"env.episode_length: {cfg.env.episode_length} s is shorter than one control step")
    if cfg.env.physics.sim_freq % cfg.env.physics.control_freq:
        raise InputError("env.physics.sim_freq: must be a multiple of env.physics.control_freq")
    if cfg.train.max_samples is not None and cfg.train.max_samples <= 0:
        raise InputError(f"train.max_samples: must be positive, got {cfg.train.max_samples}")
    for key in ("character", "motion_file"):
        try:
            found = resolve_path(getattr(cfg.env, key)).exists()
        except (OSError, ValueError) as e:  # a NUL byte, a name too long
            raise InputError(f"env.{key}: not a usable path ({e}): {getattr(cfg.env, key)!r}") from None
        if not found:
            raise InputError(f"env.{key}: file not found: {getattr(cfg.env, key)}")


def resolve_path(p: str) -> Path:
    """Paths in configs are relative to the working directory, else to the repository root."""
    path = Path(p)
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path


def config_from_dict(data: dict) -> Config:
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


def case_path(name_or_path: str) -> Path:
    """A case name (configs/<name>.yaml) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return p
    return CONFIG_DIR / f"{name_or_path}.yaml"


def load_config(path: str | Path, overrides: dict[str, Any] | None = None,
                flags: dict[str, str] | None = None) -> Config:
    """Read a YAML config, apply dotted-key overrides, validate.

    An error names the file, or, when the file alone is valid, the override to blame: `--set KEY`, or the
    command-line option that `flags` ({key: option}) says set it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    merged = copy.deepcopy(data)
    for key, value in (overrides or {}).items():
        _set_path(merged, key, value)
    try:
        return config_from_dict(merged)
    except InputError as e:
        culprit = _culprit(data, overrides or {})
        if culprit is not None:
            raise InputError(f"{(flags or {}).get(culprit, f'--set {culprit}')}: {e}") from None
        raise InputError(f"{path}: {e}") from None


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
