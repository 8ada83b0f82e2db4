"""amp-jax: Adversarial Motion Priors in JAX and MuJoCo MJX."""

__version__ = "0.1.0"
