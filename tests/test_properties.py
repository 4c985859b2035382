"""Property-based tests (hypothesis) of the addressing and memory functions.

For any finite inputs in the functions' domains, including extreme key strengths and
sharpening factors, all-zero memories and keys, and values far beyond anything a trained NTM
produces, every weighting is finite, non-negative and sums to 1, reads and writes are finite,
and so are all gradients. Shapes are fixed, so each function compiles once.
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from diffmem import addressing, memory

N, M, K, H = 8, 4, 1, 2  # memory rows, row width, shift radius, heads
# Far beyond any value a trained NTM writes (float32 squares overflow above ~1e19); as a
# float32, since hypothesis draws float32 values between float32 bounds.
BIG = float(np.float32(1e30))

# Derandomised: CI sees the same examples on every run, so a failure is never a fluke of
# the draw; set derandomize=False locally to explore other examples.
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def smallest_normals(shape):
    """Rows holding the smallest normal float32 (1.2e-38) beside zeros: the case that made
    an earlier rescaling of the cosine overflow its gradient."""
    tiny = float(np.finfo(np.float32).tiny)
    return arrays(np.float32, shape, elements=st.sampled_from([0.0, tiny, -tiny, 1.0]))


def values(shape, limit=BIG):
    """Finite float32 arrays mixing zeros, ordinary values and huge ones of either sign."""
    element = st.one_of(
        st.just(0.0),
        st.floats(-10, 10, width=32),
        st.floats(-float(np.float32(limit)), float(np.float32(limit)), width=32),
    )
    return arrays(np.float32, shape, elements=element)


def weightings(shape):
    """Weightings over the last axis: softmax of logits spread enough to give one-hot rows
    and exact zeros."""
    return arrays(np.float32, shape, elements=st.floats(-200, 200, width=32)).map(
        lambda logits: np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1)))


def gates(shape):
    return arrays(np.float32, shape, elements=st.floats(0, 1, width=32))


def assert_weighting(w):
    w = np.asarray(w, np.float64)
    assert np.all(np.isfinite(w)), w
    assert np.all(w >= 0), w
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)


def assert_finite(tree):
    for leaf in jax.tree.leaves(tree):
        assert np.all(np.isfinite(np.asarray(leaf))), leaf


def _grads(f, *args):
    """Gradients of a scalar summary of f's output that weights every element differently."""
    def scalar(*a):
        out = f(*a)
        return jnp.sum(out * jnp.linspace(0.5, 1.5, out.size).reshape(out.shape))
    return jax.jit(jax.grad(scalar, argnums=tuple(range(len(args)))))(*args)


content = jax.jit(addressing.content_weights)
address = jax.jit(addressing.address)
sharpen = jax.jit(addressing.sharpen)
read = jax.jit(memory.read)
write = jax.jit(memory.write_heads)


@SETTINGS
@given(mem=st.one_of(values((1, N, M)), smallest_normals((1, N, M))), key=values((1, M)),
       beta=st.one_of(st.just(0.0), st.floats(0, 1e6, width=32)))
def test_content_weighting_is_a_finite_distribution_with_finite_gradients(mem, key, beta):
    beta = np.float32([beta])
    assert_weighting(content(mem, key, beta))
    assert_finite(_grads(addressing.content_weights, mem, key, beta))


@SETTINGS
@given(w=weightings((1, N)), gamma=st.floats(1, 1e4, width=32))
def test_sharpening_keeps_a_weighting_for_any_exponent(w, gamma):
    gamma = np.float32([gamma])
    assert_weighting(sharpen(w, gamma))
    assert_finite(_grads(addressing.sharpen, w, gamma))


# The model's beta and gamma are at most about 21 (softplus of controller outputs clipped to
# +-20); the whole pipeline is checked far beyond that. (Hypothesis found NaN gradients for an
# all-zero memory and key with beta 4.5e5 and gamma 359 when the cosine divided by |u| |v|.)
@SETTINGS
@given(mem=values((1, 1, N, M)), w_prev=weightings((1, H, N)), key=values((1, H, M)),
       beta=arrays(np.float32, (1, H), elements=st.floats(0, 1e6, width=32)),
       g=gates((1, H)), s=weightings((1, H, 2 * K + 1)),
       gamma=arrays(np.float32, (1, H), elements=st.floats(1, 1e4, width=32)))
@example(mem=np.zeros((1, 1, N, M), np.float32), w_prev=np.full((1, H, N), 1 / N, np.float32),
         key=np.zeros((1, H, M), np.float32), beta=np.full((1, H), 1e6, np.float32),
         g=np.full((1, H), 0.5, np.float32), s=np.float32([[[0, 1, 0]] * H]),
         gamma=np.full((1, H), 1e4, np.float32))
def test_the_whole_addressing_pipeline_gives_weightings_with_finite_gradients(
        mem, w_prev, key, beta, g, s, gamma):
    assert_weighting(address(mem, w_prev, key, beta, g, s, gamma))
    assert_finite(_grads(addressing.address, mem, w_prev, key, beta, g, s, gamma))


@SETTINGS
@given(mem=values((1, N, M)), w=weightings((1, H, N)))
def test_a_read_is_a_convex_combination_of_rows(mem, w):
    r = np.asarray(read(mem[:, None], w), np.float64)  # (1, H, M)
    assert_finite(r)
    bound = np.abs(mem).max(axis=1)[:, None, :]  # (1, 1, M): the largest entry per column
    assert np.all(np.abs(r) <= bound * (1 + 1e-5) + 1e-30)
    assert_finite(_grads(lambda m, w: memory.read(m[:, None], w), mem, w))


@SETTINGS
@given(mem=values((1, N, M), limit=1e36), w=weightings((1, H, N)), erase=gates((1, H, M)),
       add=values((1, H, M), limit=1e36))
def test_a_write_stays_finite_and_within_its_bounds(mem, w, erase, add):
    out = np.asarray(write(mem, w, erase, add), np.float64)
    assert_finite(out)
    # Erasing only shrinks entries towards 0, and each head adds at most |a| per entry.
    bound = np.abs(mem) + H * np.abs(add).max(axis=1)[:, None, :]
    assert np.all(np.abs(out) <= bound * (1 + 1e-5) + 1e-30)
    assert_finite(_grads(memory.write_heads, mem, w, erase, add))


@SETTINGS
@given(mem=st.sampled_from([0.0, 1e-30, 1e30]).map(lambda v: np.full((1, N, M), v, np.float32)),
       key=values((1, M)))
def test_a_uniform_or_empty_memory_gives_a_uniform_content_weighting(mem, key):
    # Every row is the same, so no row can be preferred, whatever the key and its strength.
    w = np.asarray(content(mem, key, np.float32([50.0])))
    np.testing.assert_allclose(w, 1.0 / N, rtol=1e-5)
