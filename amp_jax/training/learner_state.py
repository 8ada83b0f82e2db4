"""What a trained learner is saved as outside a run directory, and how a run starts from it.

A leaf is named by its path in the TrainState ("actor_params/params/Dense_0/kernel", "obs_norm/mean",
"actor_opt/1/0/trace/params/head/bias", "iteration"). Three sources hold such leaves:

- a run directory: its newest readable checkpoint, or one named checkpoint, RUN/checkpoints/STEP (only the
  learner's leaves are read, not the replay buffer or the environments);
- a learner state (`amp-jax export RUN_DIR --format learner`): a folder of LEARNER_FIELDS (networks,
  optimiser states, normalisers, counters; with --networks_only, NETWORK_FIELDS: no optimiser states, half
  the size) in .npz parts of at most PART_BYTES each (so that every file fits the 16 MiB a GPU session
  returns) and learner_state.yaml (the resolved config and the fields held);
- an exported policy (`amp-jax export RUN_DIR --out policy.npz`, amp_jax.training.export): POLICY_FIELDS (actor,
  discriminator and their normalisers), the action log_std and the resolved config in one .npz.

`amp-jax train --init_from PATH` (init_from) continues from the learner of any of them, with a fresh
replay buffer and fresh environments; from an exported policy only the actor, the discriminator and
their normalisers are set (the critic, the optimiser states and the counters start fresh); from a
networks-only learner state the optimisers start fresh (their moments rebuild within a few updates).
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import jax
import numpy as np
import yaml

from amp_jax.config import Config, config_from_dict, to_dict
from amp_jax.errors import InputError
from amp_jax.training import checkpoint

LEARNER_FIELDS = ("actor_params", "critic_params", "disc_params", "actor_opt", "critic_opt", "disc_opt",
                  "obs_norm", "disc_norm", "iteration", "samples")
NETWORK_FIELDS = tuple(f for f in LEARNER_FIELDS if not f.endswith("_opt"))
POLICY_FIELDS = ("actor_params", "obs_norm", "disc_params", "disc_norm")
LEARNER_FORMAT = "amp-jax learner state 1"
POLICY_FORMAT = "amp-jax policy 1"
META_FILE = "learner_state.yaml"
SAMPLES_KEY = ".samples"  # the Orbax key of TrainState.samples in a run's checkpoints
PART_BYTES = 15 * 2**20  # under the 16 MiB per file that a GPU session returns


def _name(path) -> str:
    return jax.tree_util.keystr(path, simple=True, separator="/")


def _field(name: str) -> str:
    return name.split("/", 1)[0]


def leaves(tree, fields=LEARNER_FIELDS) -> dict[str, np.ndarray]:
    """{name: array} of a TrainState's (or a Policy's) leaves in `fields`."""
    return {_name(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
            if _field(_name(p)) in fields}


@dataclasses.dataclass(frozen=True)
class Saved:
    """Leaves read from a run directory, a learner state or an exported policy."""

    kind: str  # "run", "learner" or "policy"
    fields: tuple[str, ...]  # the fields it holds
    leaves: dict[str, np.ndarray]
    iteration: int  # the training iteration it was saved at
    samples: float | None = None  # the environment steps trained on by then (None: not recorded)


def kind_of(path: str | Path) -> str:
    """"run" (a run directory or one of its checkpoints), "learner" or "policy"; InputError for anything else."""
    path = Path(path)
    if path.is_dir() and (path / META_FILE).is_file():
        return "learner"
    if run_checkpoint(path) is not None:
        return "run"
    if path.is_file() and path.suffix == ".npz" and _npz_format(path) == POLICY_FORMAT:
        return "policy"
    raise InputError(f"{path}: not a run directory, a run's checkpoint (RUN/checkpoints/STEP), a learner state "
                     "(export --format learner) or an exported policy .npz (export --out policy.npz)")


def run_checkpoint(path: str | Path) -> tuple[Path, int | None] | None:
    """(run directory, step) of a run directory (step None: its newest readable checkpoint) or of one of its
    checkpoints, RUN/checkpoints/STEP; None for anything else."""
    path = Path(path)
    if path.is_dir() and (path / checkpoint.CONFIG_FILE).is_file():
        return path, None
    run = path.parent.parent
    if (path.is_dir() and path.name.isdigit() and path.parent.name == checkpoint.CHECKPOINTS_DIR
            and (run / checkpoint.CONFIG_FILE).is_file()):
        return run, int(path.name)
    return None


def _npz_format(path: Path) -> str | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["format"]) if "format" in data.files else None
    except (OSError, ValueError, zipfile.BadZipFile):
        return None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise InputError(f"{path}: cannot read: {e}") from None


def _config(path: Path, data) -> Config:
    try:
        return config_from_dict(data, checkpoint.older_run_values(data) if isinstance(data, dict) else None)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def read_config(path: str | Path) -> Config:
    """The resolved config saved with a run directory, a learner state or an exported policy."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "run":
        return checkpoint.load_run_config(run_checkpoint(path)[0])
    if kind == "learner":
        return _config(path / META_FILE, yaml.safe_load((path / META_FILE).read_text())["config"])
    return _config(path, yaml.safe_load(str(_load_npz(path)["config.yaml"])))


def read(path: str | Path, template) -> Saved:
    """The learner's leaves saved at path. A run directory's are read from its newest readable checkpoint
    (a run's checkpoint: from that one) for the leaves of `template` (a TrainState or Policy, arrays or shapes)
    that it holds."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "run":
        keys = {jax.tree_util.keystr(p): _name(p) for p, _ in jax.tree_util.tree_flatten_with_path(template)[0]
                if _field(_name(p)) in LEARNER_FIELDS}
        keys[SAMPLES_KEY] = "samples"
        step, restored = checkpoint.restore_leaves(*run_checkpoint(path), list(keys))
        found = {keys[k]: v for k, v in restored.items()}
        return Saved(kind, LEARNER_FIELDS, found, step, _samples(found))
    if kind == "learner":
        meta = yaml.safe_load((path / META_FILE).read_text())
        found = {}
        for part in meta["parts"]:
            found.update(_load_npz(path / part))
        return Saved(kind, tuple(meta.get("fields", LEARNER_FIELDS)), found, meta["iteration"], _samples(found))
    data = _load_npz(path)
    return Saved(kind, POLICY_FIELDS, {k: v for k, v in data.items() if _field(k) in POLICY_FIELDS},
                 int(data["iteration"]), float(data["samples"]) if "samples" in data else None)


def _samples(found: dict[str, np.ndarray]) -> float | None:
    return float(found["samples"]) if "samples" in found else None


def _sizes(names_shapes: dict) -> str:
    """The sizes that decide whether saved leaves fit a case, from their shapes."""
    def size(name):
        return names_shapes[name][-1] if name in names_shapes else "?"

    hidden, i = [], 0
    while f"actor_params/params/Dense_{i}/bias" in names_shapes:
        hidden.append(size(f"actor_params/params/Dense_{i}/bias"))
        i += 1
    return (f"observations {size('obs_norm/mean')}, discriminator observations {size('disc_norm/mean')}, "
            f"actions {size('actor_params/params/head/bias')}, hidden layers {hidden}")


def fill(template, saved: Saved, source: str | Path):
    """template with the leaves of the saved fields replaced by the saved arrays (numpy); InputError when
    they do not fit (a missing or extra leaf, another shape or dtype: other network, observation or
    action sizes, another optimiser)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    fields = set(saved.fields) & {_field(_name(p)) for p, _ in flat}  # e.g. a Policy from a learner state
    wanted = {_name(p): x for p, x in flat if _field(_name(p)) in fields}
    given = {k: v for k, v in saved.leaves.items() if _field(k) in fields}
    problems = [f"{k} missing" for k in wanted if k not in given]
    problems += [f"{k} not in this case" for k in given if k not in wanted]
    problems += [f"{k} is {given[k].dtype}{list(given[k].shape)}, this case's {np.dtype(x.dtype)}{list(x.shape)}"
                 for k, x in wanted.items() if k in given and (given[k].shape != x.shape or given[k].dtype != x.dtype)]
    if problems:
        raise InputError(f"{source}: does not fit this case ({problems[0]}; saved: "
                         f"{_sizes({k: v.shape for k, v in saved.leaves.items()})}; this case: "
                         f"{_sizes({k: x.shape for k, x in wanted.items()})})")
    return jax.tree_util.tree_unflatten(treedef, [given.get(_name(p), x) for p, x in flat])


def init_from(state, path: str | Path, shardings=None):
    """A fresh TrainState `state` (init_train_state) continued from the learner saved at path: its
    networks, optimiser states, normalisers and counters, with state's replay buffer and environments,
    and state's rng key folded with the saved iteration (new draws each session). Also a console line
    saying what was taken. `shardings` places the result over a mesh (amp_jax.learning.sharding)."""
    saved = read(path, state)
    filled = fill(state, saved, path).replace(key=jax.random.fold_in(state.key, saved.iteration))
    filled = jax.device_put(filled, shardings)
    if saved.kind == "policy":
        message = (f"initialised the actor, the discriminator and their normalisers from the exported policy "
                   f"{path}; the critic, the optimiser states and the counters start fresh")
    else:
        taken = "networks, optimiser states" if "actor_opt" in saved.fields else "networks (fresh optimisers)"
        message = (f"initialised the {taken} and normalisers from {path} at iteration "
                   f"{saved.iteration}, {saved.samples:.0f} samples (train.max_samples counts "
                   "from the start); fresh replay buffer and environments")
    return filled, message


def save(path: str | Path, cfg: Config, learner_leaves: dict[str, np.ndarray]) -> list[Path]:
    """Write a learner state (leaves(state, fields) of a TrainState, LEARNER_FIELDS or NETWORK_FIELDS) to the
    folder path: .npz parts of at most PART_BYTES (a leaf larger than that gets a part of its own) and
    learner_state.yaml. Returns the files written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: a learner state is a folder; this is a file")
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("part-*.npz"):
        old.unlink()
    parts = []  # first fit, largest leaves first
    for name, value in sorted(learner_leaves.items(), key=lambda item: -item[1].nbytes):
        part = next((p for p in parts if sum(v.nbytes for v in p.values()) + value.nbytes <= PART_BYTES), None)
        if part is None:
            parts.append(part := {})
        part[name] = value
    files = []
    for i, part in enumerate(parts):
        files.append(path / f"part-{i:03d}.npz")
        np.savez(files[-1], **part)
    meta = {"format": LEARNER_FORMAT, "case": cfg.case, "iteration": int(learner_leaves["iteration"]),
            "samples": float(learner_leaves["samples"]), "parts": [f.name for f in files],
            "fields": [f for f in LEARNER_FIELDS if any(_field(k) == f for k in learner_leaves)], "config": to_dict(cfg)}
    (path / META_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    return files + [path / META_FILE]
