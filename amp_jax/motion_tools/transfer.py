"""Transfer a clip between characters that share a skeleton, by DoF name.

The target's DoFs that the source has (same name) are copied; the others are held at given values
(e.g. the sword-and-shield character's wrist, held at a guard pose while the humanoid's locomotion
clips drive the rest). Root motion is copied unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from amp_jax.characters.character import Layout
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip


def transfer_by_dof_name(clip: Clip, source: Layout, target: Layout, held: dict[str, float]) -> Clip:
    """A clip for `target` from a clip of `source`; DoFs missing from the source take `held` values."""
    src_index = {n: i for i, n in enumerate(source.dof_names)}
    missing = [n for n in target.dof_names if n not in src_index and n not in held]
    if missing:
        raise InputError(f"{target.name}: DoFs {missing} are neither in {source.name} nor given a held value")
    dof = np.empty((clip.num_frames, target.num_dof), np.float32)
    for j, name in enumerate(target.dof_names):
        dof[:, j] = clip.dof_pos[:, src_index[name]] if name in src_index else held[name]
    return dataclasses.replace(clip, dof_pos=dof, character=target.name, dof_names=target.dof_names)
