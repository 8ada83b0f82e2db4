"""Orbax checkpoints of the full TrainState (parameters, optimiser states, normalisers, replay
buffer, environment states, rng, counters) plus the resolved config, in RUN_DIR/checkpoints.

Orbax writes each step to a temporary directory and renames it when complete, so the newest
complete checkpoint is never half-written (tests/test_reliability.py kills a saving process to check).
A step that is unreadable anyway (a disk fault, a truncated copy) is skipped by `restore`, and moved to
RUN_DIR/checkpoints_unreadable/ by `set_aside_newer` when training resumes before it.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import yaml

from amp_jax.config import Config, config_from_dict, to_dict
from amp_jax.errors import InputError

CONFIG_FILE = "config.yaml"
UNREADABLE_DIR = "checkpoints_unreadable"


def save_config(run_dir: Path, cfg: Config) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_run_config(run_dir: str | Path) -> Config:
    """The resolved config a run was started with."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise InputError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    try:
        return config_from_dict(data)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def manager(run_dir: str | Path, keep: int = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(run_dir).absolute() / "checkpoints", options=options)


def _flat(tree) -> dict:
    """{key path: leaf} of the non-empty leaves (Orbax refuses zero-size arrays, e.g. mjx.Data.act)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves if leaf.size > 0}


def _unflat(flat: dict, template):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    return jax.tree_util.tree_unflatten(treedef, [flat.get(jax.tree_util.keystr(p), leaf) for p, leaf in leaves])


def save(mgr: ocp.CheckpointManager, step: int, state) -> None:
    mgr.save(step, args=ocp.args.StandardSave(_flat(state)))
    mgr.wait_until_finished()


def restore(mgr: ocp.CheckpointManager, template, step: int | None = None):
    """Restore the newest (or the given) checkpoint into the structure of `template`.

    Falls back to older checkpoints if the newest cannot be read. Raises InputError if none can.
    """
    steps = sorted(mgr.all_steps(), reverse=True) if step is None else [step]
    if not steps:
        raise InputError(f"{mgr.directory}: no checkpoint found")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _flat(template))
    errors = []
    for s in steps:
        try:
            return s, _unflat(mgr.restore(s, args=ocp.args.StandardRestore(abstract)), template)
        except Exception as e:  # a corrupt or truncated step: try the one before
            errors.append(f"step {s}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    raise InputError(f"{mgr.directory}: no readable checkpoint ({'; '.join(errors)})")


def restore_leaves(run_dir: str | Path, keys: list[str]) -> tuple[int, dict]:
    """(step, {key: numpy array}) of the leaves named by `keys` (Orbax keys, as `save` writes them) in
    the newest readable checkpoint of a run, reading nothing else (not the replay buffer or environments);
    keys the checkpoint lacks are left out. Raises InputError if no checkpoint can be read."""
    directory = Path(run_dir).absolute() / "checkpoints"
    mgr = ocp.CheckpointManager(directory, item_handlers=ocp.PyTreeCheckpointHandler()) if directory.is_dir() else None
    steps = sorted(mgr.all_steps(), reverse=True) if mgr else []
    if not steps:
        raise InputError(f"{directory}: no checkpoint found")
    errors = []
    for s in steps:
        try:
            saved = mgr.item_metadata(s).tree
            item = {k: jax.ShapeDtypeStruct(saved[k].shape, saved[k].dtype) for k in keys if k in saved}
            as_numpy = {k: ocp.RestoreArgs(restore_type=np.ndarray) for k in item}
            return s, mgr.restore(s, args=ocp.args.PyTreeRestore(item, restore_args=as_numpy, partial_restore=True))
        except Exception as e:  # a corrupt or truncated step: try the one before
            errors.append(f"step {s}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    raise InputError(f"{directory}: no readable checkpoint ({'; '.join(errors)})")


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
