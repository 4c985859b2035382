"""Tests for diffmem.dnc_addressing and the DNC's access step: plain-loop numpy references,
the invariants deepmind/dnc's addressing tests check, numerical gradients and properties.

Expected values come from numpy loops written from the equations of SPEC section 3, never
from the functions under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from diffmem import DNC, DNCCell
from diffmem import dnc_addressing as da
from strategies import SETTINGS, assert_finite, gates, gradient, weightings

B, N, R = 2, 6, 2  # batch, memory rows, read heads: tiny, so compilation stays cheap
EPS = 1e-6  # the usage lift of SPEC section 3, step 2

# Jit-compiled once per argument shape: run eagerly, every operation inside would be
# compiled on its own, most of this file's time.
usage = jax.jit(da.usage)
allocation = jax.jit(da.allocation)
write_weights = jax.jit(da.write_weights)
precedence = jax.jit(da.precedence)
link = jax.jit(da.link)
directional_weights = jax.jit(da.directional_weights)
read_weights = jax.jit(da.read_weights)
sharpen_directional = jax.jit(da.sharpen_directional)


def weighting(rng, *shape):
    """A random weighting: positive, sums to 1 over the last axis."""
    w = rng.random(shape) + 0.05
    return w / w.sum(-1, keepdims=True)


def partial_weighting(rng, *shape):
    """A weighting scaled by a random gate: non-negative, sums to at most 1."""
    return weighting(rng, *shape) * rng.random(shape[:-1])[..., None]


def f32(x):
    return np.asarray(x, np.float32)


def one_hot(i, n):
    v = np.zeros(n, np.float32)
    v[i] = 1.0
    return v


# ---------------------------------------------------------------------------------------------
# numpy references: explicit loops over batch, heads and rows, from SPEC section 3


def np_usage(u_prev, ww_prev, free, wr_prev):
    """psi = prod_i (1 - f_i w^r_i);  u = (u_prev + w^w - u_prev w^w) psi."""
    nb, nr, nn = wr_prev.shape
    u = np.zeros((nb, nn))
    for b in range(nb):
        for n in range(nn):
            psi = 1.0
            for r in range(nr):
                psi *= 1.0 - free[b, r] * wr_prev[b, r, n]
            u[b, n] = (u_prev[b, n] + ww_prev[b, n] - u_prev[b, n] * ww_prev[b, n]) * psi
    return u


def np_allocation(u):
    """Rows visited by ascending lifted usage (ties: lowest index first); each gets its free
    share times the product of the usages of the rows visited before it."""
    nb, nn = u.shape
    a = np.zeros((nb, nn))
    for b in range(nb):
        lifted = [EPS + (1.0 - EPS) * float(u[b, n]) for n in range(nn)]
        free_list = sorted(range(nn), key=lambda n: (lifted[n], n))
        before = 1.0
        for n in free_list:
            a[b, n] = (1.0 - lifted[n]) * before
            before *= lifted[n]
    return a


def np_write_weights(alloc, content, g_a, g_w):
    nb, nn = alloc.shape
    w = np.zeros((nb, nn))
    for b in range(nb):
        for n in range(nn):
            w[b, n] = g_w[b] * (g_a[b] * alloc[b, n] + (1.0 - g_a[b]) * content[b, n])
    return w


def np_precedence(p_prev, ww):
    nb, nn = ww.shape
    p = np.zeros((nb, nn))
    for b in range(nb):
        total = sum(ww[b, n] for n in range(nn))
        for n in range(nn):
            p[b, n] = (1.0 - total) * p_prev[b, n] + ww[b, n]
    return p


def np_link(l_prev, p_prev, ww):
    nb, nn = ww.shape
    out = np.zeros((nb, nn, nn))
    for b in range(nb):
        for i in range(nn):
            for j in range(nn):
                if i != j:
                    out[b, i, j] = ((1.0 - ww[b, i] - ww[b, j]) * l_prev[b, i, j]
                                    + ww[b, i] * p_prev[b, j])
    return out


def np_directional(lnk, wr_prev):
    """forward_i = L w_i (rows written after those read), backward_i = L^T w_i."""
    nb, nr, nn = wr_prev.shape
    fwd, bwd = np.zeros((nb, nr, nn)), np.zeros((nb, nr, nn))
    for b in range(nb):
        for r in range(nr):
            for i in range(nn):
                for j in range(nn):
                    fwd[b, r, i] += lnk[b, i, j] * wr_prev[b, r, j]
                    bwd[b, r, i] += lnk[b, j, i] * wr_prev[b, r, j]
    return fwd, bwd


def np_read_weights(bwd, content, fwd, modes):
    """Modes ordered (backward, content, forward)."""
    nb, nr, nn = bwd.shape
    w = np.zeros((nb, nr, nn))
    for b in range(nb):
        for r in range(nr):
            for n in range(nn):
                w[b, r, n] = (modes[b, r, 0] * bwd[b, r, n] + modes[b, r, 1] * content[b, r, n]
                              + modes[b, r, 2] * fwd[b, r, n])
    return w


def np_sharpen_directional(d, s):
    """d^s / sum_j d_j^s * m / (m + 1e-6), m = sum_j d_j (d > 0)."""
    nb, nr, nn = d.shape
    out = np.zeros_like(d)
    for b in range(nb):
        for r in range(nr):
            z = sum(d[b, r, n] ** s[b, r] for n in range(nn))
            m = d[b, r].sum()
            for n in range(nn):
                out[b, r, n] = d[b, r, n] ** s[b, r] / z * m / (m + 1e-6)
    return out


def random_link(rng, steps=4):
    """A link matrix and precedence reached by ``steps`` numpy-reference writes."""
    lnk, p = np.zeros((B, N, N)), np.zeros((B, N))
    for _ in range(steps):
        ww = partial_weighting(rng, B, N)
        lnk, p = np_link(lnk, p, ww), np_precedence(p, ww)
    return lnk, p


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# each function against its reference


@pytest.mark.parametrize("seed", [0, 1])
def test_usage_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    args = (rng.random((B, N)), partial_weighting(rng, B, N), rng.random((B, R)),
            partial_weighting(rng, B, R, N))
    close(usage(*map(f32, args)), np_usage(*args))


@pytest.mark.parametrize("seed", [0, 1])
def test_allocation_matches_numpy(seed):
    u = np.random.default_rng(seed).random((B, N))
    close(allocation(f32(u)), np_allocation(u))


def test_allocation_breaks_ties_toward_the_lowest_row_like_numpy():
    # Several exact ties (and rows at 0 and 1): the free list must be a stable sort.
    u = np.array([[0.5, 0.0, 0.5, 1.0, 0.0, 0.5], [0.3, 0.3, 0.3, 0.3, 0.9, 0.0]])
    close(allocation(f32(u)), np_allocation(u))


def test_write_weights_match_numpy():
    rng = np.random.default_rng(0)
    args = (np_allocation(rng.random((B, N))), weighting(rng, B, N), rng.random(B), rng.random(B))
    close(write_weights(*map(f32, args)), np_write_weights(*args))


def test_precedence_matches_numpy():
    rng = np.random.default_rng(0)
    _, p_prev = random_link(rng)
    ww = partial_weighting(rng, B, N)
    close(precedence(f32(p_prev), f32(ww)), np_precedence(p_prev, ww))


@pytest.mark.parametrize("seed", [0, 1])
def test_link_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    l_prev, p_prev = random_link(rng)
    ww = partial_weighting(rng, B, N)
    out = link(f32(l_prev), f32(p_prev), f32(ww))
    close(out, np_link(l_prev, p_prev, ww))
    assert np.all(np.diagonal(np.asarray(out), axis1=-2, axis2=-1) == 0.0)


def test_directional_weights_match_numpy():
    rng = np.random.default_rng(0)
    lnk, _ = random_link(rng)
    wr_prev = partial_weighting(rng, B, R, N)
    fwd, bwd = directional_weights(f32(lnk), f32(wr_prev))
    expected_fwd, expected_bwd = np_directional(lnk, wr_prev)
    close(fwd, expected_fwd)
    close(bwd, expected_bwd)


def test_read_weights_match_numpy_with_modes_backward_content_forward():
    rng = np.random.default_rng(0)
    # Three clearly different weightings, so that any swap of the modes shows.
    args = (weighting(rng, B, R, N), weighting(rng, B, R, N), weighting(rng, B, R, N),
            weighting(rng, B, R, 3))
    close(read_weights(*map(f32, args)), np_read_weights(*args))


def test_read_weights_follow_each_mode_alone():
    rng = np.random.default_rng(1)
    bwd, content, fwd = (f32(weighting(rng, B, R, N)) for _ in range(3))
    for mode, expected in enumerate((bwd, content, fwd)):
        modes = np.broadcast_to(one_hot(mode, 3), (B, R, 3))
        close(read_weights(bwd, content, fwd, modes), expected)


def test_sharpen_directional_matches_numpy():
    rng = np.random.default_rng(0)
    d, s = partial_weighting(rng, B, R, N), rng.uniform(1.0, 5.0, (B, R))
    close(sharpen_directional(f32(d), f32(s)), np_sharpen_directional(d, s))


# ---------------------------------------------------------------------------------------------
# invariants (deepmind/dnc's addressing tests)


def test_link_and_precedence_stay_in_bounds_over_many_random_writes():
    rng = np.random.default_rng(0)
    lnk, p = np.zeros((B, N, N), np.float32), np.zeros((B, N), np.float32)
    for t in range(10):
        if t % 3 == 2:  # a full one-hot write: the boundary case of sum(w^w) = 1
            ww = np.stack([one_hot(rng.integers(N), N) for _ in range(B)])
        else:
            ww = f32(partial_weighting(rng, B, N))
        lnk, p = link(lnk, p, ww), precedence(p, ww)
        l_np, p_np = np.asarray(lnk), np.asarray(p)
        assert np.all(l_np >= 0) and np.all(l_np <= 1)
        assert np.all(np.diagonal(l_np, axis1=-2, axis2=-1) == 0.0)
        assert np.all(l_np.sum(-1) <= 1 + 1e-6)  # rows
        assert np.all(l_np.sum(-2) <= 1 + 1e-6)  # columns
        assert np.all(p_np >= 0) and np.all(p_np.sum(-1) <= 1 + 1e-6)


def test_link_points_from_each_row_to_the_row_written_next():
    lnk, p = np.zeros((1, N, N), np.float32), np.zeros((1, N), np.float32)
    for row in (2, 4):
        ww = one_hot(row, N)[None]
        lnk, p = link(lnk, p, ww), precedence(p, ww)
    assert float(lnk[0, 4, 2]) == pytest.approx(1.0)
    fwd, bwd = directional_weights(lnk, np.stack([one_hot(2, N), one_hot(4, N)])[None])
    close(fwd[0, 0], one_hot(4, N))  # forward from row 2: the row written after it
    close(bwd[0, 1], one_hot(2, N))  # backward from row 4: the row written before it
    close(fwd[0, 1], np.zeros(N))  # nothing was written after row 4


def test_usage_stays_within_zero_and_one():
    rng = np.random.default_rng(0)
    u = np.zeros((B, N), np.float32)
    for _ in range(6):
        u = usage(u, f32(partial_weighting(rng, B, N)), f32(rng.random((B, R))),
                  f32(partial_weighting(rng, B, R, N)))
        assert np.all(np.asarray(u) >= 0) and np.all(np.asarray(u) <= 1)


def test_usage_is_one_after_a_full_write_to_a_row():
    rng = np.random.default_rng(0)
    ww = np.stack([one_hot(1, N), one_hot(4, N)])
    u = usage(f32(rng.random((B, N))), ww, np.zeros((B, R), np.float32),
              f32(partial_weighting(rng, B, R, N)))
    np.testing.assert_allclose(np.asarray(u)[[0, 1], [1, 4]], 1.0, atol=1e-6)


def test_usage_is_zero_after_a_full_free_and_other_rows_keep_theirs():
    rng = np.random.default_rng(0)
    u_prev = f32(rng.random((B, N)))
    wr_prev = np.zeros((B, R, N), np.float32)
    wr_prev[:, 0, 3] = 1.0  # head 0 read row 3 alone; head 1 read nothing
    free = np.array([[1.0, 0.7], [1.0, 0.0]], np.float32)
    u = np.asarray(usage(u_prev, np.zeros((B, N), np.float32), free, wr_prev))
    np.testing.assert_allclose(u[:, 3], 0.0, atol=1e-6)
    others = [n for n in range(N) if n != 3]
    np.testing.assert_allclose(u[:, others], u_prev[:, others], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_least_used_row_gets_the_largest_allocation(seed):
    u = np.random.default_rng(seed).random((B, N)).astype(np.float32)
    a = np.asarray(allocation(u))
    np.testing.assert_array_equal(np.argmax(a, -1), np.argmin(u, -1))
    assert np.all(a >= 0) and np.all(a.sum(-1) <= 1 + 1e-6)
    # Allocation falls as usage rises.
    for b in range(B):
        order = np.argsort(u[b])
        assert np.all(np.diff(a[b, order]) <= 0)


def test_a_fully_used_memory_allocates_nothing():
    a = np.asarray(allocation(np.ones((B, N), np.float32)))
    assert np.all(a >= 0)
    np.testing.assert_allclose(a, 0.0, atol=1e-6)


def test_an_unused_memory_allocates_everything_to_the_first_row():
    a = np.asarray(allocation(np.zeros((B, N), np.float32)))
    np.testing.assert_allclose(a[:, 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(a[:, 1:], 0.0, atol=1e-5)
    # The 1e-6 lift: row j gets about 1e-6^j, not exactly 0 (relative comparison).
    np.testing.assert_allclose(a, np_allocation(np.zeros((B, N))), rtol=1e-4, atol=0)


def test_a_single_free_row_gets_everything():
    u = np.ones((B, N), np.float32)
    u[0, 3] = u[1, 5] = 0.0
    a = np.asarray(allocation(u))
    np.testing.assert_allclose(a, np.stack([one_hot(3, N), one_hot(5, N)]), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# numerical gradient checks in float64


def f64(x):
    x = jnp.asarray(x, jnp.float64)
    assert x.dtype == jnp.float64, "float64 is off: use the x64 fixture"
    return x


def distinct_usages(rng):
    """Usages at least 0.1 apart (in a random order): a finite-difference step cannot
    reorder the free list, so allocation is smooth around them."""
    return np.stack([rng.permutation(np.linspace(0.05, 0.95, N)) for _ in range(B)])


def test_allocation_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    check_grads(jax.jit(da.allocation), (f64(distinct_usages(rng)),), order=1, modes=["rev"])


def test_sharpen_directional_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    args = (f64(partial_weighting(rng, B, R, N)), f64(rng.uniform(1.0, 5.0, (B, R))))
    check_grads(jax.jit(da.sharpen_directional), args, order=1, modes=["rev"])


def addressing_step(u_prev, ww_prev, free, wr_prev, c_w, g_a, g_w, l_prev, p_prev, c_r, modes):
    """Every addressing function of one DNC step, chained in SPEC order (content fixed)."""
    u = da.usage(u_prev, ww_prev, free, wr_prev)
    ww = da.write_weights(da.allocation(u), c_w, g_a, g_w)
    lnk = da.link(l_prev, p_prev, ww)
    fwd, bwd = da.directional_weights(lnk, wr_prev)
    return da.read_weights(bwd, c_r, fwd, modes), da.precedence(p_prev, ww), u


def test_the_chained_addressing_step_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(0)
    l_prev, p_prev = random_link(rng)
    # No free gates or writes at t-1, so u = u_prev stays distinct and the sort fixed.
    args = (distinct_usages(rng), np.zeros((B, N)), np.zeros((B, R)),
            partial_weighting(rng, B, R, N), weighting(rng, B, N), rng.random(B),
            rng.random(B), l_prev, p_prev, weighting(rng, B, R, N), weighting(rng, B, R, 3))
    check_grads(jax.jit(addressing_step), tuple(map(f64, args)), order=1, modes=["rev"])


def tiny_cell(**switches):
    return DNCCell(3, 2, controller_size=4, memory_rows=4, memory_width=3, read_heads=2,
                   rngs=nnx.Rngs(0), **switches)


ALL_SWITCHES = dict(content_masking=True, deallocation=True, link_sharpness=True)


def test_dnc_cell_gradients_wrt_the_inputs_match_finite_differences(x64):
    # With the three switches on, a step runs every operation of the paper's step as well as
    # the refinements' (one compilation instead of two: the suite's time is compilation).
    # Three steps: the link's decay of L_{t-1}, the free gates and a non-trivial free list all
    # take part from the second and third steps on.
    # The modules build float32 parameters and states: cast them, or float64 would be lost.
    graphdef, params, rest = nnx.split(tiny_cell(**ALL_SWITCHES), nnx.Param, ...)
    params = jax.tree.map(f64, params)

    def outputs(xs):  # (B, T, 3) -> (T, B, 2)
        cell = nnx.merge(graphdef, params, rest)

        def body(state, x):
            state, y, _ = cell.step(state, x)
            return state, y

        state = jax.tree.map(f64, cell.initial_state(xs.shape[0]))
        return jax.lax.scan(body, state, jnp.swapaxes(xs, 0, 1))[1]

    xs = f64(np.random.default_rng(0).normal(size=(B, 3, 3)))
    outputs = jax.jit(outputs)
    assert outputs(xs).dtype == jnp.float64
    check_grads(outputs, (xs,), order=1, modes=["rev"])


# ---------------------------------------------------------------------------------------------
# an all-zero memory: the first steps of a fresh DNC


@pytest.mark.parametrize("switches", [{}, ALL_SWITCHES], ids=["paper", "all-switches"])
def test_a_fresh_dnc_on_its_zero_memory_gives_finite_outputs_and_gradients(switches):
    model = DNC(3, 2, controller_size=4, memory_rows=4, memory_width=3, read_heads=2,
                rngs=nnx.Rngs(0), **switches)

    @nnx.jit
    def logits_and_grads(model, xs):
        def loss(model):
            logits, state = model(xs)
            return jnp.sum(logits * jnp.linspace(0.5, 1.5, logits.size).reshape(logits.shape)), (
                logits, state)

        return nnx.grad(loss, has_aux=True)(model)

    # All-zero inputs on the initial state: every key, vector and the memory are zero, the
    # content lookups compare zero vectors with zero vectors.
    for xs in (np.zeros((B, 3, 3), np.float32),
               np.random.default_rng(0).normal(size=(B, 3, 3)).astype(np.float32)):
        grads, (logits, state) = logits_and_grads(model, xs)
        assert logits.shape == (B, 3, 2)
        assert_finite((logits, state))
        assert_finite(grads)
        assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads))


# ---------------------------------------------------------------------------------------------
# properties (hypothesis): for any valid usages, weightings and gates, including exact zeros,
# one-hot rows and gates at 0 and 1, every output is finite and within its bounds

PN, PR, PT = 6, 2, 4  # the properties' memory rows, read heads, write steps


def partial_weightings(shape):
    """Weightings scaled by gates: sums at most 1, often exactly 0 or 1."""
    return st.tuples(weightings(shape), gates(shape[:-1])).map(lambda wg: wg[0] * wg[1][..., None])


usages = st.one_of(
    gates((1, PN)),
    # Ties, unused and fully used rows.
    arrays(np.float32, (1, PN), elements=st.sampled_from([0.0, 0.5, 1.0])),
)


@SETTINGS
@given(u_prev=usages, ww_prev=partial_weightings((1, PN)), free=gates((1, PR)),
       wr_prev=partial_weightings((1, PR, PN)))
def test_usage_is_finite_and_within_zero_and_one(u_prev, ww_prev, free, wr_prev):
    u = np.asarray(usage(u_prev, ww_prev, free, wr_prev))
    assert np.all(np.isfinite(u)), u
    assert np.all(u >= 0) and np.all(u <= 1 + 1e-6), u


@SETTINGS
@given(u=usages)
@example(u=np.zeros((1, PN), np.float32))
@example(u=np.ones((1, PN), np.float32))
def test_allocation_is_finite_non_negative_and_sums_to_at_most_one(u):
    a = np.asarray(allocation(u), np.float64)
    assert np.all(np.isfinite(a)) and np.all(a >= 0), a
    assert a.sum() <= 1 + 1e-5, a
    assert_finite(gradient(da.allocation)((u,)))


@SETTINGS
@given(ww=partial_weightings((PT, 1, PN)), wr_prev=partial_weightings((1, PR, PN)))
def test_link_stays_in_bounds_for_any_sequence_of_writes(ww, wr_prev):
    lnk, p = np.zeros((1, PN, PN), np.float32), np.zeros((1, PN), np.float32)
    for w in ww:
        lnk, p = link(lnk, p, w), precedence(p, w)
        l_np, p_np = np.asarray(lnk, np.float64), np.asarray(p, np.float64)
        assert np.all(np.isfinite(l_np)) and np.all(l_np >= 0) and np.all(l_np <= 1), l_np
        assert np.all(np.diagonal(l_np, axis1=-2, axis2=-1) == 0), l_np
        assert np.all(l_np.sum(-1) <= 1 + 1e-5) and np.all(l_np.sum(-2) <= 1 + 1e-5), l_np
        assert np.all(p_np >= 0) and np.all(p_np.sum(-1) <= 1 + 1e-5), p_np
    # Directional weightings of a valid link keep a read weighting's bound.
    for d in directional_weights(lnk, wr_prev):
        d = np.asarray(d, np.float64)
        assert np.all(d >= 0) and np.all(d.sum(-1) <= 1 + 1e-5), d


@SETTINGS
@given(bwd=partial_weightings((1, PR, PN)), content=weightings((1, PR, PN)),
       fwd=partial_weightings((1, PR, PN)), modes=weightings((1, PR, 3)))
def test_read_weights_sum_to_at_most_one(bwd, content, fwd, modes):
    w = np.asarray(read_weights(bwd, content, fwd, modes), np.float64)
    assert np.all(np.isfinite(w)) and np.all(w >= 0), w
    assert np.all(w.sum(-1) <= 1 + 1e-5), w


# oneplus of an interface clipped to +-20 gives exponents up to about 21; checked far beyond.
@SETTINGS
@given(d=partial_weightings((1, PR, PN)),
       s=arrays(np.float32, (1, PR), elements=st.floats(1, 1e4, width=32)))
@example(d=np.zeros((1, PR, PN), np.float32), s=np.full((1, PR), 21.0, np.float32))
def test_sharpen_directional_normalises_and_leaves_an_empty_weighting_empty(d, s):
    out = np.asarray(sharpen_directional(d, s), np.float64)
    assert np.all(np.isfinite(out)) and np.all(out >= 0), out
    total = out.sum(-1)
    assert np.all(total <= 1 + 1e-5), total
    # total = m / (m + 1e-6), m = sum(d): 1 unless there is almost no mass, whatever s is.
    mass = d.astype(np.float64).sum(-1)
    np.testing.assert_allclose(total, mass / (mass + 1e-6), rtol=1e-4, atol=1e-6)
    assert_finite(gradient(da.sharpen_directional)((d, s)))


def test_sharpening_a_link_that_rounds_below_zero_stays_finite():
    # A content write weighting split over two rows can sum to 1 + 1 ulp, so 1 - w_i - w_j
    # rounds below 0 and a link value, and so a forward weighting, comes out a few ulps
    # negative; one such entry must not turn the head's weighting into NaN.
    d = jnp.array([[[-1.2e-7, 0.5, 0.2]]])
    for s in (2.0, 21.0):
        out, g = jax.value_and_grad(
            lambda d, s=s: da.sharpen_directional(d, jnp.array([[s]])).sum())(d)
        assert np.isfinite(float(out)) and np.all(np.isfinite(np.asarray(g)))


# ---------------------------------------------------------------------------------------------
# the hand-written gradients, and the sparse link matrix


def formula_allocation(u):
    """Allocation by the pairwise free list, differentiated by JAX (no hand-written rule)."""
    u = EPS + (1.0 - EPS) * u
    before = (u[..., None, :] < u[..., :, None]) | (
        (u[..., None, :] == u[..., :, None]) & (np.arange(N)[None, :] < np.arange(N)[:, None]))
    return (1.0 - u) * jnp.exp(jnp.einsum("...ij,...j->...i", before.astype(u.dtype),
                                          jnp.log(u)))


@pytest.mark.parametrize("way", ["ranked", "sorted"])
def test_allocations_written_out_gradient_equals_automatic_differentiation(x64, way):
    # Both ways allocation is computed: ranking the rows pairwise (below da.SORT_FROM_ENTRIES)
    # and sorting them.
    allocate = {"ranked": da._ranked_allocation, "sorted": da._sorted_allocation}[way]
    rng = np.random.default_rng(0)
    # Ties, an unused row and a fully used one included: the order of equal rows is fixed.
    u = rng.random((B, N))
    u[0, 1] = u[0, 4] = 0.3
    u[1, 0], u[1, 2] = 0.0, 1.0
    cotangent = f64(rng.normal(size=(B, N)))
    value, vjp = jax.vjp(allocate, f64(u))
    expected_value, expected_vjp = jax.vjp(formula_allocation, f64(u))
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(vjp(cotangent)[0], expected_vjp(cotangent)[0], rtol=1e-10,
                               atol=1e-9)


@pytest.mark.parametrize("shape, sorts", [((1, 127), False), ((1, 128), True),
                                          ((4, 63), False), ((4, 64), True)])
def test_allocation_sorts_from_sort_from_entries_and_ranks_below(monkeypatch, shape, sorts):
    # The choice counts the pairwise comparison's entries, B * N * N, batch included.
    monkeypatch.setattr(da, "SORT_FROM_ENTRIES", 4 * 64 * 64)
    u = jnp.asarray(np.random.default_rng(1).random(shape), jnp.float32)
    way, other = ((da._sorted_allocation, da._ranked_allocation) if sorts
                  else (da._ranked_allocation, da._sorted_allocation))
    # The same program as the chosen way, bit for bit; the other way rounds differently.
    np.testing.assert_array_equal(jax.jit(allocation)(u), jax.jit(way)(u))
    np.testing.assert_allclose(jax.jit(allocation)(u), jax.jit(other)(u), rtol=1e-4, atol=1e-6)


def test_link_and_directions_equals_link_then_directions_in_values_and_gradients(x64):
    rng = np.random.default_rng(1)
    l_prev, p_prev = random_link(rng)
    args = tuple(map(f64, (l_prev, p_prev, partial_weighting(rng, B, N),
                           partial_weighting(rng, B, R, N))))

    def composed(lnk, p, ww, wr):
        new = da.link(lnk, p, ww)
        return (new, *da.directional_weights(new, wr))

    values, vjp = jax.vjp(da.link_and_directions, *args)
    expected_values, expected_vjp = jax.vjp(composed, *args)
    cotangents = tuple(f64(rng.normal(size=v.shape)) for v in values)
    for got, want in zip(values + vjp(cotangents), expected_values + expected_vjp(cotangents)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def np_sparse_link(forward, backward, p_prev, ww, k):
    """The sparse link rule on dense matrices: ``forward`` holds the entries kept for each
    row of L, ``backward`` those kept for each column. Both decay by 1 - w_i - w_j and gain
    w_i p_j (w and p cut to their K largest, diagonal 0); each row of ``forward`` the write
    reached, and each column of ``backward`` the precedence reached, keeps its K largest."""
    forward, backward = forward.copy(), backward.copy()
    for b in range(ww.shape[0]):
        w_rows = np.argsort(-ww[b])[:k]
        p_cols = np.argsort(-p_prev[b])[:k]
        w = np.zeros(N)
        w[w_rows] = ww[b, w_rows]
        p = np.zeros(N)
        p[p_cols] = p_prev[b, p_cols]
        for side in (forward, backward):
            for i in range(N):
                for j in range(N):
                    side[b, i, j] = ((1 - w[i] - w[j]) * side[b, i, j] + w[i] * p[j]
                                     if i != j else 0.0)
        for i in w_rows:
            forward[b, i, np.argsort(-forward[b, i])[k:]] = 0.0
        for j in p_cols:
            backward[b, np.argsort(-backward[b, :, j])[k:], j] = 0.0
    return forward, backward


def sparse_steps(ww, wr, k):
    """Run the sparse link over ``ww`` (T, B, N) and ``wr`` (T, B, R, N), jit-compiled once
    per shape: the final link, and each step's forward and backward weightings."""
    def step(carry, xs):
        lnk, p = carry
        w, r = xs
        lnk = da.sparse_link(lnk, p, w)
        return (lnk, da.precedence(p, w)), da.sparse_directional_weights(lnk, r)

    empty = da.empty_sparse_link(ww.shape[1], N, k, ww.dtype)
    (lnk, _), directions = jax.lax.scan(step, (empty, jnp.zeros_like(ww[0])), (ww, wr))
    return lnk, directions


sparse_steps = jax.jit(sparse_steps, static_argnums=2)


def dense_steps(ww, wr):
    def step(carry, xs):
        lnk, p = carry
        w, r = xs
        lnk = da.link(lnk, p, w)
        return (lnk, da.precedence(p, w)), da.directional_weights(lnk, r)

    zeros = jnp.zeros_like(ww[0])
    return jax.lax.scan(step, (zeros[..., None] * zeros[..., None, :], zeros), (ww, wr))[1]


def random_writes(rng, steps=6):
    return (f64(np.stack([partial_weighting(rng, B, N) for _ in range(steps)])),
            f64(np.stack([weighting(rng, B, R, N) for _ in range(steps)])))


def test_the_sparse_link_with_k_equal_to_n_is_the_dense_link_in_values_and_gradients(x64):
    ww, wr = random_writes(np.random.default_rng(2))
    lnk, directions = sparse_steps(ww, wr, N)
    expected = dense_steps(ww, wr)
    np.testing.assert_allclose(da.dense_link(lnk), np_forward_link(ww), atol=1e-14)
    for got, want in zip(directions, expected):
        np.testing.assert_allclose(got, want, atol=1e-14)

    def loss(steps):
        return lambda ww, wr: sum(jnp.sum(jnp.sin(3.0 * d)) for d in steps(ww, wr))

    got = jax.grad(loss(lambda ww, wr: sparse_steps(ww, wr, N)[1]), (0, 1))(ww, wr)
    want = jax.grad(loss(dense_steps), (0, 1))(ww, wr)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def np_forward_link(ww):
    lnk, p = np.zeros((B, N, N)), np.zeros((B, N))
    for w in np.asarray(ww):
        lnk, p = np_link(lnk, p, w), np_precedence(p, w)
    return lnk


@pytest.mark.parametrize("k", [1, 3])
def test_the_sparse_link_keeps_the_k_largest_entries_of_each_row_like_numpy(x64, k):
    ww, wr = random_writes(np.random.default_rng(3 + k))
    lnk, (forward, backward) = sparse_steps(ww, wr, k)
    fwd, bwd, p = np.zeros((B, N, N)), np.zeros((B, N, N)), np.zeros((B, N))
    for w in np.asarray(ww):
        fwd, bwd = np_sparse_link(fwd, bwd, p, w, k)
        p = np_precedence(p, w)
    np.testing.assert_allclose(da.dense_link(lnk), fwd, atol=1e-14)
    held = np.asarray(lnk.backward_value)
    dense_backward = np.zeros((B, N, N))
    for b in range(B):
        for j in range(N):
            dense_backward[b, np.asarray(lnk.backward_index)[b, j], j] += held[b, j]
    np.testing.assert_allclose(dense_backward, bwd, atol=1e-14)
    last_reads = np.asarray(wr[-1])
    close(forward[-1], np_directional(fwd, last_reads)[0])
    close(backward[-1], np_directional(bwd, last_reads)[1])
    for index in (lnk.forward_index, lnk.backward_index):
        index = np.asarray(index)
        assert all(len(set(row)) == k for row in index.reshape(-1, k)), "an index held twice"
    assert np.count_nonzero(fwd, axis=-1).max() <= k


def test_a_row_never_holds_an_index_twice_even_when_decayed_values_round_below_zero():
    # Row 0 holds entries a rounding below 0; the write and the precedence both point at row
    # 0, so the update offers row 0 a self-link, which must not take a slot.
    k = 2
    link = da.empty_sparse_link(1, 4, k)
    link = link._replace(forward_index=link.forward_index.at[0, 0].set(jnp.array([1, 2])),
                         forward_value=jnp.full((1, 4, k), -1e-9))
    w = jnp.array([[0.9, 0.05, 0.05, 0.0]])
    p = jnp.array([[0.8, 0.1, 0.1, 0.0]])
    out = jax.jit(da.sparse_link)(link, p, w)
    for index in (out.forward_index, out.backward_index):
        rows = np.asarray(index)[0]
        assert all(len(set(row)) == k for row in rows), rows
    assert 0 not in np.asarray(out.forward_index)[0, 0]  # no self-link in row 0


def test_the_sparse_link_under_vmap_gives_each_members_own_update(x64):
    # A population vmaps the update over its members.
    rng = np.random.default_rng(7)
    ww, wr = random_writes(rng, steps=3)
    members = jnp.stack([ww, ww[::-1]])
    links = jax.vmap(lambda w: sparse_steps(w, wr, 2)[0])(members)
    for m in range(2):
        alone = sparse_steps(members[m], wr, 2)[0]
        np.testing.assert_allclose(da.dense_link(jax.tree.map(lambda a, m=m: a[m], links)),
                                   da.dense_link(alone), atol=1e-14)
