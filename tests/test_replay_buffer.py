"""The discriminator replay ring buffer (amp_jax.learning.replay_buffer).

Reference: MimicKit amp_agent.py (mimickit_amp.md section 5.7): a ring buffer that overwrites the
oldest entries; samples come only from the filled part.
"""

import jax
import jax.numpy as jnp
import numpy as np

from amp_jax.learning import replay_buffer


def _rows(start, n, size=2):
    """Distinct rows: row i is [i, 100 + i, ...]."""
    return np.stack([np.arange(start, start + n) + 100 * k for k in range(size)], axis=1).astype(np.float32)


def test_add_wraps_around():
    buf = replay_buffer.init(5, 2)
    assert int(buf.count) == 0 and int(buf.head) == 0
    a = _rows(0, 3)  # items 0, 1, 2
    b = _rows(3, 4)  # items 3, 4, 5, 6
    buf = replay_buffer.add(buf, jnp.asarray(a))
    assert int(buf.count) == 3 and int(buf.head) == 3
    np.testing.assert_array_equal(np.asarray(buf.data[:3]), a)
    np.testing.assert_array_equal(np.asarray(buf.data[3:]), np.zeros((2, 2)))
    buf = replay_buffer.add(buf, jnp.asarray(b))
    assert int(buf.count) == 5
    assert int(buf.head) == 2
    # slots 3, 4 get items 3, 4; then wrap: slots 0, 1 get items 5, 6; slot 2 keeps item 2.
    expected = np.stack([b[2], b[3], a[2], b[0], b[1]])
    np.testing.assert_array_equal(np.asarray(buf.data), expected)


def test_adding_more_than_capacity_keeps_newest():
    buf = replay_buffer.init(5, 2)
    buf = replay_buffer.add(buf, jnp.asarray(_rows(0, 2)))  # head 2
    items = _rows(10, 8)  # 8 > capacity 5: only items 13..17 survive
    buf = replay_buffer.add(buf, jnp.asarray(items))
    assert int(buf.count) == 5
    assert int(buf.head) == (2 + 5) % 5
    got = {tuple(r) for r in np.asarray(buf.data).tolist()}
    assert got == {tuple(r) for r in items[-5:].tolist()}
    # Ring order: the newest 5 written from head 2 on.
    np.testing.assert_array_equal(np.asarray(buf.data)[[2, 3, 4, 0, 1]], items[-5:])

    # Exactly capacity items fill the buffer entirely and leave head unchanged.
    buf2 = replay_buffer.add(replay_buffer.init(5, 2), jnp.asarray(_rows(0, 1)))
    buf2 = replay_buffer.add(buf2, jnp.asarray(_rows(20, 5)))
    assert int(buf2.count) == 5 and int(buf2.head) == 1
    assert {tuple(r) for r in np.asarray(buf2.data).tolist()} == {tuple(r) for r in _rows(20, 5).tolist()}


def test_add_inside_jit_and_cond():
    # train_step calls add under jit inside lax.cond (all items while not full, else a prefix).
    @jax.jit
    def push(buf, items):
        return jax.lax.cond(buf.count < buf.data.shape[0],
                            lambda r: replay_buffer.add(r, items),
                            lambda r: replay_buffer.add(r, items[:1]),
                            buf)

    buf = replay_buffer.init(5, 2)
    buf = push(buf, jnp.asarray(_rows(0, 3)))  # not full: all 3 -> items 0, 1, 2
    buf = push(buf, jnp.asarray(_rows(3, 3)))  # not full: all 3 -> 3, 4, then 5 wraps to slot 0
    assert int(buf.count) == 5 and int(buf.head) == 1
    np.testing.assert_array_equal(np.asarray(buf.data)[:, 0], [5, 1, 2, 3, 4])
    buf = push(buf, jnp.asarray(_rows(6, 3)))  # full: only item 6, into slot 1
    assert int(buf.count) == 5 and int(buf.head) == 2
    np.testing.assert_array_equal(np.asarray(buf.data)[:, 0], [5, 6, 2, 3, 4])


def test_sample_only_from_filled_part():
    buf = replay_buffer.init(10, 3)
    filled = _rows(1, 3, size=3)  # non-zero rows; the 7 empty rows are zeros
    buf = replay_buffer.add(buf, jnp.asarray(filled))
    samples = np.asarray(jax.jit(replay_buffer.sample, static_argnums=2)(buf, jax.random.PRNGKey(0), 2000))
    assert samples.shape == (2000, 3)
    allowed = {tuple(r) for r in filled.tolist()}
    assert all(tuple(r) in allowed for r in samples.tolist())
    # Uniform over the three filled rows (each ~ 1/3 of 2000).
    counts = [np.sum(samples[:, 0] == filled[i, 0]) for i in range(3)]
    assert all(550 < c < 780 for c in counts), counts
