"""The `amp-jax` command line: train, test and cases (MimicKit's flags are accepted too)."""

from __future__ import annotations

import argparse
import errno
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from amp_jax import __version__
from amp_jax.errors import InputError
from amp_jax.paths import check_output_dir, check_output_file

VIDEO = (".mp4", ".gif", ".html")  # .html: an interactive 3-D replay in the browser (amp_jax.render.browser)
VIDEO_SIZE = (16, 4096)  # pixels per side of one environment's picture; even for H.264


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (InputError: `amp-jax: error: ...`, exit code 2) and defaults in --help."""

    def __init__(self, **kwargs):
        super().__init__(**{"formatter_class": _HelpFormatter, **kwargs})

    def error(self, message):
        raise InputError(f"{message} (see {self.prog} --help)")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default when it has one (not None, False or an empty list)."""

    def _get_help_string(self, action):
        if action.default in (None, False, []):
            return action.help
        return super()._get_help_string(action)


class _KeysHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """_HelpFormatter that keeps an epilog's lines (train's list of config keys) as written."""


def _common(p: argparse.ArgumentParser, envs: bool = True, overrides: bool = False, visualize: bool = False,
            logger: bool = False) -> None:
    """The options shared by the subcommands that use them (each gets only those it reads): --debug, and
    --num_envs and --seed (envs), --set (overrides), MimicKit's --visualize and --logger."""
    if envs:
        p.add_argument("--num_envs", type=int, help="parallel environments")
        p.add_argument("--seed", "--rand_seed", dest="seed", type=int, help="random seed")
    if overrides:
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config key, e.g. --set agent.action_std=0.1 (repeatable)")
    if visualize:
        p.add_argument("--visualize", default="false", choices=["true", "false"], type=str.lower,
                       help="test: true plays the policy in MuJoCo's viewer (or writes RUN/videos/test.mp4 "
                            "without a display); training is headless (false only)")
    if logger:
        p.add_argument("--logger", default="tb", choices=["txt", "tb", "wandb"],
                       help="console, metrics.jsonl and TensorBoard are always written; wandb also logs to Weights "
                            "& Biases (pip install 'amp-jax[wandb]')")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="amp-jax", description="Adversarial Motion Priors in JAX + MuJoCo MJX.",
                     epilog="MimicKit's style works too: `amp-jax --mode train|test ...` is `amp-jax train|test "
                            "...`, and `--arg_file FILE` reads further options from FILE (the command line wins). "
                            "`amp-jax COMMAND --help` lists a command's options.")
    parser.add_argument("--version", action="version", version=f"amp-jax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from amp_jax.config_text import keys_help

    train = sub.add_parser("train", help="train a case", description="Train a case by name or config file.",
                           epilog=keys_help(), formatter_class=_KeysHelpFormatter)
    train.add_argument("case", nargs="?", help="case name (see `amp-jax cases`) or a config YAML; not needed "
                                               "with --resume --out_dir RUN (the run's own settings)")
    train.add_argument("--config", help="config YAML (instead of a case name)")
    train.add_argument("--out_dir", help="run directory (default: output/<case>)")
    train.add_argument("--max_samples", type=int, help="stop after this many environment steps")
    train.add_argument("--max_iterations", type=int, help="stop after this many iterations (this invocation)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out_dir")
    train.add_argument("--time_limit", type=float, metavar="SECONDS",
                       help="stop, saving a checkpoint, at the last iteration that ends within SECONDS of this "
                            "command's start (set-up and compiling included)")
    train.add_argument("--init_from", metavar="PATH",
                       help="start from a saved learner: a run directory or one of its checkpoints "
                            "(RUN/checkpoints/STEP), a learner state (export --format learner) "
                            "or an exported policy .npz (actor and discriminator only); fresh replay buffer and "
                            "environments")
    train.add_argument("--devices", type=int, help="devices to split the environments over (default: all visible)")
    train.add_argument("--distributed", action="store_true",
                       help="multi-host: call jax.distributed.initialize() first (one process per host)")
    _common(train, overrides=True, visualize=True, logger=True)

    test = sub.add_parser("test", help="test a trained run with deterministic actions",
                          description="Deterministic rollouts of a trained policy (a run's newest readable "
                                      "checkpoint, a learner state or an exported policy): mean return, episode "
                                      "length, fall rate and style reward.")
    test.add_argument("--model_file", required=True, help=MODEL_FILE_HELP)
    test.add_argument("--test_episodes", type=int, default=32, help="episodes to run")
    _common(test, visualize=True)

    evaluation = sub.add_parser("eval", help="measure whether a trained policy learned its motion",
                                description="Deterministic rollouts: episode length, falls, style reward, "
                                            "motion matching, the spinkick's kick, task measures. Writes JSON "
                                            "and a Markdown summary beside it.")
    evaluation.add_argument("--model_file", required=True, help=MODEL_FILE_HELP)
    evaluation.add_argument("--test_episodes", type=int, default=32, help="episodes to run")
    evaluation.add_argument("--out", help="report JSON (default: RUN_DIR/eval/report.json)")
    evaluation.add_argument("--checkpoints", metavar="all|STEP,STEP,...",
                            help="evaluate these checkpoints of the run directory (all: every one it keeps), each "
                                 "to RUN_DIR/eval/report_STEP.json, and compare them against the bar in "
                                 "RUN_DIR/eval/checkpoints.md: the first that reaches it, with its samples")
    evaluation.add_argument("--engine", default="mjx", choices=["mjx", "mujoco"],
                            help="mjx: the training simulation; mujoco: sim-to-sim, MuJoCo itself on the CPU with its "
                                 "default solver settings and full contacts (amp_jax/eval/sim_to_sim.py)")
    _common(evaluation)

    render = sub.add_parser("render", help="render a deterministic policy rollout to mp4",
                            description="Render a deterministic rollout of a trained policy offscreen to H.264 "
                                        "(or GIF), environments side by side.")
    render.add_argument("--model_file", required=True, help=MODEL_FILE_HELP)
    render.add_argument("--out", required=True, help="video file (.mp4 or .gif), or .html: an interactive 3-D replay "
                                                     "of the first environment to orbit, pause and scrub in a browser")
    render.add_argument("--seconds", type=float, help="video length (default: --num_episodes episodes)")
    render.add_argument("--num_episodes", type=int, default=1,
                        help="consecutive episodes to render (an episode ends on a fall or a timeout)")
    render.add_argument("--show_reference", action="store_true",
                        help="draw the reference motion as a translucent ghost 2 m along x")
    _video_size(render)
    _common(render)

    view = sub.add_parser("view-motion", help="play a clip (or every clip of a dataset) on its character",
                          description="Render a clip, or every clip of a dataset one after another with its name, "
                                      "on the character of a case, to H.264 (or GIF).")
    view.add_argument("motion", help="clip (.npz/.pkl) or dataset YAML")
    view.add_argument("--config", help="case name or config giving the character (default: the first case using "
                                       "the character the clip names)")
    view.add_argument("--out", required=True, help="video file (.mp4 or .gif), or .html: an interactive 3-D replay to "
                                                   "orbit, pause and scrub in a browser")
    view.add_argument("--camera_scale", type=float,
                      help="multiplies the camera distance and look-at height (default: from the clip's root "
                           "height, about 0.4 for Go2 and Pi Plus, 1 for the humanoids)")
    _video_size(view)
    _common(view, envs=False, overrides=True)

    retarget = sub.add_parser("retarget", help="retarget a clip onto another character by inverse kinematics",
                              description="Retarget a humanoid clip onto G1, Pi Plus or SMPL, or a Laikago clip "
                                          "onto Go2, by inverse kinematics; prints the fit's quality.")
    retarget.add_argument("motion", help="humanoid clip (.npz/.pkl), or a motion-imitation Laikago .txt for go2")
    retarget.add_argument("--source", default="humanoid", help="the clip's character")
    retarget.add_argument("--target", required=True, choices=["g1", "pi_plus", "smpl", "go2"],
                          help="the character to retarget onto")
    retarget.add_argument("--out", required=True, help="output clip (.npz)")
    retarget.add_argument("--debug", action="store_true", help="show tracebacks")

    inspect = sub.add_parser("inspect", help="a clip's quality report: foot sliding, ground penetration, joint "
                                             "limits, root speed and heading change",
                             description="A clip's quality report: foot sliding, ground penetration, joint limits, "
                                         "root speed and heading change, against the default limits.")
    inspect.add_argument("motion", help="clip (.npz/.pkl)")
    inspect.add_argument("--config", help="case name or config giving the character and its feet (default: the "
                                          "first case using the clip's character)")
    inspect.add_argument("--json", help="also write the report to this JSON file")
    inspect.add_argument("--strict", action="store_true",
                         help="exit with code 1 when the clip exceeds the default limits (amp_jax.motion_tools.clip_quality.Limits)")
    inspect.add_argument("--debug", action="store_true", help="show tracebacks")

    imp = sub.add_parser("import", help="convert an AMASS .npz, DeepMimic .txt or MimicKit .pkl to an amp-jax clip",
                         description="Convert an AMASS .npz, DeepMimic .txt or MimicKit .pkl motion to an amp-jax "
                                     "clip (.npz) of one of the characters.")
    imp.add_argument("source", help="the motion file")
    imp.add_argument("--format", required=True, choices=["amass", "deepmimic", "mimickit"], help="the file's format")
    imp.add_argument("--out", required=True, help="output clip (.npz)")
    imp.add_argument("--character", help="assets name or MJCF path (default: smpl for amass, humanoid for "
                                         "deepmimic, for mimickit the character whose DoF count fits)")
    imp.add_argument("--floor", default="calibrate", choices=["none", "calibrate", "full"],
                     help="amass: put the lowest geom point of the first 30 frames (calibrate) or of the clip "
                          "(full) on the floor, or keep trans (none)")
    imp.add_argument("--loop", action="store_true", help="amass: the clip wraps around")
    imp.add_argument("--debug", action="store_true", help="show tracebacks")

    plot = sub.add_parser("plot", help="draw a run's learning curves to PNG (several runs: on the same panels)",
                          description="Draw a run's learning curves from its metrics.jsonl to PNGs: an overview and "
                                      "one per panel. Several runs are drawn together, one colour each, to compare "
                                      "them.")
    plot.add_argument("run_dirs", nargs="+", metavar="run_dir", help="run directory holding metrics.jsonl")
    plot.add_argument("--out", help="folder for the PNGs (default: RUN_DIR/plots; needed for several runs)")
    plot.add_argument("--debug", action="store_true", help="show tracebacks")

    bench = sub.add_parser("bench", help="raw physics vs training-step throughput, per character and batch",
                           description="Method: BENCHMARKS.md and amp_jax/training/bench.py.")
    bench.add_argument("--character", nargs="+", default=None, metavar="NAME",
                       help="characters, named as their folders in assets/, each by its case in "
                            "amp_jax.catalog.CHARACTER_CASES (default: all six unless --case is given)")
    bench.add_argument("--case", nargs="+", metavar="CASE",
                       help="cases (names or config YAMLs) to bench with their own settings, e.g. the case "
                            "about to be trained: its compiled training step is then in the compilation cache")
    bench.add_argument("--num_envs", nargs="+", type=int, default=[4096], help="batch sizes")
    bench.add_argument("--backend", default="jax", choices=["jax", "warp"], help="MJX backend")
    bench.add_argument("--repeats", type=int, default=5, help="timed calls after a warm-up (median reported)")
    bench.add_argument("--physics_only", action="store_true", help="only the raw physics (for tuning the MJX model)")
    bench.add_argument("--json", help="also write the results to this JSON file")
    bench.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key of every case (repeatable)")
    bench.add_argument("--debug", action="store_true", help="show tracebacks")

    export = sub.add_parser("export", help="write a trained policy (.npz, ONNX) or a run's learner state",
                            description="Write a trained policy as one .npz or an ONNX model, or a run's learner "
                                        "state (for train --init_from). Formats: amp_jax/training/export.py.")
    export.add_argument("model", help="run directory, one of its checkpoints (RUN/checkpoints/STEP), an exported "
                                      "policy or a learner state")
    export.add_argument("--out", required=True, help="policy.npz, policy.onnx, or a folder for --format learner")
    export.add_argument("--format", default="npz", choices=["npz", "onnx", "learner"],
                        help="npz: actor, discriminator, normalisers, log_std, config; onnx: the deterministic "
                             "policy; learner: networks, optimiser states, normalisers, counters (train --init_from)")
    export.add_argument("--networks_only", action="store_true",
                        help="--format learner without the optimiser states (half the size; the optimisers restart)")
    export.add_argument("--debug", action="store_true", help="show tracebacks")

    cases = sub.add_parser("cases", help="list the cases", description="List the cases (configs/*.yaml, and each "
                                                                      "of them with each preset of configs/presets/ "
                                                                      "as CASE_PRESET) with their descriptions.")
    cases.add_argument("--debug", action="store_true", help="show tracebacks")

    config = sub.add_parser("config", help="print a case's resolved config as YAML, each key with its doc",
                            description="Print a case's resolved config (after --set) as YAML, each key after its "
                                        "doc and range rule, `# default: X` where the case differs.")
    config.add_argument("case", help="case name (see `amp-jax cases`) or a config YAML")
    config.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (repeatable)")
    config.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


MODEL_FILE_HELP = ("run directory of a trained model (its newest checkpoint) or one of its checkpoints "
                   "(RUN/checkpoints/STEP), a learner state or an exported policy .npz (amp-jax export)")


def _video_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=int, default=640, help="pixels (even, %d to %d)" % VIDEO_SIZE)
    p.add_argument("--height", type=int, default=480, help="pixels (even, %d to %d)" % VIDEO_SIZE)


def _check_video_size(width: int, height: int, tiles: int = 1) -> None:
    """H.264 needs even sides; the bounds keep a typo from allocating gigabytes per frame."""
    low, high = VIDEO_SIZE
    for option, value in (("--width", width), ("--height", height)):
        if not low <= value <= high or value % 2:
            raise InputError(f"{option}: must be an even number of pixels from {low} to {high}, got {value}")
    if width * tiles > high * 4:
        raise InputError(f"--width {width} times --num_envs {tiles}: the video would be {width * tiles} pixels wide "
                         f"(at most {high * 4})")


def _mimickit_argv(argv: list[str]) -> list[str]:
    """Accept MimicKit's style: `--mode train|test` and `--arg_file FILE` (CLI values win)."""
    argv = list(argv)
    if "--arg_file" in argv:
        i = argv.index("--arg_file")
        path = Path(argv[i + 1]) if i + 1 < len(argv) else None
        if path is None or not path.is_file():
            raise InputError(f"{path}: arg file not found")
        try:
            lines = [ln for ln in path.read_text().splitlines() if not ln.strip().startswith("#")]
            extra = shlex.split(" ".join(lines))
        except (UnicodeDecodeError, ValueError) as e:  # not text; an unclosed quote
            raise InputError(f"{path}: cannot read the arg file: {e}") from None
        argv = argv[:i] + argv[i + 2:]
        given = {a for a in argv if a.startswith("--")}
        j = 0
        while j < len(extra):  # keep file tokens whose flag the command line does not set
            flag, k = extra[j], j + 1
            while k < len(extra) and not extra[k].startswith("--"):
                k += 1
            if flag not in given:
                argv += extra[j:k]
            j = k
    if "--mode" in argv:
        i = argv.index("--mode")
        mode = argv[i + 1] if i + 1 < len(argv) else None
        if mode not in ("train", "test"):
            raise InputError(f"--mode must be train or test, got {mode!r}")
        argv = [mode] + argv[:i] + argv[i + 2:]
    return argv


def _configure_jax() -> None:
    """The persistent compilation cache (AMP_JAX_CACHE, default ~/.cache/amp-jax/xla), so that a second
    test, eval or render of a run, a resumed run, or training after `bench` of the same case load their
    compiled programs instead of compiling them again (on the CPU about 4x faster: BENCHMARKS.md). Every
    program is cached, however short its compile: the many small ones add up."""
    import jax

    cache = os.environ.get("AMP_JAX_CACHE") or str(Path.home() / ".cache" / "amp-jax" / "xla")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _overrides(args) -> dict:
    from amp_jax.config import parse_override

    out = dict(parse_override(o) for o in args.overrides)
    if getattr(args, "num_envs", None) is not None:
        out["train.num_envs"] = args.num_envs
    if getattr(args, "seed", None) is not None:
        out["train.seed"] = args.seed
    return out


def _option_keys(args) -> dict[str, str]:
    """{config key: option} of the keys that options other than --set override (errors name the option)."""
    options = {"train.num_envs": "num_envs", "train.seed": "seed", "train.max_samples": "max_samples",
               "train.num_devices": "devices"}
    return {k: f"--{o}" for k, o in options.items() if getattr(args, o, None) is not None}


def _cmd_train(args) -> None:
    from amp_jax.training import checkpoint
    from amp_jax.training.trainer import train

    started = time.time()
    source = args.config or args.case
    if args.time_limit is not None and args.time_limit <= 0:
        raise InputError(f"--time_limit: must be positive, got {args.time_limit:g}")
    if args.config and args.case:
        raise InputError("train: give a case name (see `amp-jax cases`) or --config FILE, not both")
    if not source and not (args.resume and args.out_dir):
        raise InputError("train: give a case name (see `amp-jax cases`) or --config FILE (or --resume --out_dir RUN)")
    if args.init_from and args.resume:
        raise InputError("train: --init_from starts a new run from a saved learner, --resume continues --out_dir: "
                         "give one")
    if args.visualize == "true":
        raise InputError("--visualize true: training is headless; watch a run with `amp-jax test --visualize true` "
                         "or `amp-jax render`")
    overrides = _overrides(args)
    if args.max_samples is not None:
        overrides["train.max_samples"] = args.max_samples
    if args.devices is not None:
        overrides["train.num_devices"] = args.devices
    if args.distributed:
        import jax

        jax.distributed.initialize()
    cfg = _train_config(args, source, overrides)
    run_dir = Path(args.out_dir or Path("output") / cfg.case)
    saved = run_dir / checkpoint.CHECKPOINTS_DIR
    if not args.resume and saved.exists() and any(saved.iterdir()):
        raise InputError(f"{run_dir} already holds checkpoints: pass --resume to continue it or a new --out_dir")
    if args.resume and (run_dir / checkpoint.CONFIG_FILE).is_file():
        checkpoint.resume_changes(run_dir, cfg)  # refuses changed settings before anything is printed or written
    check_output_dir(run_dir, "--out_dir")
    _configure_jax()
    print(f"training {cfg.case} in {run_dir} with {cfg.train.num_envs} environments", flush=True)
    deadline = None if args.time_limit is None else started + args.time_limit
    train(cfg, run_dir, resume=args.resume, max_iterations=args.max_iterations, wandb=args.logger == "wandb",
          init_from=args.init_from, deadline=deadline)
    print(f"checkpoints in {run_dir / 'checkpoints'}", flush=True)


def _train_config(args, source: str | None, overrides: dict):
    """The config to train with. A resumed run keeps the settings its config.yaml records (a case named
    beside it must be the run's case), so `train CASE --out_dir RUN --resume` needs none of the run's
    options again; a config file (--config FILE or FILE.yaml) instead resumes with FILE's settings, and
    either way the options given here are checked by checkpoint.resume_changes."""
    from amp_jax.catalog import case_path
    from amp_jax.config import load_config
    from amp_jax.training import checkpoint

    named = load_config(case_path(source), overrides, _option_keys(args)) if source else None
    run_dir = Path(args.out_dir or Path("output") / (named.case if named else ""))
    from_file = bool(args.config) or (source is not None and Path(source).suffix in (".yaml", ".yml"))
    if not args.resume or from_file or (named is not None and not (run_dir / checkpoint.CONFIG_FILE).is_file()):
        return named
    cfg = checkpoint.load_run_config(run_dir, overrides, _option_keys(args))
    if named is not None and named.case != cfg.case:
        raise InputError(f"{run_dir}: a run of {cfg.case}, not {named.case}; resume it as {cfg.case} or start a "
                         "new run with another --out_dir")
    return cfg


def _cmd_test(args) -> None:
    from amp_jax.eval import evaluate
    from amp_jax.training.build import load_trained

    run_dir = Path(args.model_file)
    if args.test_episodes < 1 or (args.num_envs is not None and args.num_envs < 1):
        raise InputError("test: --test_episodes and --num_envs must be >= 1")
    _configure_jax()
    cfg, env, learner, step, state = load_trained(run_dir)
    num_envs = args.num_envs or min(cfg.train.num_envs, args.test_episodes)
    stats = evaluate.test_policy(learner, env, state, args.test_episodes, num_envs, seed=args.seed or 0)
    print(f"model: {run_dir} (iteration {step})")
    print(f"Mean Return: {stats['mean_return']:.4f}")
    print(f"Mean Episode Length: {stats['mean_episode_length']:.2f}")
    print(f"Fall Rate: {stats['fall_rate']:.3f}")
    print(f"Mean Style Reward: {stats['mean_style_reward']:.4f}")
    print(f"Episodes: {stats['episodes']}")
    if args.visualize == "true":
        _visualize(env, learner, state, _output_file(run_dir, "videos", "test.mp4"), args.seed or 0)


def _output_file(model_file, folder: str, name: str) -> Path:
    """Where test and eval write by default: FOLDER/NAME in the run directory (or learner state); for one
    of a run's checkpoints, RUN/checkpoints/STEP, in the run directory with the step in the name
    (eval/report_STEP.json); for an exported file, in a folder beside it named after it (policy/FOLDER/NAME)."""
    from amp_jax.training.learner_state import run_checkpoint

    path = Path(model_file)
    run, step = run_checkpoint(path) or (path, None)
    if step is not None:
        name = f"{Path(name).stem}_{step}{Path(name).suffix}"
    return (run if run.is_dir() else run.with_suffix("")) / folder / name


def _cmd_eval(args) -> None:
    from amp_jax.eval import report as eval_report
    from amp_jax.training import learner_state
    from amp_jax.training.build import evaluate_run

    if args.test_episodes < 1 or (args.num_envs is not None and args.num_envs < 1):
        raise InputError("eval: --test_episodes and --num_envs must be >= 1")
    learner_state.kind_of(args.model_file)  # a run, learner state or exported policy, before eval/ is made
    if args.checkpoints is not None:
        return _eval_checkpoints(args)
    out = check_output_file(args.out or _output_file(args.model_file, "eval", "report.json"), (".json",), "--out")
    _configure_jax()
    report = evaluate_run(args.model_file, args.test_episodes, args.num_envs, args.seed or 0, args.engine)
    md, summary = eval_report.write_report(report, out)
    print(summary)
    print(f"wrote {out} and {md}")


def _eval_checkpoints(args) -> None:
    from amp_jax.eval import checkpoint_table
    from amp_jax.eval import report as eval_report
    from amp_jax.training import checkpoint
    from amp_jax.training.build import evaluate_checkpoints
    from amp_jax.training.learner_state import run_checkpoint

    run = Path(args.model_file)
    if run_checkpoint(run) != (run, None):
        raise InputError(f"eval --checkpoints: --model_file {run}: give the run directory whose checkpoints to "
                         "compare (RUN_DIR, not a checkpoint, learner state or exported policy)")
    if args.out is not None:
        raise InputError("eval --checkpoints: each report goes to RUN_DIR/eval/report_STEP.json; drop --out")
    kept = checkpoint.steps(run)
    if not kept:
        raise InputError(f"eval --checkpoints: {run} has no checkpoints")
    steps = kept if args.checkpoints == "all" else _steps(args.checkpoints)
    missing = sorted(set(steps) - set(kept))
    if missing:
        raise InputError(f"eval --checkpoints: {run / checkpoint.CHECKPOINTS_DIR} holds no step "
                         f"{', '.join(map(str, missing))} (it holds: {', '.join(map(str, kept))})")
    out_dir = check_output_dir(run / "eval", "eval --checkpoints")
    reports = {s: _output_file(run / checkpoint.CHECKPOINTS_DIR / str(s), "eval", "report.json") for s in steps}
    for path in [*reports.values(), *(p.with_suffix(".md") for p in reports.values()),
                 *(out_dir / name for name in checkpoint_table.FILES)]:
        check_output_file(path, (".json", ".md"), "eval --checkpoints")
    _configure_jax()
    results = []
    for step, report in evaluate_checkpoints(run, steps, args.test_episodes, args.num_envs, args.seed or 0, args.engine):
        results.append((step, report))
        if isinstance(report, InputError):
            print(f"iteration {step}: unreadable, left out ({report})", file=sys.stderr, flush=True)
            continue
        md, _ = eval_report.write_report(report, reports[step])
        values = ", ".join(f"{k} {eval_report.format_value(m['value'])}" for k, m in report["bar"]["measures"].items())
        print(f"iteration {step}: bar {'reached' if report['bar']['passed'] else 'not reached'} ({values}); wrote {md}",
              flush=True)
    if all(isinstance(r, InputError) for _, r in results):
        raise InputError(f"eval --checkpoints: none of {run}'s checkpoints {', '.join(map(str, steps))} could be read")
    md, text = checkpoint_table.write_table(results, out_dir, str(run))
    print(text.split("\n", 2)[2].strip())
    print(f"wrote {md} and {md.with_suffix('.json')}")


def _steps(text: str) -> list[int]:
    """The steps of --checkpoints STEP,STEP,... (each a whole number)."""
    parts = [x.strip() for x in text.split(",")]
    if not all(x.isdecimal() and x.isascii() for x in parts):
        raise InputError(f"eval --checkpoints {text}: expected all or steps separated by commas, e.g. 400,440")
    return sorted({int(x) for x in parts})


def _cmd_render(args) -> None:
    import jax

    from amp_jax.eval.rollout import frames_covering, make_rollout
    from amp_jax.render.frames import camera_scale_for, render_envs
    from amp_jax.render.video import write_video
    from amp_jax.training.build import load_trained

    num_envs = args.num_envs or 1
    if num_envs < 1 or args.num_episodes < 1 or (args.seconds is not None and not 0 < args.seconds < math.inf):
        raise InputError("render: --num_envs and --num_episodes must be >= 1 and --seconds positive")
    _check_video_size(args.width, args.height, num_envs)
    check_output_file(args.out, VIDEO, "--out")
    if Path(args.out).suffix == ".html" and (num_envs > 1 or args.show_reference):
        raise InputError("render: an .html replay shows one environment without the reference ghost; drop "
                         "--num_envs and --show_reference, or write a video (.mp4, .gif)")
    _configure_jax()
    cfg, env, learner, step, state = load_trained(args.model_file)
    fps = cfg.env.physics.control_freq
    num_steps = int(round(args.seconds * fps)) if args.seconds else args.num_episodes * env.episode_steps
    r = make_rollout(learner, env, num_envs, num_steps)(state, jax.random.PRNGKey(args.seed or 0))
    n = len(r.qpos) if args.seconds else frames_covering(r.done, args.num_episodes)
    if Path(args.out).suffix == ".html":
        from amp_jax.render.browser import write_replay

        print(f"wrote {write_replay(args.out, env.character.mj_model, r.qpos[:n, 0], fps)} ({n} frames, iteration {step})")
        return
    frames = render_envs(env.character.mj_model, r.qpos[:n], args.width, args.height,
                         r.reference[:n] if args.show_reference else None, camera_scale_for(r.reference))
    print(f"wrote {write_video(args.out, frames, fps)} ({len(frames)} frames, iteration {step})")


def _visualize(env, learner, state, video: Path, seed: int) -> None:
    """One deterministic rollout of episode length in MuJoCo's viewer, or, without a display, to `video`
    (shown inline in a notebook)."""
    import jax

    from amp_jax.eval.rollout import make_rollout
    from amp_jax.render.frames import render_qpos, view
    from amp_jax.render.video import show_in_notebook, write_video

    fps = env.cfg.physics.control_freq
    qpos = make_rollout(learner, env, 1, env.episode_steps)(state, jax.random.PRNGKey(seed)).qpos[:, 0]
    if view(env.character.mj_model, qpos, fps):
        return
    path = write_video(video, render_qpos(env.character.mj_model, qpos), fps)
    print(f"no display: wrote {path}")
    show_in_notebook(path)


def _cmd_view_motion(args) -> None:
    from amp_jax.catalog import case_for_character, case_path, resolve_path
    from amp_jax.config import load_config
    from amp_jax.motion.clip import load_motion_set
    from amp_jax.render.frames import camera_scale_for, caption, motion_qpos, render_qpos
    from amp_jax.render.video import write_video
    from amp_jax.training.build import build_character, build_motions

    if args.camera_scale is not None and not 0 < args.camera_scale < math.inf:
        raise InputError(f"--camera_scale: must be positive, got {args.camera_scale}")
    _check_video_size(args.width, args.height)
    check_output_file(args.out, VIDEO, "--out")
    if not resolve_path(args.motion).is_file():
        raise InputError(f"{args.motion}: motion file not found")
    config = args.config
    if config is None:  # the character the clip names (amp-jax clips record it), by the case that stands for it (catalog)
        clip = load_motion_set(resolve_path(args.motion))[0][0]
        if not clip.character:
            raise InputError(f"{args.motion}: the clip names no character; pass --config CASE")
        config = case_for_character(clip.character)
    cfg = load_config(case_path(config), {**_overrides(args), "env.motion_file": args.motion},
                      {"env.motion_file": args.motion})
    character = build_character(cfg)
    library, names = build_motions(cfg, character)
    dataset = Path(args.motion).suffix in (".yaml", ".yml")
    fps = cfg.env.physics.control_freq
    if Path(args.out).suffix == ".html":
        from amp_jax.render.browser import write_replay

        qpos = np.concatenate([motion_qpos(character.layout, library, i, fps) for i in range(len(names))])
        print(f"wrote {write_replay(args.out, character.mj_model, qpos, fps)} ({len(qpos)} frames, {len(names)} clip{'s' * (len(names) != 1)})")
        return
    frames = []
    for i, name in enumerate(names):
        qpos = motion_qpos(character.layout, library, i, fps)
        scale = args.camera_scale or camera_scale_for(qpos)
        clip_frames = render_qpos(character.mj_model, qpos, args.width, args.height, camera_scale=scale)
        frames.append(caption(clip_frames, name) if dataset else clip_frames)
        print(f"{name}: {len(qpos)} frames")
    frames = np.concatenate(frames, axis=0)
    print(f"wrote {write_video(args.out, frames, fps)} ({len(frames)} frames)")


def _cmd_retarget(args) -> None:
    from amp_jax.motion_tools.retarget import retarget_file

    check_output_file(args.out, (".npz",), "--out")
    quality = retarget_file(args.motion, args.target, args.out, source=args.source)
    print(f"wrote {args.out}")
    for k, v in quality.items():
        print(f"  {k}: {v}")


def _cmd_inspect(args) -> None:
    import json

    from amp_jax.catalog import resolve_path
    from amp_jax.motion_tools.clip_quality import check, format_report, inspect_file

    if args.json:
        check_output_file(args.json, (".json",), "--json")
    report = inspect_file(resolve_path(args.motion), args.config)
    problems = check(report)
    print(format_report(report))
    print("  limits: " + ("ok" if not problems else "exceeded"))
    for p in problems:
        print(f"    {p}")
    if args.json:
        Path(args.json).write_text(json.dumps({**report, "problems": problems}, indent=1))
        print(f"wrote {args.json}")
    if args.strict and problems:
        sys.exit(1)


def _cmd_import(args) -> None:
    from amp_jax.motion_tools.importers import import_motion

    check_output_file(args.out, (".npz",), "--out")
    clip = import_motion(args.source, args.format, args.out, args.character, floor=args.floor, loop=args.loop)
    print(f"wrote {args.out}: {clip.num_frames} frames at {clip.fps:g} Hz of '{clip.character}' "
          f"({clip.dof_pos.shape[1]} DoFs); check it with `amp-jax inspect {args.out}`")


def _cmd_plot(args) -> None:
    from amp_jax.training.plot import plot_runs

    if args.out or (len(args.run_dirs) == 1 and (Path(args.run_dirs[0]) / "metrics.jsonl").is_file()):
        check_output_dir(args.out or Path(args.run_dirs[0]) / "plots", "--out")
    for path in plot_runs(args.run_dirs, args.out):
        print(f"wrote {path}")


def _cmd_bench(args) -> None:
    from amp_jax import catalog
    from amp_jax.config import parse_override
    from amp_jax.training import bench

    characters = args.character or ([] if args.case else list(catalog.CHARACTER_CASES))
    unknown = [c for c in characters if c not in catalog.CHARACTER_CASES]
    if unknown or min(args.num_envs) < 1 or args.repeats < 1:
        raise InputError(f"bench: unknown character {unknown} (known: {list(catalog.CHARACTER_CASES)})" if unknown
                         else "bench: --num_envs and --repeats must be >= 1")
    cases = [catalog.CHARACTER_CASES[c] for c in characters] + list(args.case or [])
    overrides = dict(parse_override(o) for o in args.overrides)
    if args.json:
        check_output_file(args.json, (".json",), "--json")
    _configure_jax()
    results = []
    for case in cases:
        for num_envs in args.num_envs:
            results.append(bench.bench_case(case, num_envs, args.repeats, args.backend, overrides, args.physics_only))
            print(bench.table(results[-1:]).splitlines()[-1], flush=True)
    print(bench.table(results))
    if args.json:
        Path(args.json).write_text(bench.to_json(results))
        print(f"wrote {args.json}")


def _cmd_export(args) -> None:
    from amp_jax.training.export import export

    if args.format == "learner":
        check_output_dir(args.out, "--out")
    else:
        check_output_file(args.out, (f".{args.format}",), "--out")
    if args.networks_only and args.format != "learner":
        raise InputError("export: --networks_only is for --format learner")
    for path in export(args.model, args.out, args.format, args.networks_only):
        print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB)")


def _cmd_cases(args) -> None:
    from amp_jax.catalog import case_names, case_path
    from amp_jax.config import load_config

    for name in case_names():
        print(f"{name:40s} {load_config(case_path(name)).description}")


def _cmd_config(args) -> None:
    from amp_jax.catalog import case_path
    from amp_jax.config import load_config, parse_override
    from amp_jax.config_text import commented_yaml

    cfg = load_config(case_path(args.case), dict(parse_override(o) for o in args.overrides))
    sets = "".join(f" --set {o}" for o in args.overrides)
    print(commented_yaml(cfg, f"amp-jax config {args.case}{sets}: the resolved config.\n`# default: X` marks a "
                              "value that differs from the default (amp_jax/config.py)."), end="")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args, unknown = _parser().parse_known_args(_mimickit_argv(argv))
        if args.command is None:
            _parser().print_help()
            return 2
        if unknown:
            raise InputError(f"{args.command} does not take {' '.join(unknown)} (see amp-jax {args.command} --help)")
        {"train": _cmd_train, "test": _cmd_test, "eval": _cmd_eval, "render": _cmd_render, "view-motion": _cmd_view_motion,
         "retarget": _cmd_retarget, "inspect": _cmd_inspect, "import": _cmd_import, "bench": _cmd_bench, "plot": _cmd_plot,
         "export": _cmd_export, "cases": _cmd_cases, "config": _cmd_config}[args.command](args)
        return 0
    except (InputError, FloatingPointError) as e:  # bad input (2); training diverged (1, amp_jax.training.trainer)
        if debug:
            raise
        print(f"amp-jax: error: {_one_line(str(e))}", file=sys.stderr)
        return 2 if isinstance(e, InputError) else 1
    except KeyboardInterrupt:  # Ctrl-C before training's own handler is in place (loading, building)
        if debug:
            raise
        print("\namp-jax: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (`amp-jax cases | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except OSError as e:  # a full disk while writing anything but a checkpoint (training.checkpoint.DiskFull)
        if debug or e.errno != errno.ENOSPC:
            raise
        print(f"amp-jax: error: {f'{e.filename}: ' if e.filename else ''}the disk is full", file=sys.stderr)
        return 2  # as checkpoint.DiskFull, an InputError: the user frees space and goes on


def _one_line(message: str) -> str:
    """A message on one line (YAML and MuJoCo errors span several)."""
    return " | ".join(line.strip() for line in message.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
