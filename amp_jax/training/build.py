"""The one composition place: a validated Config becomes the character, clips, environment and learner of
a run (all input checks happen here, before anything is compiled), and a saved policy becomes what test,
eval and render need. Every command goes through here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from amp_jax.catalog import resolve_path
from amp_jax.characters.character import Character, load_character
from amp_jax.config import Config
from amp_jax.envs.amp_env import AmpEnv
from amp_jax.errors import InputError
from amp_jax.eval import report
from amp_jax.learning.learner import Learner, Policy, make_learner, policy_shapes
from amp_jax.motion.clip import load_motion_set
from amp_jax.motion.library import MotionLibrary, build_motion_library
from amp_jax.training import learner_state
from amp_jax.training.checkpoint import CHECKPOINTS_DIR


def check_backend(impl: str) -> None:
    """MuJoCo Warp needs its package and a CUDA GPU or the CPU; say so before anything is built."""
    if impl != "warp":
        return
    import jax

    try:
        import mujoco_warp  # noqa: F401
    except ImportError:
        raise InputError("env.physics.impl: warp needs MuJoCo Warp: pip install -e '.[warp]' in the amp-jax "
                         "checkout") from None
    if jax.default_backend() not in ("gpu", "cpu"):
        raise InputError(f"env.physics.impl: warp runs on NVIDIA GPUs (and the CPU), jax's backend is "
                         f"{jax.default_backend()}")


def set_matmul_precision(precision: str) -> None:
    """Set JAX's default float32 matmul precision (train.matmul_precision) for everything compiled after.

    "highest" is the default because TF32 matmuls inside MJX's constraint solver (Ampere and Hopper GPUs
    use TF32 at "default") are a known cause of MJX training failures; CPUs compute float32 either way.
    """
    import jax

    jax.config.update("jax_default_matmul_precision", precision)


def build_character(cfg: Config) -> Character:
    """The case's character (env.character with its key and contact bodies and physics settings)."""
    e = cfg.env
    return load_character(resolve_path(e.character), e.key_bodies, e.contact_bodies, e.physics, e.zero_center_action)


def build_motions(cfg: Config, character: Character) -> tuple[MotionLibrary, list[str]]:
    """The case's clips (env.motion_file: a clip or a dataset) on device, and their names."""
    clips, weights, names = load_motion_set(resolve_path(cfg.env.motion_file), character.layout.num_dof)
    return build_motion_library(character.layout, clips, weights), names


def build_env(cfg: Config) -> AmpEnv:
    """The case's environment, its backend checked and the matmul precision set first."""
    check_backend(cfg.env.physics.impl)
    set_matmul_precision(cfg.train.matmul_precision)
    character = build_character(cfg)
    return AmpEnv(character, build_motions(cfg, character)[0], cfg.env)


def build(cfg: Config) -> tuple[AmpEnv, Learner]:
    """The case's environment and learner."""
    env = build_env(cfg)
    return env, make_learner(cfg.agent, env, cfg.train.num_envs)


def load_trained(model_file: str | Path) -> tuple[Config, AmpEnv, Learner, int, Policy]:
    """The config, environment, learner, iteration and policy (actor, discriminator and their
    normalisers: what test, eval and render need) of a run directory's newest readable checkpoint, a
    learner state or an exported policy .npz (amp_jax.training.learner_state)."""
    cfg, env, learner, saved, policy = load_saved(model_file)
    return cfg, env, learner, saved.iteration, policy


def load_saved(model_file: str | Path) -> tuple[Config, AmpEnv, Learner, learner_state.Saved, Policy]:
    """load_trained with all that was saved (iteration, samples) in place of the iteration."""
    cfg = learner_state.read_config(model_file)
    env, learner = build(cfg)
    return cfg, env, learner, *_load_policy(model_file, env, learner)


def _load_policy(model_file: str | Path, env: AmpEnv, learner: Learner) -> tuple[learner_state.Saved, Policy]:
    """What was saved at model_file (its iteration and samples) and the policy read from it, on the device."""
    import jax

    shapes = policy_shapes(learner, env)
    saved = learner_state.read(model_file, shapes)
    return saved, jax.device_put(learner_state.fill(shapes, saved, model_file), jax.devices()[0])  # as a train state's


def evaluate_run(run_dir: str | Path, test_episodes: int = 32, num_envs: int | None = None, seed: int = 0,
                 engine: str = "mjx") -> dict:
    """The report of a run directory's newest checkpoint, one of its checkpoints or an exported policy (what
    `amp-jax eval` writes) on `engine`, with its run_dir (the path given), case, iteration and samples."""
    cfg, env, learner, saved, policy = load_saved(run_dir)
    return _evaluate(run_dir, cfg, env, learner, saved, policy, test_episodes, num_envs, seed, engine)


def evaluate_checkpoints(run_dir: str | Path, steps: list[int], test_episodes: int = 32, num_envs: int | None = None,
                         seed: int = 0, engine: str = "mjx") -> Iterator[tuple[int, dict | InputError]]:
    """(step, report) of each of a run's checkpoints `steps` in turn, or (step, InputError) for one that cannot
    be read; one environment and learner serve them all."""
    cfg = learner_state.read_config(run_dir)
    env, learner = build(cfg)
    for step in steps:
        model_file = Path(run_dir) / CHECKPOINTS_DIR / str(step)
        try:
            saved, policy = _load_policy(model_file, env, learner)
        except InputError as e:
            yield step, e
            continue
        yield step, _evaluate(model_file, cfg, env, learner, saved, policy, test_episodes, num_envs, seed, engine)


def _evaluate(model_file, cfg: Config, env: AmpEnv, learner: Learner, saved: learner_state.Saved, policy: Policy,
              test_episodes: int, num_envs: int | None, seed: int, engine: str) -> dict:
    num_envs = num_envs or min(cfg.train.num_envs, test_episodes)
    return {"run_dir": str(model_file), "case": cfg.case, "iteration": saved.iteration, "samples": saved.samples,
            **report.eval_report(learner, env, policy, test_episodes, num_envs, seed, engine)}
