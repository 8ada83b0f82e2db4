"""The AMP discriminator loss and style reward (amp_jax.learning.discriminator) against independent computations.

Reference: MimicKit amp_agent.py (mimickit_amp.md sections 5.7, 5.8). The gradient-penalty input
gradients are computed here by central finite differences in float64, not by autodiff.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amp_jax.learning import discriminator, networks

IN = 6
N_AGENT, N_DEMO = 10, 5


@pytest.fixture
def x64():
    """float64 for this test only; the previous setting is restored afterwards."""
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", prev)


def _model_and_data(dtype):
    model = networks.discriminator((16, 8))
    params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, IN)))
    params = jax.tree.map(lambda p: jnp.asarray(p, dtype), params)
    rng = np.random.default_rng(0)
    agent = rng.normal(size=(N_AGENT, IN))
    demo = rng.normal(size=(N_DEMO, IN)) + 0.5
    return model, params, agent, demo


def _fd_grad_sq(apply, params, x, eps=1e-5):
    """Squared norm of dD/dx per sample by central finite differences (float64).

    All 2 * N * dim perturbed inputs are evaluated in one batched forward pass (samples are
    independent), then differenced in numpy.
    """
    x = np.asarray(x, np.float64)
    n, d = x.shape
    offsets = eps * np.eye(d)  # [d, d]
    plus = (x[:, None, :] + offsets[None]).reshape(n * d, d)
    minus = (x[:, None, :] - offsets[None]).reshape(n * d, d)
    fp = np.asarray(apply(params, jnp.asarray(plus, jnp.float64))[:, 0], np.float64).reshape(n, d)
    fm = np.asarray(apply(params, jnp.asarray(minus, jnp.float64))[:, 0], np.float64).reshape(n, d)
    grad = (fp - fm) / (2 * eps)
    return np.sum(grad * grad, axis=1)


def _jitted_loss(model, kind):
    """discriminator.loss compiled once (eager op-by-op dispatch is slow on a loaded CPU)."""
    return jax.jit(lambda p, a, d, gp, reg: discriminator.loss(model.apply, p, a, d, kind, gp, reg))


def _softplus(x):
    return np.logaddexp(0.0, x)


def test_gradient_penalty_matches_finite_differences(x64):
    model, params, agent, demo = _model_and_data(jnp.float64)
    assert params["params"]["head"]["kernel"].dtype == jnp.float64
    agent_j, demo_j = jnp.asarray(agent, jnp.float64), jnp.asarray(demo, jnp.float64)
    loss = _jitted_loss(model, "bce")
    with_gp, stats = loss(params, agent_j, demo_j, 1.0, 0.0)
    without_gp, _ = loss(params, agent_j, demo_j, 0.0, 0.0)
    apply = jax.jit(model.apply)
    gsq_agent = _fd_grad_sq(apply, params, agent)
    gsq_demo = _fd_grad_sq(apply, params, demo)
    want = 0.5 * (gsq_demo.mean() + gsq_agent.mean())
    assert want > 1e-3  # a non-trivial penalty
    np.testing.assert_allclose(float(with_gp) - float(without_gp), want, rtol=1e-6)
    np.testing.assert_allclose(float(stats["disc_grad_penalty"]), want, rtol=1e-6)
    # The weight scales the term linearly (MimicKit w_gp = 5).
    with_gp5, _ = loss(params, agent_j, demo_j, 5.0, 0.0)
    np.testing.assert_allclose(float(with_gp5) - float(without_gp), 5 * want, rtol=1e-6)


def test_bce_part_logit_reg_and_stats():
    model, params, agent, demo = _model_and_data(jnp.float32)
    agent_j, demo_j = jnp.asarray(agent, jnp.float32), jnp.asarray(demo, jnp.float32)
    apply = jax.jit(model.apply)
    l_agent = np.asarray(apply(params, agent_j)[:, 0], np.float64)
    l_demo = np.asarray(apply(params, demo_j)[:, 0], np.float64)
    # BCEWithLogits(l, 0) = softplus(l), BCEWithLogits(l, 1) = softplus(-l).
    want_bce = 0.5 * (_softplus(l_agent).mean() + _softplus(-l_demo).mean())
    loss = _jitted_loss(model, "bce")
    total, stats = loss(params, agent_j, demo_j, 0.0, 0.0)
    np.testing.assert_allclose(float(total), want_bce, rtol=1e-5)
    np.testing.assert_allclose(float(stats["disc_loss"]), want_bce, rtol=1e-5)

    # Logit regularisation: logit_reg * sum(W_head^2), head kernel only.
    head = np.asarray(params["params"]["head"]["kernel"], np.float64)
    assert head.shape == (8, 1)
    total_reg, stats_reg = loss(params, agent_j, demo_j, 0.0, 0.01)
    np.testing.assert_allclose(float(total_reg) - float(total), 0.01 * np.sum(head ** 2), rtol=1e-4)
    np.testing.assert_allclose(float(stats_reg["disc_logit_loss"]), 0.01 * np.sum(head ** 2), rtol=1e-5)

    # Stats: accuracies and mean logits.
    np.testing.assert_allclose(float(stats["disc_agent_acc"]), np.mean(l_agent < 0), atol=1e-7)
    np.testing.assert_allclose(float(stats["disc_demo_acc"]), np.mean(l_demo > 0), atol=1e-7)
    np.testing.assert_allclose(float(stats["disc_agent_logit"]), l_agent.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(stats["disc_demo_logit"]), l_demo.mean(), rtol=1e-5, atol=1e-6)


def test_lsgan_loss():
    model, params, agent, demo = _model_and_data(jnp.float32)
    agent_j, demo_j = jnp.asarray(agent, jnp.float32), jnp.asarray(demo, jnp.float32)
    apply = jax.jit(model.apply)
    l_agent = np.asarray(apply(params, agent_j)[:, 0], np.float64)
    l_demo = np.asarray(apply(params, demo_j)[:, 0], np.float64)
    want = 0.5 * (np.mean((l_demo - 1.0) ** 2) + np.mean((l_agent + 1.0) ** 2))
    total, _ = _jitted_loss(model, "lsgan")(params, agent_j, demo_j, 0.0, 0.0)
    np.testing.assert_allclose(float(total), want, rtol=1e-5)


def test_accuracy_stats_by_hand():
    # A "network" that returns the first input column as its logit.
    params = {"params": {"head": {"kernel": jnp.zeros((1, 1))}}}

    def apply(p, x):
        return x[..., :1]

    agent = jnp.array([[-1.0], [2.0], [-3.0], [-0.5]])  # 3 of 4 below 0
    demo = jnp.array([[1.0], [-2.0]])  # 1 of 2 above 0
    total, stats = discriminator.loss(apply, params, agent, demo, "bce", 1.0, 0.0)
    assert float(stats["disc_agent_acc"]) == pytest.approx(0.75)
    assert float(stats["disc_demo_acc"]) == pytest.approx(0.5)
    assert float(stats["disc_grad_penalty"]) == pytest.approx(1.0)  # |dD/dx| = 1 everywhere
    want = 0.5 * (np.mean(_softplus(np.array([-1.0, 2.0, -3.0, -0.5]))) + np.mean(_softplus(-np.array([1.0, -2.0])))) + 1.0
    assert float(total) == pytest.approx(want, rel=1e-6)


def test_style_reward_bce_by_hand():
    logits = jnp.array([-5.0, 0.0, 5.0, 20.0])
    got = np.asarray(discriminator.style_reward(logits, "bce", 2.0))
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    want = [-math.log(max(1.0 - sig(v), 1e-4)) * 2.0 for v in (-5.0, 0.0, 5.0, 20.0)]
    # By hand: softplus(-5)*2 = 0.0134307, ln2*2 = 1.3862944, softplus(5)*2 = 10.0134307, saturated 18.420681.
    np.testing.assert_allclose(want, [0.0134307, 1.3862944, 10.0134307, 18.4206807], rtol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[3] == pytest.approx(-math.log(1e-4) * 2, rel=1e-6)  # = 18.4207


def test_style_reward_lsgan():
    logits = jnp.array([-2.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    got = np.asarray(discriminator.style_reward(logits, "lsgan", 2.0))
    # max(0, 1 - 0.25 (l - 1)^2) * 2: l=-2 -> 0, 0 -> 1.5, 1 -> 2, 2 -> 1.5, 3 -> 0, 4 -> 0
    np.testing.assert_allclose(got, [0.0, 1.5, 2.0, 1.5, 0.0, 0.0], atol=1e-6)
