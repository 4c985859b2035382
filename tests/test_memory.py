"""Tests for diffmem.memory: read, write and write_heads against numpy and hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from jax.test_util import check_grads

from diffmem import memory as mem
from strategies import SETTINGS, assert_finite, gates, gradient, values, weightings

B, R, W, N, M = 2, 3, 2, 5, 4  # batch, read heads, write heads, memory rows, row width

# The functions under test, jit-compiled once per argument shape: run eagerly, each operation
# inside them would be compiled on its own for every new shape.
# test_read_and_write_accept_numpy_float32_inputs calls them eagerly.
read = jax.jit(mem.read)
write = jax.jit(mem.write)
write_heads = jax.jit(mem.write_heads)


def weighting(rng, *shape):
    w = rng.random(shape) + 0.05
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


def normal(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


def uniform(rng, *shape):
    return rng.random(shape).astype(np.float32)


def one_hot(i, n):
    v = np.zeros(n, np.float32)
    v[i] = 1.0
    return v


def np_write_heads(memory, w, erase, add):
    """M(i) * prod_h (1 - w_h(i) e_h) + sum_h w_h(i) a_h, one row and one head at a time."""
    memory, w, erase, add = (np.asarray(x, np.float64) for x in (memory, w, erase, add))
    out = np.empty_like(memory)
    for b in range(memory.shape[0]):
        for i in range(memory.shape[1]):
            keep = np.ones(memory.shape[2])
            added = np.zeros(memory.shape[2])
            for h in range(w.shape[1]):
                keep *= 1.0 - w[b, h, i] * erase[b, h]
                added += w[b, h, i] * add[b, h]
            out[b, i] = memory[b, i] * keep + added
    return out


# ---------------------------------------------------------------------------------------------
# read


def test_read_returns_one_row_sized_vector_per_batch_element():
    rng = np.random.default_rng(0)
    assert read(normal(rng, B, N, M), weighting(rng, B, N)).shape == (B, M)


def test_read_with_a_head_axis_returns_one_vector_per_head():
    rng = np.random.default_rng(0)
    memory, w = normal(rng, B, N, M), weighting(rng, B, R, N)
    out = read(memory[:, None], w)
    assert out.shape == (B, R, M)
    for r in range(R):
        np.testing.assert_allclose(out[:, r], read(memory, w[:, r]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("i", [0, 3])
def test_read_with_a_one_hot_weighting_returns_exactly_that_row(i):
    rng = np.random.default_rng(0)
    memory = normal(rng, B, N, M)
    w = np.tile(one_hot(i, N), (B, 1))
    np.testing.assert_allclose(read(memory, w), memory[:, i], rtol=1e-6)


def test_read_with_a_uniform_weighting_returns_the_mean_row():
    rng = np.random.default_rng(0)
    memory = normal(rng, B, N, M)
    np.testing.assert_allclose(read(memory, np.full((B, N), 1.0 / N, np.float32)),
                               memory.mean(1), rtol=1e-5, atol=1e-6)


def test_read_matches_hand_computed_values():
    memory = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]], np.float32)
    w = np.array([[0.5, 0.25, 0.25]], np.float32)
    # 0.5 * (1, 2) + 0.25 * (3, 4) + 0.25 * (5, 6) = (2.5, 3.5)
    np.testing.assert_allclose(read(memory, w), [[2.5, 3.5]], rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_read_matches_numpy_weighted_sum(seed):
    rng = np.random.default_rng(seed)
    memory, w = normal(rng, B, N, M), weighting(rng, B, N)
    expected = np.sum(w[..., None].astype(np.float64) * memory, axis=1)
    np.testing.assert_allclose(read(memory, w), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# write


def test_write_keeps_the_memory_shape():
    rng = np.random.default_rng(0)
    out = write(normal(rng, B, N, M), weighting(rng, B, N), uniform(rng, B, M),
                    normal(rng, B, M))
    assert out.shape == (B, N, M)


def test_write_with_zero_erase_and_zero_add_is_the_identity():
    rng = np.random.default_rng(0)
    memory = normal(rng, B, N, M)
    out = write(memory, weighting(rng, B, N), np.zeros((B, M), np.float32),
                    np.zeros((B, M), np.float32))
    np.testing.assert_array_equal(out, memory)


def test_write_with_zero_weighting_is_the_identity():
    rng = np.random.default_rng(0)
    memory = normal(rng, B, N, M)
    out = write(memory, np.zeros((B, N), np.float32), uniform(rng, B, M), normal(rng, B, M))
    np.testing.assert_array_equal(out, memory)


@pytest.mark.parametrize("i", [0, N - 1])
def test_write_with_full_erase_and_add_at_one_row_replaces_that_row_only(i):
    rng = np.random.default_rng(0)
    memory, add = normal(rng, B, N, M), normal(rng, B, M)
    w = np.tile(one_hot(i, N), (B, 1))
    out = np.asarray(write(memory, w, np.ones((B, M), np.float32), add))
    expected = memory.copy()
    expected[:, i] = add
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_write_with_erase_only_scales_the_addressed_row():
    memory = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]], np.float32)
    w = np.array([[0.0, 0.5, 0.0]], np.float32)
    erase = np.array([[1.0, 0.5]], np.float32)
    # Row 1 becomes (3 * (1 - 0.5), 4 * (1 - 0.25)) = (1.5, 3.0).
    expected = [[[1.0, 2.0], [1.5, 3.0], [5.0, 6.0]]]
    np.testing.assert_allclose(write(memory, w, erase, np.zeros((1, 2), np.float32)), expected,
                               rtol=1e-6)


def test_write_matches_hand_computed_values():
    memory = np.array([[[1.0, 1.0], [2.0, 2.0]]], np.float32)
    w = np.array([[0.25, 0.75]], np.float32)
    erase = np.array([[1.0, 0.0]], np.float32)
    add = np.array([[4.0, -4.0]], np.float32)
    # Row 0: (1 * 0.75 + 1, 1 - 1) = (1.75, 0);   row 1: (2 * 0.25 + 3, 2 - 3) = (3.5, -1).
    np.testing.assert_allclose(write(memory, w, erase, add), [[[1.75, 0.0], [3.5, -1.0]]],
                               rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_write_matches_the_numpy_erase_then_add_rule(seed):
    rng = np.random.default_rng(seed)
    memory, w = normal(rng, B, N, M), weighting(rng, B, N)
    erase, add = uniform(rng, B, M), normal(rng, B, M)
    expected = memory * (1 - w[..., None] * erase[:, None]) + w[..., None] * add[:, None]
    np.testing.assert_allclose(write(memory, w, erase, add), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# write_heads


def test_write_heads_keeps_the_memory_shape():
    rng = np.random.default_rng(0)
    out = write_heads(normal(rng, B, N, M), weighting(rng, B, W, N), uniform(rng, B, W, M),
                          normal(rng, B, W, M))
    assert out.shape == (B, N, M)


def test_write_heads_with_one_head_equals_write():
    rng = np.random.default_rng(0)
    memory, w = normal(rng, B, N, M), weighting(rng, B, N)
    erase, add = uniform(rng, B, M), normal(rng, B, M)
    np.testing.assert_allclose(
        write_heads(memory, w[:, None], erase[:, None], add[:, None]),
        write(memory, w, erase, add), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("seed,heads", [(0, 2), (1, 2), (2, 3)])
def test_write_heads_matches_product_of_erasures_plus_sum_of_additions(seed, heads):
    rng = np.random.default_rng(seed)
    args = (normal(rng, B, N, M), weighting(rng, B, heads, N), uniform(rng, B, heads, M),
            normal(rng, B, heads, M))
    np.testing.assert_allclose(write_heads(*args), np_write_heads(*args), rtol=1e-5, atol=1e-6)


def test_write_heads_does_not_depend_on_the_order_of_the_heads():
    rng = np.random.default_rng(0)
    memory, w = normal(rng, B, N, M), weighting(rng, B, W, N)
    erase, add = uniform(rng, B, W, M), normal(rng, B, W, M)
    flip = slice(None, None, -1)
    np.testing.assert_allclose(
        write_heads(memory, w, erase, add),
        write_heads(memory, w[:, flip], erase[:, flip], add[:, flip]),
        rtol=1e-5,
        atol=1e-6,
    )


def test_write_heads_adds_both_heads_at_a_shared_row_after_erasing():
    # Both heads fully erase row 0 and add to it: the row is the sum of the adds, not the last add.
    memory = np.full((1, 2, 2), 9.0, np.float32)
    w = np.array([[[1.0, 0.0], [1.0, 0.0]]], np.float32)
    erase = np.ones((1, 2, 2), np.float32)
    add = np.array([[[1.0, 2.0], [10.0, 20.0]]], np.float32)
    np.testing.assert_allclose(write_heads(memory, w, erase, add), [[[11.0, 22.0], [9.0, 9.0]]],
                               rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# finite gradients on an all-zero memory


def test_read_and_write_have_finite_gradients_on_zero_memory():
    rng = np.random.default_rng(0)
    w, erase = jnp.asarray(weighting(rng, B, N)), jnp.asarray(uniform(rng, B, M))
    add = jnp.zeros((B, M))

    def f(memory, w, erase, add):
        written = mem.write(memory, w, erase, add)
        return jnp.sum(mem.read(written, w) ** 2) + jnp.sum(written)

    grads = jax.jit(jax.grad(f, argnums=(0, 1, 2, 3)))(jnp.zeros((B, N, M)), w, erase, add)
    for g in grads:
        assert np.all(np.isfinite(g))


def test_write_heads_has_finite_gradients_on_zero_memory():
    rng = np.random.default_rng(0)
    args = (jnp.zeros((B, N, M)), jnp.asarray(weighting(rng, B, W, N)),
            jnp.asarray(uniform(rng, B, W, M)), jnp.zeros((B, W, M)))

    def loss(*a):
        return jnp.sum(mem.write_heads(*a) ** 2)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))(*args)
    for g in grads:
        assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------------
# numpy float32 inputs


def test_read_and_write_accept_numpy_float32_inputs():
    rng = np.random.default_rng(0)
    memory, w = normal(rng, B, N, M), weighting(rng, B, N)
    erase, add = uniform(rng, B, M), normal(rng, B, M)
    assert mem.read(memory, w).dtype == jnp.float32
    assert mem.write(memory, w, erase, add).dtype == jnp.float32
    assert mem.write_heads(memory, w[:, None], erase[:, None], add[:, None]).dtype == jnp.float32


# ---------------------------------------------------------------------------------------------
# numerical gradient checks in float64 (jit-compiled: cheaper than many op-by-op compilations)


def f64(x):
    x = jnp.asarray(x, jnp.float64)
    assert x.dtype == jnp.float64, "float64 is off: use the x64 fixture"
    return x


def test_read_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    check_grads(jax.jit(mem.read), (f64(normal(rng, B, N, M)), f64(weighting(rng, B, N))), order=1,
                modes=["rev"])


def test_read_with_a_head_axis_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    check_grads(jax.jit(mem.read), (f64(normal(rng, B, 1, N, M)), f64(weighting(rng, B, R, N))),
                order=1, modes=["rev"])


def test_write_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    args = (f64(normal(rng, B, N, M)), f64(weighting(rng, B, N)), f64(uniform(rng, B, M)),
            f64(normal(rng, B, M)))
    check_grads(jax.jit(mem.write), args, order=1, modes=["rev"])


def test_write_heads_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    args = (f64(normal(rng, B, N, M)), f64(weighting(rng, B, W, N)), f64(uniform(rng, B, W, M)),
            f64(normal(rng, B, W, M)))
    check_grads(jax.jit(mem.write_heads), args, order=1, modes=["rev"])


# ---------------------------------------------------------------------------------------------
# properties (hypothesis): for any finite memory, including values far beyond anything a
# trained NTM writes, reads and writes are finite, stay within their bounds, and have finite
# gradients

PN, PM, PH = 8, 4, 2  # the properties' memory rows, row width, heads


def read_one_memory(memory, w):
    """``mem.read`` of a memory without a head axis."""
    return mem.read(memory[:, None], w)


@SETTINGS
@given(memory=values((1, PN, PM)), w=weightings((1, PH, PN)))
def test_a_read_is_a_convex_combination_of_rows(memory, w):
    r = np.asarray(read(memory[:, None], w), np.float64)  # (1, H, M)
    assert_finite(r)
    bound = np.abs(memory).max(axis=1)[:, None, :]  # (1, 1, M): the largest entry per column
    assert np.all(np.abs(r) <= bound * (1 + 1e-5) + 1e-30)
    assert_finite(gradient(read_one_memory)((memory, w)))


@SETTINGS
@given(memory=values((1, PN, PM), limit=1e36), w=weightings((1, PH, PN)),
       erase=gates((1, PH, PM)), add=values((1, PH, PM), limit=1e36))
def test_a_write_stays_finite_and_within_its_bounds(memory, w, erase, add):
    out = np.asarray(write_heads(memory, w, erase, add), np.float64)
    assert_finite(out)
    # Erasing only shrinks entries towards 0, and each head adds at most |a| per entry.
    bound = np.abs(memory) + PH * np.abs(add).max(axis=1)[:, None, :]
    assert np.all(np.abs(out) <= bound * (1 + 1e-5) + 1e-30)
    assert_finite(gradient(mem.write_heads)((memory, w, erase, add)))
