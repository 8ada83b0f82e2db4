"""MuJoCo Warp against MJX's JAX backend and MuJoCo itself (BENCHMARKS.md, "MuJoCo Warp"), on the CPU or a GPU.

  python scripts/warp_fidelity.py step [CHARACTER] [WORLDS]   # one physics step from reset states vs MuJoCo C
  python scripts/warp_fidelity.py track [CHARACTER...]        # PD tracking of each clip on both backends

`step`: from WORLDS reference-state resets of the character's case, one physics step on each backend
and in MuJoCo C (float64), at the tuned solver budget and with more iterations; prints the median and
largest joint-velocity difference to MuJoCo and how many worlds differ by more than 0.01.
`track`: the mean key-point error of tests/test_characters.py's tracking test (1 s, root guided) with
the tuned budgets, per backend.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import jax
import mujoco
import numpy as np
from mujoco import mjx

from amp_jax.catalog import CHARACTER_CASES, case_for_character
from amp_jax.characters import mjx_backend
from amp_jax.config import load_config
from amp_jax.training.build import build_env

REPO_ROOT = Path(__file__).resolve().parent.parent
BUDGETS = [None, (3, 4), (4, 6), (6, 10), (50, 50)]  # None: the character's tuned (iterations, line search)


def one_step_errors(character: str, worlds: int) -> None:
    env = build_env(load_config(case_for_character(character)))
    start = jax.jit(env.reset_batch)(jax.random.split(jax.random.PRNGKey(0), worlds))
    qpos, qvel = np.asarray(start.data.qpos, np.float64), np.asarray(start.data.qvel, np.float64)
    for budget in BUDGETS:
        m = copy.copy(env.character.mj_model)
        if budget:
            m.opt.iterations, m.opt.ls_iterations = budget
        reference = []
        for q, v in zip(qpos, qvel):
            d = mujoco.MjData(m)
            d.qpos[:], d.qvel[:] = q, v
            mujoco.mj_step(m, d)
            reference.append(d.qvel.copy())
        row = [f"{m.opt.iterations}/{m.opt.ls_iterations}" + (" (tuned)" if budget is None else "")]
        for impl in ("jax", "warp"):
            template = mjx_backend.make_world_data(m, impl, worlds)
            data = jax.vmap(lambda q, v, t=template: t.replace(qpos=q, qvel=v))(start.data.qpos, start.data.qvel)
            stepped = jax.jit(jax.vmap(mjx.step, in_axes=(None, 0)))(mjx_backend.put_model(m, impl), data)
            err = np.abs(np.asarray(stepped.qvel) - np.array(reference)).max(axis=1)
            row.append(f"{impl}: median {np.median(err):.1e}, max {err.max():.2g}, "
                       f"{(err > 0.01).sum()}/{worlds} > 0.01")
        print(f"{character} " + " | ".join(row), flush=True)


def tracking(characters: list[str]) -> None:
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import test_characters

    for name in characters:
        errors = {impl: test_characters.tracking_error(name, impl)[0] for impl in ("jax", "warp")}
        print(f"{name}: mean key-point error jax {errors['jax']:.4f} m, warp {errors['warp']:.4f} m "
              f"(test tolerance {test_characters.TRACKED[name][1]})", flush=True)


if __name__ == "__main__":
    mode, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if mode == "step":
        one_step_errors(args[0] if args else "humanoid", int(args[1]) if len(args) > 1 else 64)
    elif mode == "track":
        tracking(args or list(CHARACTER_CASES))
    else:
        sys.exit(__doc__)
