"""MJX's model and data on the chosen backend: `jax` (MJX's own) or `warp` (MuJoCo Warp through MJX).

Both backends run the same environment code; what differs is set up here. MuJoCo Warp keeps the contacts
of all worlds in one shared buffer (not vmapped: merge its data with Data.where, never a tree map), so a
world's data is made for a number of worlds. It gets the JAX backend's static capacity per world (its
contact slots and constraint rows), so both backends can keep the same contacts.
"""

from __future__ import annotations

import contextlib
import io
import sys

import mujoco


def _import_mjx():
    """mujoco.mjx, without the lines it prints on stdout when MuJoCo Warp's packages are missing or broken
    (amp_jax.training.build.check_backend says so when env.physics.impl asks for warp); any other output is kept."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        from mujoco import mjx
    for line in printed.getvalue().splitlines(keepends=True):
        if not line.startswith(("Failed to import warp:", "Failed to import mujoco_warp:")):
            sys.stdout.write(line)
    return mjx


mjx = _import_mjx()


def put_model(mj_model: mujoco.MjModel, impl: str) -> mjx.Model:
    """The MJX model on the backend. MuJoCo Warp prints a warning on every step that spends its solver's
    whole iteration budget; the budget is low on purpose (BENCHMARKS.md, MJX settings), so that warning is
    silenced and only buffer overflows stay loud."""
    model = mjx.put_model(mj_model, impl=impl)
    if impl != "warp":
        return model
    import mujoco_warp

    quiet = ~(mujoco_warp.OverflowType.ITERATIONS | mujoco_warp.OverflowType.LS_ITERATIONS)
    opt = model.opt.replace(_impl=model.opt._impl.replace(warn_overflow=int(model.opt._impl.warn_overflow & quiet)))
    return model.replace(opt=opt)


def world_capacity(mj_model: mujoco.MjModel) -> tuple[int, int]:
    """(contact slots, constraint rows) of one world in the JAX backend, where both are static."""
    data = mjx.make_data(mj_model, impl="jax")
    return data._impl.contact.dist.shape[0], data._impl.efc_J.shape[0]


def make_world_data(mj_model: mujoco.MjModel, impl: str, num_worlds: int = 1) -> mjx.Data:
    """One world's MJX data on the backend, for a batch of num_worlds (which only MuJoCo Warp's shared
    contact buffer depends on)."""
    if impl != "warp":
        return mjx.make_data(mj_model, impl=impl)
    ncon, nefc = world_capacity(mj_model)
    return mjx.make_data(mj_model, impl="warp", naconmax=max(1, ncon) * num_worlds, njmax=max(1, nefc))


def batch_size(data: mjx.Data, mj_model: mujoco.MjModel) -> int:
    """The num_worlds that data (one world's, or a batch's) was made for (1 on the JAX backend)."""
    if data.impl != mjx.Impl.WARP:
        return 1
    return data._impl.naconmax // max(1, world_capacity(mj_model)[0])
