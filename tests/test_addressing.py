"""Tests for diffmem.addressing: shapes, hand-computed values, invariants and gradients.

Expected values come from numpy (or from arithmetic written out by hand), never from the
functions under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from diffmem import addressing
from strategies import (
    SETTINGS,
    assert_finite,
    assert_weighting,
    gates,
    gradient,
    smallest_normals,
    values,
    weightings,
)

B, H, N, M = 2, 3, 5, 4  # batch, heads, memory rows, row width: tiny, so compilation stays cheap

# The functions under test, jit-compiled once per argument shape: run eagerly, each operation
# inside them would be compiled on its own for every new shape, most of this file's time.
# test_functions_accept_numpy_float32_and_match_jax_array_inputs calls them eagerly.
cosine_similarity = jax.jit(addressing.cosine_similarity)
content_weights = jax.jit(addressing.content_weights)
interpolate = jax.jit(addressing.interpolate)
shift = jax.jit(addressing.shift)
sharpen = jax.jit(addressing.sharpen)
address = jax.jit(addressing.address)


def weighting(rng, *shape):
    """A random weighting: positive, sums to 1 over the last axis."""
    w = rng.random(shape) + 0.05
    return w / w.sum(-1, keepdims=True)


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_content_weights(memory, key, beta):
    cos = (memory @ key[..., None])[..., 0] / (
        np.linalg.norm(memory, axis=-1) * np.linalg.norm(key, axis=-1)[..., None]
    )
    return np_softmax(beta[..., None] * cos)


def np_shift(w, s):
    """w_s(i) = sum_d s(K + d) * w((i - d) mod N), written as a plain loop over i and d."""
    n, radius = w.shape[-1], (s.shape[-1] - 1) // 2
    out = np.zeros_like(w)
    for i in range(n):
        for d in range(-radius, radius + 1):
            out[..., i] += s[..., radius + d] * w[..., (i - d) % n]
    return out


def assert_is_weighting(w):
    w = np.asarray(w)
    assert np.all(np.isfinite(w))
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# cosine_similarity


def test_cosine_similarity_has_one_value_per_memory_row():
    rng = np.random.default_rng(0)
    out = cosine_similarity(rng.normal(size=(B, N, M)), rng.normal(size=(B, M)))
    assert out.shape == (B, N)


def test_cosine_similarity_broadcasts_a_head_axis():
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    key = rng.normal(size=(B, H, M)).astype(np.float32)
    out = cosine_similarity(memory[:, None], key)
    assert out.shape == (B, H, N)
    for h in range(H):
        np.testing.assert_allclose(out[:, h], cosine_similarity(memory, key[:, h]),
                                   rtol=1e-5, atol=1e-6)


def test_cosine_similarity_matches_hand_computed_values():
    memory = np.array([[[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 0.0]]], np.float32)
    key = np.array([[2.0, 0.0]], np.float32)
    expected = [[1.0, 0.0, 1.0 / np.sqrt(2.0), -1.0]]
    np.testing.assert_allclose(cosine_similarity(memory, key), expected, atol=1e-6)


def test_cosine_similarity_of_an_all_zero_row_is_zero():
    memory = np.array([[[0.0, 0.0], [1.0, 1.0]]], np.float32)
    out = cosine_similarity(memory, np.array([[1.0, 0.0]], np.float32))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [[0.0, 1.0 / np.sqrt(2.0)]], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# content_weights


def test_content_weights_have_shape_batch_by_rows():
    rng = np.random.default_rng(0)
    w = content_weights(rng.normal(size=(B, N, M)), rng.normal(size=(B, M)), np.ones(B))
    assert w.shape == (B, N)


def test_content_weights_with_a_head_axis_equal_each_head_addressed_alone():
    rng = np.random.default_rng(1)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    key = rng.normal(size=(B, H, M)).astype(np.float32)
    beta = rng.uniform(0.5, 5.0, size=(B, H)).astype(np.float32)
    w = content_weights(memory[:, None], key, beta)
    assert w.shape == (B, H, N)
    for h in range(H):
        np.testing.assert_allclose(
            w[:, h], content_weights(memory, key[:, h], beta[:, h]), rtol=1e-5, atol=1e-6
        )


def test_content_weights_match_a_hand_computed_three_by_two_memory():
    # Rows (1, 0), (0, 1), (1, 1) against key (1, 0): cosines 1, 0, 1/sqrt(2).
    memory = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], np.float32)
    key = np.array([[1.0, 0.0]], np.float32)
    beta = np.array([2.0], np.float32)
    logits = 2.0 * np.array([1.0, 0.0, 1.0 / np.sqrt(2.0)])
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(content_weights(memory, key, beta), [expected], rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_content_weights_match_numpy_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    memory, key = rng.normal(size=(B, N, M)), rng.normal(size=(B, M))
    beta = rng.uniform(0.0, 10.0, size=B)
    np.testing.assert_allclose(
        content_weights(memory.astype(np.float32), key.astype(np.float32),
                                   beta.astype(np.float32)),
        np_content_weights(memory, key, beta),
        rtol=1e-4,
        atol=1e-6,
    )


@pytest.mark.parametrize("seed,shape", [(0, (B, N, M)), (1, (1, 7, 3)), (2, (3, 2, 6))])
def test_content_weights_are_non_negative_and_sum_to_one(seed, shape):
    rng = np.random.default_rng(seed)
    memory = rng.normal(size=shape).astype(np.float32)
    key = rng.normal(size=(shape[0], shape[2])).astype(np.float32)
    beta = rng.uniform(0.0, 50.0, size=shape[0]).astype(np.float32)
    assert_is_weighting(content_weights(memory, key, beta))


def test_content_weights_with_zero_beta_are_uniform():
    rng = np.random.default_rng(0)
    w = content_weights(rng.normal(size=(B, N, M)), rng.normal(size=(B, M)), np.zeros(B))
    np.testing.assert_allclose(w, np.full((B, N), 1.0 / N), atol=1e-6)


def test_content_weights_with_large_beta_focus_on_the_best_matching_row():
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    key = memory[:, 3] * 2.0  # row 3 matches exactly, up to scale
    w = content_weights(memory, key, np.full(B, 200.0, np.float32))
    np.testing.assert_allclose(w[:, 3], 1.0, atol=1e-4)


@pytest.mark.parametrize("zero", ["memory", "key", "both"])
def test_content_weights_on_zero_inputs_are_finite_and_uniform(zero):
    rng = np.random.default_rng(0)
    memory = (np.zeros((B, N, M), np.float32) if zero in ("memory", "both")
              else rng.normal(size=(B, N, M)).astype(np.float32))
    key = (np.zeros((B, M), np.float32) if zero in ("key", "both")
           else rng.normal(size=(B, M)).astype(np.float32))
    w = content_weights(memory, key, np.full(B, 3.0, np.float32))
    np.testing.assert_allclose(w, np.full((B, N), 1.0 / N), atol=1e-6)


@pytest.mark.parametrize("zero", ["memory", "key", "both"])
def test_content_weights_have_finite_gradients_on_zero_inputs(zero):
    rng = np.random.default_rng(0)
    memory = (jnp.zeros((B, N, M)) if zero in ("memory", "both")
              else jnp.asarray(rng.normal(size=(B, N, M)), jnp.float32))
    key = (jnp.zeros((B, M)) if zero in ("key", "both")
           else jnp.asarray(rng.normal(size=(B, M)), jnp.float32))
    beta = jnp.full((B,), 3.0)
    # A non-uniform target, so gradients are not trivially 0.
    target = jnp.asarray(weighting(rng, B, N), jnp.float32)

    def f(memory, key, beta):
        return jnp.sum((addressing.content_weights(memory, key, beta) - target) ** 2)

    grads = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(memory, key, beta)
    for g in grads:
        assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------------
# interpolate


def test_interpolate_keeps_the_shape_of_its_weightings():
    rng = np.random.default_rng(0)
    assert interpolate(weighting(rng, B, N), weighting(rng, B, N),
                                  np.full(B, 0.5)).shape == (B, N)
    assert interpolate(weighting(rng, B, H, N), weighting(rng, B, H, N),
                                  np.full((B, H), 0.5)).shape == (B, H, N)


def test_interpolate_matches_hand_computed_values():
    w_content = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], np.float32)
    w_prev = np.array([[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], np.float32)
    g = np.array([0.25, 0.5], np.float32)
    expected = [[0.25, 0.0, 0.75], [0.35, 0.4, 0.25]]
    np.testing.assert_allclose(interpolate(w_content, w_prev, g), expected, atol=1e-6)


@pytest.mark.parametrize("g,pick", [(1.0, "content"), (0.0, "prev")])
def test_interpolate_at_the_gate_limits_returns_one_weighting(g, pick):
    rng = np.random.default_rng(0)
    w_content = weighting(rng, B, N).astype(np.float32)
    w_prev = weighting(rng, B, N).astype(np.float32)
    out = interpolate(w_content, w_prev, np.full(B, g, np.float32))
    np.testing.assert_allclose(out, w_content if pick == "content" else w_prev, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interpolate_is_non_negative_and_sums_to_one(seed):
    rng = np.random.default_rng(seed)
    out = interpolate(
        weighting(rng, B, H, N).astype(np.float32), weighting(rng, B, H, N).astype(np.float32),
        rng.random((B, H)).astype(np.float32)
    )
    assert_is_weighting(out)


# ---------------------------------------------------------------------------------------------
# shift


def one_hot(i, n, dtype=np.float32):
    v = np.zeros(n, dtype)
    v[i] = 1.0
    return v


def test_shift_keeps_the_shape_of_its_weighting():
    rng = np.random.default_rng(0)
    assert shift(weighting(rng, B, N), weighting(rng, B, 3)).shape == (B, N)
    assert shift(weighting(rng, B, H, N), weighting(rng, B, H, 3)).shape == (B, H, N)


@pytest.mark.parametrize("i", [0, 2, N - 1])
@pytest.mark.parametrize("d", [-1, 0, 1])
def test_shift_moves_one_hot_to_row_i_plus_d_mod_n(i, d):
    w = one_hot(i, N)[None]
    s = one_hot(1 + d, 3)[None]  # s[K + d] is the weight of a shift by d, K = 1
    np.testing.assert_allclose(shift(w, s), one_hot((i + d) % N, N)[None], atol=1e-7)


def test_shift_moves_one_hot_toward_higher_rows():
    out = shift(one_hot(1, N)[None], one_hot(2, 3)[None])  # d = +1
    assert int(np.argmax(out)) == 2


def test_shift_wraps_the_last_row_to_the_first():
    out = shift(one_hot(N - 1, N)[None], one_hot(2, 3)[None])  # d = +1
    np.testing.assert_allclose(out, one_hot(0, N)[None], atol=1e-7)


def test_shift_wraps_the_first_row_to_the_last():
    out = shift(one_hot(0, N)[None], one_hot(0, 3)[None])  # d = -1
    np.testing.assert_allclose(out, one_hot(N - 1, N)[None], atol=1e-7)


@pytest.mark.parametrize("d", [-2, 2])
def test_shift_with_radius_two_moves_one_hot_by_two(d):
    out = shift(one_hot(1, N)[None], one_hot(2 + d, 5)[None])
    np.testing.assert_allclose(out, one_hot((1 + d) % N, N)[None], atol=1e-7)


def test_shift_of_a_non_one_hot_weighting_matches_hand_computed_values():
    # w_s(i) = 0.5 w(i+1) + 0.25 w(i) + 0.25 w(i-1), indices mod 4:
    # i=0: .5*.2 + .25*.1 + .25*.4 = .225   i=1: .5*.3 + .25*.2 + .25*.1 = .225
    # i=2: .5*.4 + .25*.3 + .25*.2 = .325   i=3: .5*.1 + .25*.4 + .25*.3 = .225
    w = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)
    s = np.array([[0.5, 0.25, 0.25]], np.float32)  # shifts -1, 0, +1
    np.testing.assert_allclose(shift(w, s), [[0.225, 0.225, 0.325, 0.225]], atol=1e-6)


@pytest.mark.parametrize("seed,radius", [(0, 1), (1, 2)])
def test_shift_matches_a_plain_loop(seed, radius):
    rng = np.random.default_rng(seed)
    w, s = weighting(rng, B, H, N), weighting(rng, B, H, 2 * radius + 1)
    np.testing.assert_allclose(
        shift(w.astype(np.float32), s.astype(np.float32)), np_shift(w, s),
        rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shift_is_non_negative_and_sums_to_one(seed):
    rng = np.random.default_rng(seed)
    w, s = weighting(rng, B, H, N).astype(np.float32), weighting(rng, B, H, 3).astype(np.float32)
    assert_is_weighting(shift(w, s))


def test_shift_with_an_even_number_of_shift_weights_raises_value_error():
    with pytest.raises(ValueError, match="odd"):
        addressing.shift(np.full((1, N), 1.0 / N, np.float32), np.full((1, 2), 0.5, np.float32))


# ---------------------------------------------------------------------------------------------
# sharpen


def test_sharpen_keeps_the_shape_of_its_weighting():
    rng = np.random.default_rng(0)
    assert sharpen(weighting(rng, B, N), np.ones(B)).shape == (B, N)
    assert sharpen(weighting(rng, B, H, N), np.ones((B, H))).shape == (B, H, N)


def test_sharpen_with_gamma_one_is_the_identity():
    w = weighting(np.random.default_rng(0), B, N).astype(np.float32)
    np.testing.assert_allclose(sharpen(w, np.ones(B, np.float32)), w, rtol=1e-5)


def test_sharpen_with_gamma_two_is_the_normalised_square():
    w = weighting(np.random.default_rng(0), B, N).astype(np.float32)
    expected = w**2 / np.sum(w**2, axis=-1, keepdims=True)
    np.testing.assert_allclose(sharpen(w, np.full(B, 2.0, np.float32)), expected,
                               rtol=1e-5)


def test_sharpen_matches_hand_computed_values():
    # (0.25, 0.75) squared is (1/16, 9/16): normalised (0.1, 0.9).
    out = sharpen(np.array([[0.25, 0.75]], np.float32), np.array([2.0], np.float32))
    np.testing.assert_allclose(out, [[0.1, 0.9]], rtol=1e-5)


def test_sharpen_with_gamma_100_stays_finite_and_normalised():
    w = weighting(np.random.default_rng(0), B, N).astype(np.float32)
    out = sharpen(w, np.full(B, 100.0, np.float32))
    assert_is_weighting(out)
    # w^100 / sum w^100, without underflow
    expected = np_softmax(100.0 * np.log(w.astype(np.float64)))
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-6)


def test_sharpen_with_gamma_100_of_a_near_uniform_weighting_stays_normalised():
    # Every w^100 underflows to 0 in float32 here: the literal formula would give 0/0.
    w = np.full((1, 100), 0.01, np.float32)
    w[0, 0] = 0.0105
    w /= w.sum()
    out = sharpen(w, np.array([100.0], np.float32))
    assert_is_weighting(out)
    assert int(np.argmax(out)) == 0


@pytest.mark.parametrize("gamma", [1.0, 2.0, 100.0])
def test_sharpen_with_exact_zeros_stays_finite_and_keeps_the_zeros(gamma):
    w = np.array([[0.0, 0.7, 0.0, 0.3, 0.0]], np.float32)
    out = np.asarray(sharpen(w, np.array([gamma], np.float32)))
    assert_is_weighting(out)
    np.testing.assert_allclose(out[0, [0, 2, 4]], 0.0, atol=1e-7)


def test_sharpen_of_a_one_hot_is_the_same_one_hot():
    w = one_hot(2, N)[None]
    np.testing.assert_allclose(sharpen(w, np.array([1.0], np.float32)), w, atol=1e-7)


def test_sharpen_has_finite_gradients_with_exact_zeros():
    w = jnp.array([[0.0, 0.7, 0.0, 0.3, 0.0]])
    target = jnp.array([[0.1, 0.2, 0.3, 0.2, 0.2]])

    def f(w, gamma):
        return jnp.sum((addressing.sharpen(w, gamma) - target) ** 2)

    for g in jax.jit(jax.grad(f, argnums=(0, 1)))(w, jnp.array([2.0])):
        assert np.all(np.isfinite(g))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sharpen_is_non_negative_and_sums_to_one(seed):
    rng = np.random.default_rng(seed)
    out = sharpen(weighting(rng, B, H, N).astype(np.float32),
                             rng.uniform(1.0, 20.0, (B, H)).astype(np.float32))
    assert_is_weighting(out)


# ---------------------------------------------------------------------------------------------
# address


def head_params(rng, *lead, radius=1):
    """Random head parameters (key, beta, g, s, gamma) with leading shape ``lead``."""
    return dict(
        key=rng.normal(size=(*lead, M)).astype(np.float32),
        beta=rng.uniform(0.5, 10.0, lead).astype(np.float32),
        g=rng.uniform(0.0, 1.0, lead).astype(np.float32),
        s=weighting(rng, *lead, 2 * radius + 1).astype(np.float32),
        gamma=rng.uniform(1.0, 5.0, lead).astype(np.float32),
    )


def np_address(memory, w_prev, key, beta, g, s, gamma):
    w = np_content_weights(memory, key, beta)
    w = g[..., None] * w + (1 - g[..., None]) * w_prev
    w = np_shift(w, s)
    w = w ** gamma[..., None]
    return w / w.sum(-1, keepdims=True)


def test_address_has_shape_batch_by_rows():
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    out = address(memory, weighting(rng, B, N).astype(np.float32), **head_params(rng, B))
    assert out.shape == (B, N)


def test_address_with_a_head_axis_has_shape_batch_by_heads_by_rows():
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    out = address(memory[:, None], weighting(rng, B, H, N).astype(np.float32),
                             **head_params(rng, B, H))
    assert out.shape == (B, H, N)


@pytest.mark.parametrize("seed", [0, 1])
def test_address_matches_numpy_composition_of_the_four_stages(seed):
    rng = np.random.default_rng(seed)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    w_prev = weighting(rng, B, H, N).astype(np.float32)
    p = head_params(rng, B, H)
    expected = np_address(memory[:, None].astype(np.float64), w_prev.astype(np.float64),
                          **{k: v.astype(np.float64) for k, v in p.items()})
    np.testing.assert_allclose(address(memory[:, None], w_prev, **p), expected,
                               rtol=1e-4, atol=1e-6)


def test_address_with_gate_one_no_shift_and_gamma_one_is_content_weighting():
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    key = rng.normal(size=(B, M)).astype(np.float32)
    beta = np.full(B, 4.0, np.float32)
    out = address(
        memory, weighting(rng, B, N).astype(np.float32), key, beta,
        g=np.ones(B, np.float32), s=np.tile(one_hot(1, 3), (B, 1)), gamma=np.ones(B, np.float32),
    )
    np.testing.assert_allclose(out, content_weights(memory, key, beta), rtol=1e-5,
                               atol=1e-7)


def test_address_with_gate_zero_shifts_the_previous_weighting():
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(1, N, M)).astype(np.float32)
    out = address(
        memory, one_hot(N - 1, N)[None], rng.normal(size=(1, M)).astype(np.float32),
        np.array([5.0], np.float32),
        g=np.zeros(1, np.float32), s=one_hot(2, 3)[None], gamma=np.ones(1, np.float32),
    )
    np.testing.assert_allclose(out, one_hot(0, N)[None], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_address_is_non_negative_and_sums_to_one(seed):
    rng = np.random.default_rng(seed)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    w_prev = weighting(rng, B, H, N).astype(np.float32)
    assert_is_weighting(address(memory[:, None], w_prev, **head_params(rng, B, H)))


def test_address_on_zero_memory_is_finite_and_has_finite_gradients():
    rng = np.random.default_rng(0)
    p = {k: jnp.asarray(v) for k, v in head_params(rng, B).items()}
    w_prev = jnp.asarray(one_hot(0, N))[None].repeat(B, 0)  # exact zeros reach the sharpening log
    target = jnp.asarray(weighting(rng, B, N), jnp.float32)

    def f(memory, w_prev, key, beta, g, s, gamma):
        return jnp.sum((addressing.address(memory, w_prev, key, beta, g, s, gamma) - target) ** 2)

    args = (jnp.zeros((B, N, M)), w_prev, jnp.zeros((B, M)), p["beta"], p["g"], p["s"], p["gamma"])
    assert np.all(np.isfinite(address(*args)))
    for grad in jax.jit(jax.grad(f, argnums=tuple(range(7))))(*args):
        assert np.all(np.isfinite(grad))


# ---------------------------------------------------------------------------------------------
# accepts numpy float32 inputs, not only jax arrays


@pytest.mark.parametrize("name", ["cosine_similarity", "content_weights", "interpolate", "shift",
                                  "sharpen", "address"])
def test_functions_accept_numpy_float32_and_match_jax_array_inputs(name):
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(B, N, M)).astype(np.float32)
    p = head_params(rng, B)
    w = weighting(rng, B, N).astype(np.float32)
    args = {
        "cosine_similarity": (memory, p["key"]),
        "content_weights": (memory, p["key"], p["beta"]),
        "interpolate": (w, weighting(rng, B, N).astype(np.float32), p["g"]),
        "shift": (w, p["s"]),
        "sharpen": (w, p["gamma"]),
        "address": (memory, w, p["key"], p["beta"], p["g"], p["s"], p["gamma"]),
    }[name]
    fn = getattr(addressing, name)
    out = fn(*args)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, fn(*(jnp.asarray(a) for a in args)), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# numerical gradient checks in float64 (jit-compiled: one compilation is cheaper than many
# op-by-op ones)


def f64(x):
    x = jnp.asarray(x, jnp.float64)
    assert x.dtype == jnp.float64, "float64 is off: use the x64 fixture"
    return x


def test_cosine_similarity_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    check_grads(jax.jit(addressing.cosine_similarity),
                (f64(rng.normal(size=(B, N, M))), f64(rng.normal(size=(B, M)))), order=1,
                modes=["rev"])


def test_content_weights_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    args = (f64(rng.normal(size=(B, N, M))), f64(rng.normal(size=(B, M))),
            f64(rng.uniform(0.5, 5.0, B)))
    check_grads(jax.jit(addressing.content_weights), args, order=1, modes=["rev"])


def test_content_weights_gradients_with_a_head_axis_match_finite_differences(x64):
    rng = np.random.default_rng(1)
    args = (f64(rng.normal(size=(B, 1, N, M))), f64(rng.normal(size=(B, H, M))),
            f64(rng.uniform(0.5, 5.0, (B, H))))
    check_grads(jax.jit(addressing.content_weights), args, order=1, modes=["rev"])


def test_interpolate_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    args = (f64(weighting(rng, B, N)), f64(weighting(rng, B, N)), f64(rng.uniform(0.1, 0.9, B)))
    check_grads(jax.jit(addressing.interpolate), args, order=1, modes=["rev"])


def test_shift_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    check_grads(jax.jit(addressing.shift), (f64(weighting(rng, B, N)), f64(weighting(rng, B, 3))),
                order=1, modes=["rev"])


def test_sharpen_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    check_grads(jax.jit(addressing.sharpen),
                (f64(weighting(rng, B, N)), f64(rng.uniform(1.0, 5.0, B))), order=1, modes=["rev"])


def test_address_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    p = head_params(rng, B, H)
    args = (
        f64(rng.normal(size=(B, 1, N, M))), f64(weighting(rng, B, H, N)),
        f64(p["key"]), f64(p["beta"]), f64(p["g"]), f64(p["s"]), f64(p["gamma"]),
    )
    check_grads(jax.jit(addressing.address), args, order=1, modes=["rev"])


# ---------------------------------------------------------------------------------------------
# properties (hypothesis): for any finite inputs, including extreme key strengths and
# sharpening factors, all-zero memories and keys, and values far beyond anything a trained NTM
# produces, every weighting is finite, non-negative and sums to 1, and so are its gradients

PN, PM, PK, PH = 8, 4, 1, 2  # the properties' memory rows, row width, shift radius, heads


@SETTINGS
@given(mem=st.one_of(values((1, PN, PM)), smallest_normals((1, PN, PM))), key=values((1, PM)),
       beta=st.one_of(st.just(0.0), st.floats(0, 1e6, width=32)))
def test_content_weighting_is_a_finite_distribution_with_finite_gradients(mem, key, beta):
    beta = np.float32([beta])
    assert_weighting(content_weights(mem, key, beta))
    assert_finite(gradient(addressing.content_weights)((mem, key, beta)))


@SETTINGS
@given(w=weightings((1, PN)), gamma=st.floats(1, 1e4, width=32))
def test_sharpening_keeps_a_weighting_for_any_exponent(w, gamma):
    gamma = np.float32([gamma])
    assert_weighting(sharpen(w, gamma))
    assert_finite(gradient(addressing.sharpen)((w, gamma)))


# The model's beta and gamma are at most about 21 (softplus of controller outputs clipped to
# +-20); the whole pipeline is checked far beyond that. (Hypothesis found NaN gradients for an
# all-zero memory and key with beta 4.5e5 and gamma 359 when the cosine divided by |u| |v|.)
@SETTINGS
@given(mem=values((1, 1, PN, PM)), w_prev=weightings((1, PH, PN)), key=values((1, PH, PM)),
       beta=arrays(np.float32, (1, PH), elements=st.floats(0, 1e6, width=32)),
       g=gates((1, PH)), s=weightings((1, PH, 2 * PK + 1)),
       gamma=arrays(np.float32, (1, PH), elements=st.floats(1, 1e4, width=32)))
@example(mem=np.zeros((1, 1, PN, PM), np.float32),
         w_prev=np.full((1, PH, PN), 1 / PN, np.float32), key=np.zeros((1, PH, PM), np.float32),
         beta=np.full((1, PH), 1e6, np.float32), g=np.full((1, PH), 0.5, np.float32),
         s=np.float32([[[0, 1, 0]] * PH]), gamma=np.full((1, PH), 1e4, np.float32))
def test_the_whole_addressing_pipeline_gives_weightings_with_finite_gradients(
        mem, w_prev, key, beta, g, s, gamma):
    assert_weighting(address(mem, w_prev, key, beta, g, s, gamma))
    assert_finite(gradient(addressing.address)((mem, w_prev, key, beta, g, s, gamma)))


@SETTINGS
@given(mem=st.sampled_from([0.0, 1e-30, 1e30]).map(lambda v: np.full((1, PN, PM), v, np.float32)),
       key=values((1, PM)))
def test_a_uniform_or_empty_memory_gives_a_uniform_content_weighting(mem, key):
    # Every row is the same, so no row can be preferred, whatever the key and its strength.
    w = np.asarray(content_weights(mem, key, np.float32([50.0])))
    np.testing.assert_allclose(w, 1.0 / PN, rtol=1e-5)
