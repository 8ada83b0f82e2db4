"""Shared pytest fixtures. Tests run JAX on the CPU unless JAX_PLATFORMS says otherwise."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MUJOCO_GL", "egl")  # before any test module imports mujoco

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def humanoid():
    """The normalised amp-jax humanoid (a Character), loaded once per test session."""
    from amp_jax.character import load_character

    return load_character(
        REPO_ROOT / "assets/humanoid/humanoid.xml",
        ["head", "right_hand", "left_hand", "right_foot", "left_foot"],
        ["right_foot", "left_foot"],
    )
