"""amp-jax: Adversarial Motion Priors in JAX and MuJoCo MJX."""

import os

# Headless rendering by default; must be set before MuJoCo creates a GL context (users may override).
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
