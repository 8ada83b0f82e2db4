"""make_optimizer (amp_jax.learning.train_step) against hand-written PyTorch update rules.

Reference: MimicKit mp_optimizer.py (mimickit_amp.md section 5.9): SGD -> torch.optim.SGD(lr,
momentum=0.9, weight_decay=wd) (dampening 0, no Nesterov); Adam -> torch.optim.AdamW.

torch.optim.SGD, per step (torch/optim/sgd.py):
    g = grad + wd * p                   # coupled L2
    buf = g                   on the first step (buffer created as a copy of g)
    buf = mu * buf + g        afterwards  (dampening 0)
    p = p - lr * buf
optax.chain(add_decayed_weights(wd), sgd(lr, momentum=mu)) does g = grad + wd * p, then
optax.trace: trace = g + mu * trace with trace initialised to ZEROS, so the first step gives
trace = g -- identical to torch's "buf = g" -- and scale(-lr). The two therefore agree exactly,
including the first step (checked below to float32 rounding).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from amp_jax.config import OptimizerConfig
from amp_jax.learning.learner import make_optimizer

A = np.array([1.0, 4.0, 0.5])
C = np.array([1.0, -2.0, 3.0])
P0 = np.array([0.3, 1.0, -1.0])


def _loss(p):
    """Quadratic 0.5 * sum(a (p - c)^2); gradient a (p - c)."""
    return 0.5 * jnp.sum(jnp.asarray(A, jnp.float32) * jnp.square(p - jnp.asarray(C, jnp.float32)))


def _run_optax(tx, steps):
    params = {"w": jnp.asarray(P0, jnp.float32)}
    state = tx.init(params)
    history = []
    for _ in range(steps):
        grads = jax.grad(lambda q: _loss(q["w"]))(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        history.append(np.asarray(params["w"], np.float64))
    return history


def _torch_sgd(lr, mu, wd, steps):
    p = P0.copy()
    buf = None
    history = []
    for _ in range(steps):
        g = A * (p - C) + wd * p
        buf = g.copy() if buf is None else mu * buf + g
        p = p - lr * buf
        history.append(p.copy())
    return history


def test_sgd_matches_torch_sgd_with_momentum_and_weight_decay():
    tx = make_optimizer(OptimizerConfig(type="sgd", learning_rate=0.1, momentum=0.9, weight_decay=0.01))
    got = _run_optax(tx, 3)
    want = _torch_sgd(0.1, 0.9, 0.01, 3)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    # First step by hand: p1 = p0 - lr * (a (p0 - c) + wd p0).
    np.testing.assert_allclose(got[0], P0 - 0.1 * (A * (P0 - C) + 0.01 * P0), rtol=1e-6)
    # Distinguishes the alternatives: decoupled decay, or a dampened first step, would differ.
    decoupled = P0 - 0.1 * A * (P0 - C) - 0.1 * 0.01 * P0
    assert np.allclose(got[0], decoupled)  # identical on step 1 for SGD ...
    p1 = want[0]
    buf1 = A * (P0 - C) + 0.01 * P0
    no_wd_in_momentum = p1 - 0.1 * (0.9 * (A * (P0 - C)) + A * (p1 - C)) - 0.1 * 0.01 * p1
    assert not np.allclose(got[1], no_wd_in_momentum, rtol=1e-5, atol=1e-6)  # ... but not on step 2
    dampened = p1 - 0.1 * (0.9 * buf1 + 0.1 * (A * (p1 - C) + 0.01 * p1))
    assert not np.allclose(got[1], dampened, rtol=1e-5, atol=1e-6)


def test_sgd_without_weight_decay_is_heavy_ball():
    tx = make_optimizer(OptimizerConfig(type="sgd", learning_rate=0.05, momentum=0.9, weight_decay=0.0))
    got = _run_optax(tx, 5)
    want = _torch_sgd(0.05, 0.9, 0.0, 5)
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-6, atol=1e-6)


def _torch_adamw(lr, wd, steps, b1=0.9, b2=0.999, eps=1e-8):
    p = P0.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    history = []
    for t in range(1, steps + 1):
        g = A * (p - C)
        p = p * (1 - lr * wd)  # decoupled weight decay
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
        history.append(p.copy())
    return history


def test_adam_runs_decreases_loss_and_matches_torch_adamw():
    tx = make_optimizer(OptimizerConfig(type="adam", learning_rate=0.05, weight_decay=0.01))
    got = _run_optax(tx, 50)
    losses = [float(_loss(jnp.asarray(p, jnp.float32))) for p in got]
    assert losses[-1] < float(_loss(jnp.asarray(P0, jnp.float32)))
    assert losses[-1] < 0.2 * float(_loss(jnp.asarray(P0, jnp.float32)))
    want = _torch_adamw(0.05, 0.01, 50)
    np.testing.assert_allclose(np.array(got[:3]), np.array(want[:3]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-4)
