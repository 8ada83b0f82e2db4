"""Actor, critic and discriminator: separate MLPs (1024, 512, ReLU) as in MimicKit.

Hidden layers use PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
weights, and zero biases. Output heads: the actor's mean U(-0.01, 0.01), the critic's default, the
discriminator's logit U(-1, 1).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _uniform(scale):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def _torch_default(key, shape, dtype=jnp.float32):
    fan_in = shape[0]
    return _uniform(1.0 / jnp.sqrt(fan_in))(key, shape, dtype)


class MLP(nn.Module):
    """Hidden ReLU layers followed by a linear head of `out_size` with U(-head_scale, head_scale) weights.

    head_scale None uses the hidden layers' default initialisation for the head too.
    """

    hidden_sizes: Sequence[int]
    out_size: int
    head_scale: float | None = None

    @nn.compact
    def __call__(self, x):
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size, kernel_init=_torch_default, bias_init=nn.initializers.zeros)(x))
        head_init = _torch_default if self.head_scale is None else _uniform(self.head_scale)
        return nn.Dense(self.out_size, kernel_init=head_init, bias_init=nn.initializers.zeros, name="head")(x)


def actor(hidden_sizes, action_size) -> MLP:
    """Mean of the Gaussian policy in normalised action space."""
    return MLP(tuple(hidden_sizes), action_size, head_scale=0.01)


def critic(hidden_sizes) -> MLP:
    return MLP(tuple(hidden_sizes), 1)


def discriminator(hidden_sizes) -> MLP:
    """Logit that a discriminator observation comes from the reference motions."""
    return MLP(tuple(hidden_sizes), 1, head_scale=1.0)
