"""Shared pytest fixtures. Tests run JAX on the CPU unless JAX_PLATFORMS says otherwise.

Compilation is most of the suite's time on the CPU (BENCHMARKS.md, "Test suite"), so before JAX is
imported: XLA:CPU compiles without its backend optimisations (a quarter less compile time; the tests run
few steps), and one persistent compilation cache per session, new and empty like CI's, serves this
process and the `amp-jax` subprocesses and notebook kernel it starts (which inherit the environment),
so that a program compiled by one of them is not compiled again by another.
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MUJOCO_GL", "egl")  # before any test module imports mujoco
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="amp-jax-test-xla-"))
os.environ.setdefault("AMP_JAX_CACHE", os.environ["JAX_COMPILATION_CACHE_DIR"])  # what `amp-jax` subprocesses use

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def humanoid():
    """The normalised amp-jax humanoid (a Character), loaded once per test session."""
    from amp_jax.characters.character import load_character

    return load_character(
        REPO_ROOT / "assets/humanoid/humanoid.xml",
        ["head", "right_hand", "left_hand", "right_foot", "left_foot"],
        ["right_foot", "left_foot"],
    )
