"""Sparse access memory's functions against dense references, and the reversible scan against
JAX's own scan, values and gradients in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffmem import memory as dense_memory
from diffmem import sparse_memory as sm
from diffmem.addressing import content_weights

B, N, W, R, K = 2, 12, 5, 2, 3


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def test_a_read_of_every_row_is_the_dense_content_read(x64):
    rng = np.random.default_rng(0)
    memory, keys = rng.normal(size=(B, N, W)), rng.normal(size=(B, R, W))
    strengths = rng.uniform(0.5, 5, size=(B, R))

    def sparse(m, k, s):
        return sm.sparse_read(m, k, s, N)[2]

    def dense(m, k, s):
        weights = jax.vmap(content_weights, in_axes=(None, 1, 1), out_axes=1)(m, k, s)
        return dense_memory.read(m[:, None], weights)

    args = tuple(map(jnp.asarray, (memory, keys, strengths)))
    np.testing.assert_allclose(sparse(*args), dense(*args), rtol=1e-12)
    cotangent = jnp.asarray(rng.normal(size=(B, R, W)))
    for got, want in zip(jax.vjp(sparse, *args)[1](cotangent), jax.vjp(dense, *args)[1](cotangent)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_a_read_takes_the_k_most_similar_rows_and_its_gradient_reaches_only_them(x64):
    rng = np.random.default_rng(1)
    memory, keys = jnp.asarray(rng.normal(size=(B, N, W))), jnp.asarray(rng.normal(size=(B, R, W)))
    index, weights, _ = sm.sparse_read(memory, keys, jnp.ones((B, R)), K)
    similarity = np.einsum("bnw,brw->brn", memory / np.linalg.norm(memory, axis=-1, keepdims=True),
                           keys / np.linalg.norm(keys, axis=-1, keepdims=True))
    np.testing.assert_array_equal(index, np.argsort(-similarity, axis=-1)[..., :K])
    np.testing.assert_allclose(weights.sum(-1), 1.0)
    grad = jax.grad(lambda m: sm.sparse_read(m, keys, jnp.ones((B, R)), K)[2].sum())(memory)
    touched = np.zeros((B, N), bool)
    for b in range(B):
        touched[b, np.asarray(index[b]).ravel()] = True
    assert np.all(np.asarray(grad)[~touched] == 0) and np.any(np.asarray(grad)[touched] != 0)


def test_a_write_erases_the_least_used_row_adds_to_the_touched_ones_and_undoes_exactly():
    rng = np.random.default_rng(2)
    memory = jnp.asarray(rng.normal(size=(B, N, W)), jnp.float32)
    index = jnp.asarray([[[0, 3, 5], [5, 7, 1]], [[2, 4, 6], [8, 9, 10]]], jnp.int32)
    read_weights = jax.nn.softmax(jnp.asarray(rng.normal(size=(B, R, K)), jnp.float32))
    gate, interpolation = jnp.asarray([1.0, 0.5]), jnp.asarray([0.3, 0.9])
    lru = jnp.asarray([5, 11], jnp.int32)  # batch 0: the least used row was also read
    weights = sm.write_weights(read_weights, gate, interpolation)
    add = jnp.asarray(rng.normal(size=(B, W)), jnp.float32)
    new, touched, old = sm.sparse_write(memory, index, weights, lru, add)
    # The dense form: a weighting over all N rows, the least used row erased first.
    dense_w = np.zeros((B, N))
    for b in range(B):
        np.add.at(dense_w[b], np.asarray(touched[b]), np.asarray(weights[b]))
    erased = np.asarray(memory).copy()
    erased[np.arange(B), np.asarray(lru)] = 0.0
    np.testing.assert_allclose(new, erased + dense_w[..., None] * np.asarray(add)[:, None],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dense_w.sum(-1), np.asarray(gate), rtol=1e-6)
    np.testing.assert_array_equal(sm.undo_write(new, touched, old), memory)


def test_the_least_recently_used_row_is_the_oldest_access_lowest_first():
    last = jnp.asarray([[3, -1, 0, -1], [2, 2, 1, 5]])
    np.testing.assert_array_equal(sm.least_recently_used(last), [1, 2])
    step = jnp.asarray([7, 7])
    touched = jnp.asarray([[1, 3], [0, 1]])
    stamped = sm.accessed(last, step, touched, jnp.asarray([[0.5, 0.001], [0.2, 0.3]]),
                          jnp.asarray([[[2]], [[3]]]), jnp.asarray([[[1.0]], [[0.0]]]))
    np.testing.assert_array_equal(stamped, [[3, 7, 7, -1], [7, 7, 1, 5]])


def _toy_step(params, small, memory, x):
    """A sparse access memory with a linear controller: enough to exercise every path."""
    reads_prev, index_prev, weights_prev, last, step = small
    h = jnp.tanh(x @ params["x"] + reads_prev.reshape(B, -1) @ params["r"])
    keys = (h @ params["k"]).reshape(B, R, W)
    strengths = jax.nn.softplus(h @ params["s"])
    gate, interpolation = jax.nn.sigmoid(h @ params["g"]).T
    lru = sm.least_recently_used(last)
    weights = sm.write_weights(weights_prev, gate, interpolation)
    memory, touched, old = sm.sparse_write(memory, index_prev, weights, lru, h @ params["a"])
    index, read_weights, reads = sm.sparse_read(memory, keys, strengths, K)
    last = sm.accessed(last, step, touched, weights, index, read_weights)
    y = reads.reshape(B, -1) @ params["y"]
    return (reads, index, read_weights, last, step + 1), memory, y, (touched, old)


def _toy(rng, dtype):
    hidden = 7
    shapes = dict(x=(3, hidden), r=(R * W, hidden), k=(hidden, R * W), s=(hidden, R),
                  g=(hidden, 2), a=(hidden, W), y=(R * W, 4))
    params = {n: jnp.asarray(rng.normal(size=s) * 0.5, dtype) for n, s in shapes.items()}
    small = (jnp.zeros((B, R, W), dtype), jnp.tile(jnp.arange(K, dtype=jnp.int32), (B, R, 1)),
             jnp.full((B, R, K), 1.0 / K, dtype), jnp.full((B, N), -1, jnp.int32),
             jnp.zeros((B,), jnp.int32))
    memory = jnp.asarray(rng.normal(size=(B, N, W)) * 0.1, dtype)
    xs = jnp.asarray(rng.normal(size=(9, B, 3)), dtype)
    return params, small, memory, xs


def test_the_reversible_scan_equals_jaxs_scan_in_values_and_gradients(x64):
    params, small, memory, xs = _toy(np.random.default_rng(3), jnp.float64)

    def plain(params, memory, xs):
        def body(carry, x):
            s, m = carry
            s, m, y, _ = _toy_step(params, s, m, x)
            return (s, m), y
        (s, m), ys = jax.lax.scan(body, (small, memory), xs)
        return (ys ** 2).sum() + (m ** 3).sum() + s[0].sum() + s[2].sum()

    def reversible(params, memory, xs):
        s, m, ys = sm.reversible_scan(_toy_step, lambda m, r: sm.undo_write(m, *r), params,
                                      small, memory, xs)
        return (ys ** 2).sum() + (m ** 3).sum() + s[0].sum() + s[2].sum()

    np.testing.assert_allclose(reversible(params, memory, xs), plain(params, memory, xs),
                               rtol=1e-13)
    got = jax.grad(reversible, argnums=(0, 1, 2))(params, memory, xs)
    want = jax.grad(plain, argnums=(0, 1, 2))(params, memory, xs)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
    assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(got))
