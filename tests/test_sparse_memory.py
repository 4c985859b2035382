"""Sparse access memory's functions against dense references (values and gradients in float64
where they are differentiated)."""

import jax
import jax.numpy as jnp
import numpy as np

from diffmem import memory as dense_memory
from diffmem import sparse_memory as sm
from diffmem.addressing import content_weights

B, N, W, R, K = 2, 12, 5, 2, 3


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


def test_a_write_erases_the_least_used_row_then_adds_to_the_touched_ones():
    rng = np.random.default_rng(2)
    memory = jnp.asarray(rng.normal(size=(B, N, W)), jnp.float32)
    index = jnp.asarray([[[0, 3, 5], [5, 7, 1]], [[2, 4, 6], [8, 9, 10]]], jnp.int32)
    read_weights = jax.nn.softmax(jnp.asarray(rng.normal(size=(B, R, K)), jnp.float32))
    gate, interpolation = jnp.asarray([1.0, 0.5]), jnp.asarray([0.3, 0.9])
    lru = jnp.asarray([5, 11], jnp.int32)  # batch 0: the least used row was also read
    weights = sm.write_weights(read_weights, gate, interpolation)
    add = jnp.asarray(rng.normal(size=(B, W)), jnp.float32)
    touched = sm.touched_rows(index, lru)
    new = sm.sparse_write(memory, touched, weights, add, lru)
    # The dense form: a weighting over all N rows, the least used row erased first.
    dense_w = np.zeros((B, N))
    for b in range(B):
        np.add.at(dense_w[b], np.asarray(touched[b]), np.asarray(weights[b]))
    erased = np.asarray(memory).copy()
    erased[np.arange(B), np.asarray(lru)] = 0.0
    np.testing.assert_allclose(new, erased + dense_w[..., None] * np.asarray(add)[:, None],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dense_w.sum(-1), np.asarray(gate), rtol=1e-6)
    # A sequence that is not live keeps its memory as it was.
    kept = sm.sparse_write(memory, touched, weights, add, lru, jnp.asarray([True, False]))
    np.testing.assert_array_equal(kept[1], memory[1])
    np.testing.assert_array_equal(kept[0], new[0])


def test_the_least_recently_used_row_is_the_oldest_access_lowest_first():
    last = jnp.asarray([[3, -1, 0, -1], [2, 2, 1, 5]])
    np.testing.assert_array_equal(sm.least_recently_used(last), [1, 2])
    step = jnp.asarray([7, 7])
    touched = jnp.asarray([[1, 3], [0, 1]])
    stamped = sm.accessed(last, step, touched, jnp.asarray([[0.5, 0.001], [0.2, 0.3]]),
                          jnp.asarray([[[2]], [[3]]]), jnp.asarray([[[1.0]], [[0.0]]]))
    np.testing.assert_array_equal(stamped, [[3, 7, 7, -1], [7, 7, 1, 5]])

