"""The AMP discriminator: its loss (BCE or least squares), gradient penalty, logit regularisation,
and the style reward it gives the policy.

BCE (MimicKit's default): loss = 0.5 [BCE(D(agent), 0) + BCE(D(demo), 1)],
reward = -log(max(1 - sigmoid(D), 1e-4)) * scale.
LSGAN (the AMP paper): loss = 0.5 [mean (D(demo) - 1)^2 + mean (D(agent) + 1)^2],
reward = max(0, 1 - 0.25 (D - 1)^2) * scale.
Both add w_gp * 0.5 (mean |dD/dx_demo|^2 + mean |dD/dx_agent|^2), with x the normalised inputs,
and logit_reg * sum(W_head^2).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from amp_jax.learning.ppo import masked_mean


def _logits_and_grad_sq(apply: Callable, params, x):
    """Logits [N] and the squared norm of each logit's gradient w.r.t. its input [N]."""

    def total(inp):
        logits = apply(params, inp)[..., 0]
        return jnp.sum(logits), logits

    grads, logits = jax.grad(total, has_aux=True)(x)
    return logits, jnp.sum(jnp.square(grads), axis=-1)


def loss(apply: Callable, params, agent_obs, demo_obs, kind: str, grad_penalty: float, logit_reg: float,
         agent_mask=None):
    """Discriminator loss on normalised agent (incl. replay) and demo observations. Returns (loss, stats).
    agent_mask (1 or 0 per agent observation) leaves masked-out agent observations out of every mean."""
    agent_logits, agent_gsq = _logits_and_grad_sq(apply, params, agent_obs)
    demo_logits, demo_gsq = _logits_and_grad_sq(apply, params, demo_obs)
    if kind == "bce":
        main = 0.5 * (masked_mean(jax.nn.softplus(agent_logits), agent_mask) + jnp.mean(jax.nn.softplus(-demo_logits)))
    else:
        main = 0.5 * (jnp.mean(jnp.square(demo_logits - 1.0)) + masked_mean(jnp.square(agent_logits + 1.0), agent_mask))
    gp = 0.5 * (jnp.mean(demo_gsq) + masked_mean(agent_gsq, agent_mask))
    head = params["params"]["head"]["kernel"]
    logit_loss = logit_reg * jnp.sum(jnp.square(head))
    total = main + grad_penalty * gp + logit_loss
    stats = {
        "disc_loss": total,
        "disc_grad_penalty": gp,
        "disc_logit_loss": logit_loss,
        "disc_agent_acc": masked_mean(agent_logits < 0, agent_mask),
        "disc_demo_acc": jnp.mean(demo_logits > 0),
        "disc_agent_logit": masked_mean(agent_logits, agent_mask),
        "disc_demo_logit": jnp.mean(demo_logits),
    }
    return total, stats


def style_reward(logits, kind: str, scale: float):
    """Reward for fooling the discriminator, from its logits."""
    if kind == "bce":
        prob = jax.nn.sigmoid(logits)
        return -jnp.log(jnp.maximum(1.0 - prob, 1e-4)) * scale
    return jnp.maximum(0.0, 1.0 - 0.25 * jnp.square(logits - 1.0)) * scale
