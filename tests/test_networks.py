"""Network shapes and initialisation (amp_jax.learning.networks).

Reference: MimicKit fc_2layers_1024units / ppo_model / amp_model (mimickit_amp.md section 5.2):
input -> 1024 -> ReLU -> 512 -> ReLU -> head; hidden weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
biases 0; actor head U(-0.01, 0.01), critic head default, discriminator head U(-1, 1).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from amp_jax.learning import networks

OBS, ACT, DISC_OBS = 20, 8, 30
HIDDEN = (64, 32)


def _count(params):
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def _shapes(params):
    return {name: (tuple(layer["kernel"].shape), tuple(layer["bias"].shape))
            for name, layer in params["params"].items()}


def test_humanoid_sizes_and_parameter_counts():
    # Shapes only (eval_shape: nothing is allocated), MimicKit's sizes: obs 140, action 28, disc obs 1420.
    actor = jax.eval_shape(networks.actor((1024, 512), 28).init, jax.random.PRNGKey(0), jnp.zeros((1, 140)))
    assert _shapes(actor) == {
        "Dense_0": ((140, 1024), (1024,)),
        "Dense_1": ((1024, 512), (512,)),
        "head": ((512, 28), (28,)),
    }
    assert _count(actor) == 140 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 28 + 28 == 683548
    critic = jax.eval_shape(networks.critic((1024, 512)).init, jax.random.PRNGKey(0), jnp.zeros((1, 140)))
    assert _count(critic) == 669697
    disc = jax.eval_shape(networks.discriminator((1024, 512)).init, jax.random.PRNGKey(0), jnp.zeros((1, 1420)))
    assert _count(disc) == 1980417
    assert _shapes(disc)["head"] == ((512, 1), (1,))


def test_forward_is_relu_mlp():
    model = networks.actor(HIDDEN, ACT)
    params = jax.jit(model.init)(jax.random.PRNGKey(1), jnp.zeros((1, OBS)))
    # Non-zero biases so the check covers them too.
    params = jax.tree.map(lambda p: p + 0.05 if p.ndim == 1 else p, params)
    x = np.random.default_rng(0).normal(size=(4, OBS)).astype(np.float32)
    p = {k: {n: np.asarray(v, np.float64) for n, v in layer.items()} for k, layer in params["params"].items()}
    h = np.maximum(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0)
    h = np.maximum(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], 0)
    want = h @ p["head"]["kernel"] + p["head"]["bias"]
    np.testing.assert_allclose(np.asarray(jax.jit(model.apply)(params, jnp.asarray(x))), want, rtol=1e-4, atol=1e-5)


def _check_init(params, in_size, head_bound):
    layers = params["params"]
    fan_ins = [in_size, *HIDDEN]
    for i, fan_in in enumerate(fan_ins[:-1]):
        w = np.asarray(layers[f"Dense_{i}"]["kernel"])
        bound = 1.0 / math.sqrt(fan_in)
        assert w.shape[0] == fan_in
        assert np.all(np.abs(w) <= bound)
        # Uniform over the whole range, not a narrower distribution: extremes near the bound, std ~ bound/sqrt(3).
        assert np.abs(w).max() > 0.95 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3)
        np.testing.assert_array_equal(np.asarray(layers[f"Dense_{i}"]["bias"]), 0.0)
    head = np.asarray(layers["head"]["kernel"])
    assert head.shape[0] == HIDDEN[-1]
    assert np.all(np.abs(head) <= head_bound)
    assert np.abs(head).max() > 0.5 * head_bound  # the bound is actually used (not a much smaller scale)
    np.testing.assert_array_equal(np.asarray(layers["head"]["bias"]), 0.0)


def test_actor_init():
    params = jax.jit(networks.actor(HIDDEN, ACT).init)(jax.random.PRNGKey(2), jnp.zeros((1, OBS)))
    _check_init(params, OBS, 0.01)


def test_critic_init():
    params = jax.jit(networks.critic(HIDDEN).init)(jax.random.PRNGKey(3), jnp.zeros((1, OBS)))
    _check_init(params, OBS, 1.0 / math.sqrt(HIDDEN[-1]))


def test_discriminator_init():
    params = jax.jit(networks.discriminator(HIDDEN).init)(jax.random.PRNGKey(4), jnp.zeros((1, DISC_OBS)))
    _check_init(params, DISC_OBS, 1.0)


def test_humanoid_actor_init_bounds():
    # The full-size actor (obs 140): hidden bounds 1/sqrt(140) and 1/sqrt(1024), head 0.01.
    params = jax.jit(networks.actor((1024, 512), 28).init)(jax.random.PRNGKey(5), jnp.zeros((1, 140)))
    layers = params["params"]
    for name, fan_in in (("Dense_0", 140), ("Dense_1", 1024)):
        w = np.asarray(layers[name]["kernel"])
        assert np.abs(w).max() <= 1.0 / math.sqrt(fan_in)
        assert np.abs(w).max() > 0.99 / math.sqrt(fan_in)
    head = np.asarray(layers["head"]["kernel"])
    assert np.abs(head).max() <= 0.01 and np.abs(head).max() > 0.0099
    assert all(not np.any(np.asarray(layers[n]["bias"])) for n in layers)
