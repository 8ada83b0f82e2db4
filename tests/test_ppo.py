"""PPO pieces (amp_jax.learning.ppo) against independent numpy / plain-Python computations.

Reference: MimicKit (mimickit_amp.md sections 5.3, 5.5, 5.6).
"""

import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from amp_jax.envs.amp_env import FAIL, NULL, TIME
from amp_jax.learning import ppo as _ppo

# The functions under test, jitted (eager op-by-op dispatch is slow on a busy CPU).
ppo = SimpleNamespace(**{name: jax.jit(getattr(_ppo, name)) for name in (
    "td_lambda_returns", "gaussian_log_prob", "normalize_advantages", "actor_loss", "critic_loss")})


def _td_lambda_reference(rewards, next_values, done, discount, lam):
    """Plain-Python backward loop, written from the reference formula (rl_util.py / ppo_agent.py):

    V'_t := 0 if done_t == FAIL; lambda_t = lambda * (1 - [done_t != NULL]);
    R_{T-1} = r_{T-1} + g V'_{T-1};  R_t = r_t + g [(1 - lambda_t) V'_t + lambda_t R_{t+1}].
    """
    T, E = len(rewards), len(rewards[0])
    out = [[0.0] * E for _ in range(T)]
    for e in range(E):
        nxt = None
        for t in range(T - 1, -1, -1):
            v = 0.0 if done[t][e] == FAIL else float(next_values[t][e])
            l_t = lam * (0.0 if done[t][e] != NULL else 1.0)
            r = float(rewards[t][e])
            if t == T - 1:
                ret = r + discount * v
            else:
                ret = r + discount * ((1.0 - l_t) * v + l_t * nxt)
            out[t][e] = ret
            nxt = ret
    return np.array(out)


def test_td_lambda_returns_matches_python_loop():
    rng = np.random.default_rng(0)
    T, E = 12, 6
    rewards = rng.normal(size=(T, E)).astype(np.float32)
    next_values = rng.normal(size=(T, E)).astype(np.float32) * 3.0
    done = np.full((T, E), NULL, np.int32)
    done[3, 0] = FAIL
    done[7, 0] = TIME
    done[T - 1, 1] = FAIL  # a done on the last step
    done[T - 1, 2] = TIME  # a timeout on the last step
    done[5, 3] = TIME
    done[6, 3] = FAIL  # consecutive boundaries
    done[0, 4] = FAIL
    # column 5: no done at all
    assert {NULL, FAIL, TIME} <= set(np.unique(done).tolist())

    terminal, ended = (done != NULL) & (done != TIME), done != NULL  # the training step's masks
    got = np.asarray(ppo.td_lambda_returns(jnp.asarray(rewards), jnp.asarray(next_values), jnp.asarray(terminal),
                                           jnp.asarray(ended), 0.99, 0.95))
    want = _td_lambda_reference(rewards.tolist(), next_values.tolist(), done.tolist(), 0.99, 0.95)
    assert got.shape == (T, E)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    # Spot checks by hand: a FAIL at the last step bootstraps from 0, TIME from the critic value.
    np.testing.assert_allclose(got[T - 1, 1], rewards[T - 1, 1], rtol=1e-6)
    np.testing.assert_allclose(got[T - 1, 2], rewards[T - 1, 2] + 0.99 * next_values[T - 1, 2], rtol=1e-5)
    # An episode end cuts lambda: R_t = r_t + g V'_t (TIME) or r_t (FAIL), independent of later steps.
    np.testing.assert_allclose(got[7, 0], rewards[7, 0] + 0.99 * next_values[7, 0], rtol=1e-5)
    np.testing.assert_allclose(got[3, 0], rewards[3, 0], rtol=1e-6)


def test_td_lambda_lambda_one_no_done_is_discounted_return():
    # lambda = 1 and no episode end: the return is the Monte Carlo return bootstrapped at the end.
    rng = np.random.default_rng(1)
    T, E = 7, 3
    r = rng.normal(size=(T, E)).astype(np.float32)
    v = rng.normal(size=(T, E)).astype(np.float32)
    never = jnp.zeros((T, E), bool)
    got = np.asarray(ppo.td_lambda_returns(jnp.asarray(r), jnp.asarray(v), never, never, 0.9, 1.0))
    for t in range(T):
        want = sum(0.9 ** (k - t) * r[k] for k in range(t, T)) + 0.9 ** (T - t) * v[T - 1]
        np.testing.assert_allclose(got[t], want, rtol=1e-5, atol=1e-5)


def test_gaussian_log_prob_matches_scipy():
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(5, 4))
    log_std = rng.normal(size=4) * 0.5 - 1.0
    x = mean + rng.normal(size=(5, 4)) * np.exp(log_std)
    got = np.asarray(ppo.gaussian_log_prob(jnp.asarray(mean, jnp.float32), jnp.asarray(log_std, jnp.float32),
                                           jnp.asarray(x, jnp.float32)))
    want = norm.logpdf(x, loc=mean, scale=np.exp(log_std)).sum(axis=-1)
    assert got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    # The humanoid's fixed std 0.05 (log -2.9957) at the mean: -D/2 ln(2 pi) - D ln(0.05).
    D = 28
    at_mean = float(ppo.gaussian_log_prob(jnp.zeros(D), jnp.full(D, math.log(0.05)), jnp.zeros(D)))
    np.testing.assert_allclose(at_mean, -0.5 * D * math.log(2 * math.pi) - D * math.log(0.05), rtol=1e-5)


def test_normalize_advantages_mean_std_and_clip():
    rng = np.random.default_rng(3)
    adv = rng.normal(size=1000).astype(np.float64) * 2.0 + 5.0
    adv[:3] = [200.0, -150.0, 120.0]  # outliers
    got = np.asarray(ppo.normalize_advantages(jnp.asarray(adv, jnp.float32), 4.0))
    want = np.clip((adv - adv.mean()) / max(adv.std(), 1e-5), -4.0, 4.0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert got.max() == pytest.approx(4.0) and got.min() == pytest.approx(-4.0)
    assert got[0] == pytest.approx(4.0) and got[1] == pytest.approx(-4.0)

    # Without outliers (no clipping): exactly mean 0 / std 1 (population std).
    plain = rng.normal(size=500).astype(np.float32) * 0.3 - 1.0
    out = np.asarray(ppo.normalize_advantages(jnp.asarray(plain), 100.0))
    assert abs(out.mean()) < 1e-5 and out.std() == pytest.approx(1.0, abs=1e-4)

    # Constant advantages: std floor 1e-5 avoids a division by zero.
    const = np.asarray(ppo.normalize_advantages(jnp.full(10, 3.0), 4.0))
    np.testing.assert_array_equal(const, np.zeros(10))


def _actor_loss_numpy(mean, log_std, actions, old_log_prob, adv, clip, bound_w):
    std = np.exp(log_std)
    D = mean.shape[-1]
    logp = (-0.5 * (((actions - mean) / std) ** 2).sum(-1) - 0.5 * D * np.log(2 * np.pi) - log_std.sum())
    ratio = np.exp(logp - old_log_prob)
    surr = np.minimum(adv * ratio, adv * np.clip(ratio, 1 - clip, 1 + clip))
    policy = -surr.mean()
    bound = (np.minimum(mean + 1.0, 0.0) ** 2 + np.maximum(mean - 1.0, 0.0) ** 2).sum(-1)
    bound_loss = bound_w * bound.mean()
    return policy + bound_loss, bound_loss, np.mean(np.abs(ratio - 1.0) > clip), ratio.mean()


def test_actor_loss_matches_numpy():
    rng = np.random.default_rng(4)
    N, D = 64, 5
    log_std = np.full(D, math.log(0.3))
    mean = rng.normal(size=(N, D)) * 1.2  # many components outside [-1, 1] -> bound loss active
    actions = mean + rng.normal(size=(N, D)) * 0.3
    # Old log-probs perturbed so the ratio spreads on both sides of [0.8, 1.2].
    std = np.exp(log_std)
    logp_now = norm.logpdf(actions, loc=mean, scale=std).sum(-1)
    old = logp_now + rng.normal(size=N) * 0.4
    adv = rng.normal(size=N)
    args = [jnp.asarray(a, jnp.float32) for a in (mean, log_std, actions, old, adv)]
    loss, stats = ppo.actor_loss(*args, clip_ratio=0.2, bound_weight=10.0)
    want_loss, want_bound, want_clip, want_ratio = _actor_loss_numpy(mean, log_std, actions, old, adv, 0.2, 10.0)
    assert want_bound > 0.1 and 0.1 < want_clip < 0.9  # the test data exercises both terms
    np.testing.assert_allclose(float(loss), want_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(stats["actor_loss"]), want_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(stats["action_bound_loss"]), want_bound, rtol=1e-5)
    np.testing.assert_allclose(float(stats["clip_frac"]), want_clip, atol=1e-6)
    np.testing.assert_allclose(float(stats["imp_ratio"]), want_ratio, rtol=1e-4)


def test_actor_loss_hand_values():
    # One sample, D=2, mean (1.5, -3) -> bound 10 * (0.5^2 + 2^2) = 42.5; ratio 1 -> surrogate = adv.
    mean = jnp.array([[1.5, -3.0]])
    log_std = jnp.zeros(2)
    actions = mean
    old = ppo.gaussian_log_prob(mean, log_std, actions)
    loss, stats = ppo.actor_loss(mean, log_std, actions, old, jnp.array([2.0]), 0.2, 10.0)
    assert float(stats["action_bound_loss"]) == pytest.approx(42.5)
    assert float(loss) == pytest.approx(-2.0 + 42.5)
    assert float(stats["clip_frac"]) == 0.0 and float(stats["imp_ratio"]) == pytest.approx(1.0)
    # ratio e (> 1.2): log p(0; 0, 1)^2 = -ln(2 pi), old log-prob = -1 - ln(2 pi).
    zeros = jnp.zeros((1, 2))
    old_e = jnp.array([-1.0 - math.log(2 * math.pi)])
    l_pos, s = ppo.actor_loss(zeros, log_std, zeros, old_e, jnp.array([1.0]), 0.2, 10.0)
    assert float(l_pos) == pytest.approx(-1.2, rel=1e-5)  # positive advantage: clipped at 1 + 0.2
    assert float(s["clip_frac"]) == 1.0 and float(s["imp_ratio"]) == pytest.approx(math.e, rel=1e-5)
    l_neg, _ = ppo.actor_loss(zeros, log_std, zeros, old_e, jnp.array([-1.0]), 0.2, 10.0)
    assert float(l_neg) == pytest.approx(math.e, rel=1e-5)  # negative advantage: min picks the unclipped e


def test_critic_loss():
    rng = np.random.default_rng(5)
    v = rng.normal(size=100).astype(np.float32)
    r = rng.normal(size=100).astype(np.float32)
    np.testing.assert_allclose(float(ppo.critic_loss(jnp.asarray(v), jnp.asarray(r))), np.mean((r - v) ** 2), rtol=1e-5)
    assert float(ppo.critic_loss(jnp.array([1.0, 2.0]), jnp.array([3.0, 2.0]))) == pytest.approx(2.0)
