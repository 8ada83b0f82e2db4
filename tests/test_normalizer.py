"""The running observation normaliser (amp_jax.learning.normalizer) against numpy over all samples.

Reference: MimicKit normalizer.py (mimickit_amp.md section 5.4): exact count-weighted mean and
second moment over every sample recorded, population std, min_std 1e-4, output clipped to +-10.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amp_jax.learning import normalizer

update = jax.jit(normalizer.update)
normalize = jax.jit(normalizer.normalize)


def test_identity_before_any_update():
    norm = normalizer.init(4)
    assert float(norm.count) == 0.0
    np.testing.assert_array_equal(np.asarray(norm.mean), np.zeros(4))
    np.testing.assert_array_equal(np.asarray(norm.std), np.ones(4))
    x = jnp.array([[0.5, -3.0, 7.5, 0.0], [-9.9, 9.9, 1e-3, 2.0]])
    np.testing.assert_array_equal(np.asarray(normalize(norm, x)), np.asarray(x))
    # Even the identity clips at +-10.
    np.testing.assert_array_equal(np.asarray(normalize(norm, jnp.array([[25.0, -11.0, 10.0, -10.0]]))),
                                  [[10.0, -10.0, 10.0, -10.0]])


def test_running_stats_equal_numpy_over_all_samples():
    rng = np.random.default_rng(0)
    size = 5
    scales = np.array([1.0, 0.1, 10.0, 3.0, 0.5])
    offsets = np.array([0.0, 5.0, -20.0, 1.0, 100.0])
    batches = [rng.normal(size=(n, size)) * scales + offsets for n in (7, 130, 1, 64, 3)]
    norm = normalizer.init(size)
    for b in batches:
        norm = update(norm, jnp.asarray(b, jnp.float32))
    all_x = np.concatenate(batches, axis=0)
    assert float(norm.count) == all_x.shape[0] == 205
    np.testing.assert_allclose(np.asarray(norm.mean), all_x.mean(axis=0), rtol=1e-5, atol=1e-5)
    # Population std (ddof=0). E[x^2] - mean^2 in float32 loses digits when |mean| >> std
    # (column 4: mean 100, std 0.5), hence the column-wise tolerance.
    want_std = all_x.std(axis=0)
    got_std = np.asarray(norm.std)
    np.testing.assert_allclose(got_std[:4], want_std[:4], rtol=1e-3)
    np.testing.assert_allclose(got_std[4], want_std[4], rtol=2e-2)
    # ddof=1 would differ by sqrt(205/204) = 0.25 %: make sure we are on the population side.
    assert abs(got_std[0] - want_std[0]) < abs(got_std[0] - all_x[:, 0].std(ddof=1))

    # Normalising uses those statistics.
    x = jnp.asarray(all_x[:10], jnp.float32)
    want = np.clip((all_x[:10] - all_x.mean(0)) / want_std, -10, 10)
    np.testing.assert_allclose(np.asarray(normalize(norm, x))[:, :4], want[:, :4], rtol=2e-3, atol=2e-3)


def test_batch_with_leading_dims_is_flattened():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)  # [T, E, size]
    norm = update(normalizer.init(3), jnp.asarray(x))
    flat = x.reshape(-1, 3)
    assert float(norm.count) == 24
    np.testing.assert_allclose(np.asarray(norm.mean), flat.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(norm.std), flat.std(0), rtol=1e-4)


def test_masked_batch_with_leading_dims_counts_only_the_kept_samples():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 6, 3)).astype(np.float32)  # [agent/demo, T, E, size]
    mask = (rng.uniform(size=(2, 4, 6)) > 0.3).astype(np.float32)
    norm = update(normalizer.init(3), jnp.asarray(x), jnp.asarray(mask))
    kept = x[mask > 0]
    assert float(norm.count) == len(kept)
    np.testing.assert_allclose(np.asarray(norm.mean), kept.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(norm.std), kept.std(0), rtol=1e-4)


def test_normalize_clip_and_min_std():
    # Column 0 constant -> std floors at sqrt(1e-8) = 1e-4 (the min_std); column 1 spread.
    batch = jnp.array([[2.0, -1.0], [2.0, 1.0], [2.0, -1.0], [2.0, 1.0]])
    norm = update(normalizer.init(2), batch)
    np.testing.assert_allclose(np.asarray(norm.mean), [2.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(norm.std), [1e-4, 1.0], rtol=1e-3)
    # (2 + 5e-4 - 2) / 1e-4 = 5; a larger offset clips at +-10; column 1: (x - 0) / 1, clipped at +-10.
    x = jnp.array([[2.0 + 5e-4, 3.0], [2.0 - 5e-3, -25.0], [2.0 + 1.0, 12.0]])
    got = np.asarray(normalize(norm, x))
    np.testing.assert_allclose(got[:, 0], [5.0, -10.0, 10.0], rtol=2e-3)
    np.testing.assert_allclose(got[:, 1], [3.0, -10.0, 10.0], rtol=1e-5)

    # A std below 1e-4 set directly is floored at 1e-4 by normalize.
    tiny = normalizer.Normalizer(count=jnp.float32(1.0), mean=jnp.zeros(1), mean_sq=jnp.zeros(1),
                                 std=jnp.array([1e-7]))
    assert float(normalize(tiny, jnp.array([[3e-4]]))[0, 0]) == pytest.approx(3.0, rel=1e-4)
