"""Orbax checkpoints of the full TrainState (parameters, optimiser states, normalisers, replay
buffer, environment states, rng, counters) plus the resolved config, in RUN_DIR/checkpoints.

Orbax writes each step to a temporary directory and renames it when complete, so the newest
complete checkpoint is never half-written (tests/test_reliability.py kills a saving process to check).
A step that is unreadable anyway (a disk fault, a truncated copy) is skipped by `restore`, and moved to
RUN_DIR/checkpoints_unreadable/ by `set_aside_newer` when training resumes before it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import shutil
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import yaml

from amp_jax.config import Config, dotted_keys, load_config, read_yaml, to_dict
from amp_jax.errors import InputError

CONFIG_FILE = "config.yaml"
CHECKPOINTS_DIR = "checkpoints"  # RUN_DIR/checkpoints/STEP
UNREADABLE_DIR = "checkpoints_unreadable"
# Settings a resumed run may change (and then records): when it stops, how often it saves, tests, measures
# and films, how many checkpoints it keeps, the devices that share the environments (another split changes
# sums at float level only) and the description. Every other setting is the run's own.
RESUME_MAY_CHANGE = ("description", "train.max_samples", "train.iters_per_output", "train.test_episodes",
                     "train.keep_checkpoints", "train.video_every", "train.eval_every", "train.num_devices")

# Config keys added after runs were recorded without them, at the value that reproduces such a run (a run's
# config.yaml holds every key there was when it started, so a key it lacks is a feature it ran without).
ABSENT_IN_OLDER_RUNS = {"env.physics.ball_axis_limits": False}


def save_config(run_dir: Path, cfg: Config) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_run_config(run_dir: str | Path, overrides: dict | None = None, flags: dict[str, str] | None = None) -> Config:
    """The resolved config a run was started with (a key added since at the value that reproduces the run:
    ABSENT_IN_OLDER_RUNS), with dotted-key overrides on top (errors name them as config.load_config does)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise InputError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    return load_config(path, {**older_run_values(read_yaml(path)), **(overrides or {})}, flags)


def older_run_values(recorded: dict) -> dict:
    """{key: value} of the ABSENT_IN_OLDER_RUNS keys that a recorded config (a nested mapping) lacks."""
    keys = dotted_keys(recorded)
    return {k: v for k, v in ABSENT_IN_OLDER_RUNS.items() if k not in keys}


def resume_changes(run_dir: str | Path, cfg: Config) -> list[str]:
    """The settings of `cfg` that differ from those RUN_DIR/config.yaml records, as 'key: old -> new', when
    all are RESUME_MAY_CHANGE. Raises InputError naming the others, if any (before anything is written)."""
    old, new = dotted_keys(to_dict(load_run_config(run_dir))), dotted_keys(to_dict(cfg))
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    lines = [f"{k}: {old.get(k)} -> {new.get(k)}" for k in changed]
    fixed = [line for k, line in zip(changed, lines) if k not in RESUME_MAY_CHANGE]
    if fixed:
        raise InputError(f"{run_dir}: a resumed run keeps the settings in its {CONFIG_FILE}, and these differ: "
                         f"{'; '.join(fixed)}; resume without changing them, or start a new run with another "
                         f"--out_dir (--init_from {run_dir} continues its learner there)")
    return lines


def manager(run_dir: str | Path, keep: int = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(run_dir).absolute() / CHECKPOINTS_DIR, options=options)


def _flat(tree) -> dict:
    """{key path: leaf} of the non-empty leaves (Orbax refuses zero-size arrays, e.g. mjx.Data.act)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves if leaf.size > 0}


def _unflat(flat: dict, template):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    return jax.tree_util.tree_unflatten(treedef, [flat.get(jax.tree_util.keystr(p), leaf) for p, leaf in leaves])


class DiskFull(InputError):
    """A checkpoint did not fit on its disk (its partial write removed, the older ones intact)."""


def space_warning(mgr: ocp.CheckpointManager, keep: int) -> str | None:
    """A line saying that the checkpoints still to come (up to `keep`, and one more while the oldest is
    replaced), each the size of the newest on disk, will not fit in the free space, or None if they will."""
    newest = mgr.latest_step()
    if newest is None:
        return None
    directory = Path(mgr.directory)
    one = sum(f.stat().st_size for f in (directory / str(newest)).rglob("*") if f.is_file())
    need, free = one * max(1, keep + 1 - len(mgr.all_steps())), shutil.disk_usage(directory).free
    if need <= free:
        return None
    return (f"warning: {directory}: a checkpoint takes {_gb(one)} and train.keep_checkpoints is {keep}: the run "
            f"will need about {_gb(need)} more, and {_gb(free)} is free; lower train.keep_checkpoints or free "
            f"space before the disk fills")


def save(mgr: ocp.CheckpointManager, step: int, state) -> None:
    """Write `step` and wait until it is complete. On a full disk: DiskFull, saying so in one line, with the
    partial write removed (Orbax's own errors and their tracebacks silenced)."""
    try:
        with _quiet_orbax():
            mgr.save(step, args=ocp.args.StandardSave(_flat(state)))
            mgr.wait_until_finished()
    except Exception as e:
        if not _is_disk_full(e):
            raise
        # The failed write's futures report it again when collected, through asyncio's logger, after the
        # run has said so in one line: the run stops here, so silence them for the rest of the process.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        directory = Path(mgr.directory)
        for partial in directory.glob(f"{step}.orbax-checkpoint-tmp*"):
            shutil.rmtree(partial, ignore_errors=True)
        mgr.reload()
        newest = mgr.latest_step()
        kept = f"the newest complete checkpoint is step {newest}" if newest is not None else "no checkpoint was written"
        raise DiskFull(f"{directory}: the disk is full: checkpoint {step} could not be written "
                       f"({_gb(shutil.disk_usage(directory).free)} free); {kept}; free space or lower "
                       f"train.keep_checkpoints, then go on with amp-jax train --resume") from None


def _is_disk_full(error: BaseException) -> bool:
    """Whether an error (or one it was raised from) is ENOSPC: an OSError, or TensorStore's message as Orbax
    passes it on ("No space left on device [os_error_code='28']")."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e7 else f"{n / 1e6:.2f} MB"


def _newest_readable(directory, steps: list[int], read):
    """(step, read(step)) of the first of `steps` that can be read, saying on stderr which steps before it
    were skipped and why. Raises InputError if none can."""
    errors = []
    for s in steps:
        try:
            with _quiet_orbax():
                value = read(s)
        except Exception as e:  # a corrupt or truncated step: try the one before
            errors.append(f"step {s}: {_reason(e)}")
            continue
        if errors:
            print(f"amp-jax: skipped unreadable checkpoint {'; '.join(errors)}; using step {s}", file=sys.stderr,
                  flush=True)
        return s, value
    raise InputError(f"{directory}: no readable checkpoint ({'; '.join(errors)})")


def _steps_to_try(mgr: ocp.CheckpointManager, step: int | None) -> list[int]:
    """The given step, or else all of the manager's steps, newest first."""
    return sorted(mgr.all_steps(), reverse=True) if step is None else [step]


def restore(mgr: ocp.CheckpointManager, template, step: int | None = None):
    """Restore the newest (or the given) checkpoint into the structure of `template`.

    Falls back to older checkpoints if the newest cannot be read, saying on stderr which step it skipped
    and why. Raises InputError if none can.
    """
    steps = _steps_to_try(mgr, step)
    if not steps:
        raise InputError(f"{mgr.directory}: no checkpoint found")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _flat(template))
    read = lambda s: mgr.restore(s, args=ocp.args.StandardRestore(abstract))  # noqa: E731
    s, restored = _newest_readable(mgr.directory, steps, read)
    return s, _unflat(restored, template)


def _reader(run_dir: str | Path) -> ocp.CheckpointManager | None:
    """A manager that reads a run's checkpoints (None if it has no checkpoints folder); InputError if the
    folder cannot be listed."""
    directory = Path(run_dir).absolute() / CHECKPOINTS_DIR
    if not directory.is_dir():
        return None
    try:
        return ocp.CheckpointManager(directory, item_handlers=ocp.PyTreeCheckpointHandler())
    except OSError as e:
        raise InputError(f"{directory}: cannot read its checkpoints ({e.strerror or e})") from None


def steps(run_dir: str | Path) -> list[int]:
    """The steps of a run's checkpoints, oldest first (none if it has no checkpoints folder)."""
    mgr = _reader(run_dir)
    return sorted(mgr.all_steps()) if mgr else []


def restore_leaves(run_dir: str | Path, step: int | None, keys: list[str]) -> tuple[int, dict]:
    """(step, {key: numpy array}) of the leaves named by `keys` (Orbax keys, as `save` writes them) in
    the newest readable (or the given) checkpoint of a run, reading nothing else (not the replay buffer or
    environments); keys the checkpoint lacks are left out. Falls back as `restore` does."""
    directory = Path(run_dir).absolute() / CHECKPOINTS_DIR
    mgr = _reader(run_dir)
    steps = _steps_to_try(mgr, step) if mgr else []
    if not steps:
        raise InputError(f"{directory}: no checkpoint found")

    def read(s):
        saved = mgr.item_metadata(s).tree
        item = {k: jax.ShapeDtypeStruct(saved[k].shape, saved[k].dtype) for k in keys if k in saved}
        as_numpy = {k: ocp.RestoreArgs(restore_type=np.ndarray) for k in item}
        return mgr.restore(s, args=ocp.args.PyTreeRestore(item, restore_args=as_numpy, partial_restore=True))

    return _newest_readable(directory, steps, read)


def _reason(error: Exception) -> str:
    """Why a step could not be read, in a few words: the innermost cause of Orbax's or TensorStore's
    message, without TensorStore's spec dump."""
    text = re.sub(r"\s*\[tensorstore_spec=.*", "", str(error).splitlines()[0] if str(error) else "")
    if len(text) > 100:
        text = text.rsplit(": ", 1)[-1][:100]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _closed_loop(error) -> bool:
    return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


def _drop_closed_loop_errors() -> None:
    """Drop, for the rest of the process, the "Event loop is closed" errors of TensorStore callbacks into
    Orbax's closed event loop (reported through sys.unraisablehook): when a damaged step fails, reads still in
    flight call back later, also after `restore` has returned. Everything else still reaches the hook."""
    hook = sys.unraisablehook
    if getattr(hook, "drops_closed_loop_errors", False):
        return

    def filtered(info):
        if not _closed_loop(info.exc_value):
            hook(info)

    filtered.drops_closed_loop_errors = True
    sys.unraisablehook = filtered


@contextlib.contextmanager
def _quiet_orbax():
    """Silence what Orbax and TensorStore print while failing to read a damaged step or to write one: absl's
    and Orbax's error logs, and the "Event loop is closed" errors of TensorStore callbacks into Orbax's closed
    event loop (sys.excepthook here; sys.unraisablehook from here on: _drop_closed_loop_errors)."""
    loggers = [logging.getLogger(name) for name in ("absl", "orbax")]
    levels = [lg.level for lg in loggers]
    excepthook = sys.excepthook
    _drop_closed_loop_errors()
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    sys.excepthook = lambda kind, value, tb: None if _closed_loop(value) else excepthook(kind, value, tb)
    try:
        yield
    finally:
        sys.excepthook = excepthook
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def set_aside_newer(mgr: ocp.CheckpointManager, step: int) -> list[Path]:
    """Move the checkpoints newer than `step` (those `restore` could not read) to
    RUN_DIR/checkpoints_unreadable/, so that training can write their step numbers again. Returns the new
    locations."""
    directory = Path(mgr.directory)
    moved = []
    for s in sorted(x for x in mgr.all_steps() if x > step):
        dest = directory.parent / UNREADABLE_DIR / str(s)
        k = 1
        while dest.exists():
            dest, k = directory.parent / UNREADABLE_DIR / f"{s}.{k}", k + 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        (directory / str(s)).rename(dest)
        moved.append(dest)
    if moved:
        mgr.reload()
    return moved
