"""Data parallelism over devices: environments split along one mesh axis, everything else replicated.

The training step is written once for a global batch; jit partitions it (GSPMD) from the shardings
given here: every per-environment array (the environment states, running episode sums) is split over
the ENVS axis, parameters, optimiser states, normalisers and the replay buffer are replicated. Means
over the batch (losses, so gradients, and the normaliser statistics) become cross-device reductions,
so one device and N devices run the same algorithm on the same total number of environments.

Multi-host: call `jax.distributed.initialize()` in every process first (`amp-jax train --distributed`);
jax.devices() then lists every host's devices and the same mesh spans them.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from amp_jax.errors import InputError

ENVS = "envs"


def make_mesh(num_devices: int, num_envs: int) -> Mesh | None:
    """A 1-D mesh over the first num_devices devices (0: all visible); None for a single device."""
    available = jax.devices()
    n = len(available) if num_devices == 0 else num_devices
    if not 1 <= n <= len(available):
        raise InputError(f"train.num_devices: {num_devices} requested, {len(available)} visible "
                         f"({available[0].platform})")
    if num_envs % n:
        raise InputError(f"train.num_envs: {num_envs} environments do not split evenly over {n} devices")
    return Mesh(np.array(available[:n]), (ENVS,)) if n > 1 else None


def per_env():
    """A state field whose arrays lead with the environment axis (split over the mesh); other fields are
    replicated."""
    return struct.field(metadata={ENVS: True})


def state_shardings(state_type, mesh: Mesh):
    """NamedShardings for a state dataclass, as a tree prefix (one sharding per field), from its fields'
    own annotations: per_env() fields split on their leading axis, the rest replicated."""
    split = NamedSharding(mesh, PartitionSpec(ENVS))
    whole = NamedSharding(mesh, PartitionSpec())
    return state_type(**{f.name: split if f.metadata.get(ENVS) else whole for f in dataclasses.fields(state_type)})


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())
