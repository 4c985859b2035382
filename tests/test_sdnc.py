"""The sparse DNC (diffmem.sdnc): with K = K_L = N it is the DNC in values and gradients; its
deferred link decay, sparse usage and precedence against the DNC's dense equations; the
layer's protocol, errors and place in the registry. Numerics in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import diffmem
from conftest import check_resizable_run, tiny
from diffmem import dnc_addressing as da
from diffmem import sdnc as sd
from diffmem.config import ConfigError, resolve, validate
from diffmem.dnc import DNC
from diffmem.sdnc import SDNC, SDNCCell

B, T, C, W, R = 2, 8, 4, 5, 2
LENGTHS = jnp.asarray([8, 3])
REFINEMENTS = dict(content_masking=True, deallocation=True, link_sharpness=True)


def _inputs(seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, C)))


def test_with_k_equal_to_n_it_is_the_dnc(x64):
    # With the three refinements, so that the masked searches, de-allocation and sharpening
    # are checked too (the paper's DNC is the same code with them switched off).
    n = 6
    sizes = dict(controller_size=8, read_heads=R, memory_rows=n, memory_width=W,
                 param_dtype=jnp.float64, **REFINEMENTS)
    dnc = DNC(C, 3, rngs=nnx.Rngs(0), **sizes)
    sdnc = SDNC(C, 3, read_topk=n, link_topk=n, usage_lift=1e-6, rngs=nnx.Rngs(1),
                **sizes)  # the DNC's lift
    nnx.update(sdnc, nnx.state(dnc))  # the same parameters at the same paths
    inputs = _inputs()

    def run(model):
        def loss(params, inputs):
            ys, final = nnx.merge(nnx.graphdef(model), params)(inputs, seq_lengths=LENGTHS)
            return (jnp.sin(ys).sum() + (final.memory ** 2).sum() + final.usage.sum()
                    + 0.3 * final.reads.sum()), (ys, final)
        return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(nnx.state(model), inputs)

    (got, (ys, final)), got_grads = run(sdnc)
    (want, (want_ys, want_final)), want_grads = run(dnc)
    np.testing.assert_allclose(ys, want_ys, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(final.usage, want_final.usage, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(sd.dense_link(final.link, final.keep_log), want_final.link,
                               rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for g, w in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads)):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-12)


def test_allocation_gives_the_rows_after_a_fresh_one_nothing_unless_lifted(x64):
    # Unlifted, a write to the least used of fresh rows touches no other (so each write uses
    # up one fresh row); with the DNC's lift the next K - 1 get 1e-6, 1e-12, 1e-18.
    usage = jnp.asarray([[0.9, 0.0, 0.5, 0.0, 0.0, 0.0]])
    rows, a = sd.sparse_allocation(usage, 4)
    np.testing.assert_array_equal(rows, [[1, 3, 4, 5]])
    np.testing.assert_array_equal(a, [[1.0, 0.0, 0.0, 0.0]])
    grads = jax.grad(lambda u: (sd.sparse_allocation(u, 4)[1] * jnp.arange(1, 5)).sum())(usage)
    assert np.all(np.isfinite(grads)), grads  # a product over the rows: no logarithm of 0
    _, lifted = sd.sparse_allocation(usage, 4, lift=1e-6)
    np.testing.assert_allclose(lifted, [[1 - 1e-6, 1e-6, 1e-12, 1e-18]], rtol=1e-5)
    # ... and as the DNC's allocation does over all rows (K = N).
    rows, a = sd.sparse_allocation(usage, 6, lift=1e-6)
    np.testing.assert_allclose(jnp.zeros(6).at[rows[0]].set(a[0]), da.allocation(usage)[0],
                               rtol=1e-10)  # a product here, logarithms there


def _sparse_weightings(rng, steps, n, j):
    """Write weightings over ``j`` rows of ``n`` a step, some rows listed twice, summing to
    less than 1 (0.999), one row taking about 0.997 of it every other step."""
    index = rng.integers(0, n, size=(steps, 1, j)).astype(np.int32)
    index[:, :, -1] = index[:, :, 0]  # a row listed twice
    raw = rng.random(size=(steps, 1, j))
    raw[::2, :, 1] = 1e3
    weights = raw / raw.sum(-1, keepdims=True) * 0.999
    return jnp.asarray(index), jnp.asarray(weights)


def test_the_deferred_link_decay_equals_the_dnc_link_in_values_and_gradients(x64):
    # K_L = N keeps every entry, so the sparse link must be the dense one exactly, while the
    # writes cover 4 rows of 12: most rows' links decay through keep_log, not rebuilt.
    n, j, steps = 12, 4, 7
    w_index, w_values = _sparse_weightings(np.random.default_rng(0), steps, n, j)

    def sparse(w_values):
        cell = SDNCCell(2, 2, memory_rows=n, memory_width=3, read_topk=2, link_topk=n,
                        param_dtype=jnp.float64, rngs=nnx.Rngs(0))
        state = cell.initial_state(1)
        link, keep = state.link, state.keep_log
        p_index, p = state.precedence_index, state.precedence
        for t in range(steps):
            link, keep = sd.sparse_link(link, keep, p_index, p, w_index[t], w_values[t])
            p_index, p = sd.sparse_precedence(p_index, p, w_index[t], w_values[t])
        return sd.dense_link(link, keep), sd.spread(p_index, p, n)

    def dense(w_values):
        link, p = jnp.zeros((1, n, n)), jnp.zeros((1, n))
        for t in range(steps):
            w = sd.spread(w_index[t], w_values[t], n)
            link = da.link(link, p, w)
            p = da.precedence(p, w)
        return link, p

    for got, want in zip(jax.jit(sparse)(w_values), jax.jit(dense)(w_values)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    probe = jnp.asarray(np.random.default_rng(1).normal(size=(n, n)))

    def grad(run):
        return jax.jit(jax.grad(lambda w: (run(w)[0][0] * probe).sum() + (run(w)[1] ** 2).sum()))

    np.testing.assert_allclose(grad(sparse)(w_values), grad(dense)(w_values), rtol=1e-8,
                               atol=1e-12)


def test_usage_and_directions_on_sparse_weightings_equal_the_dnc_equations(x64):
    n, rng = 10, np.random.default_rng(2)
    w_index, w_values = _sparse_weightings(rng, 1, n, 4)
    r_index = jnp.asarray(rng.integers(0, n, size=(1, R, 5)).astype(np.int32))
    r_values = jnp.asarray(rng.random(size=(1, R, 5)) / 5)
    usage = jnp.asarray(rng.random(size=(1, n)))
    free = jnp.asarray(rng.random(size=(1, R)))
    got, _, _ = sd.sparse_usage(usage, w_index[0], w_values[0], free, r_index, r_values)
    want = da.usage(usage, sd.spread(w_index[0], w_values[0], n), free,
                    sd.spread(r_index, r_values, n))
    np.testing.assert_allclose(got, want, rtol=1e-12)

    # A link of a few steps, followed from the read weightings with K_L = N.
    cell = SDNCCell(2, 2, memory_rows=n, memory_width=3, read_topk=2, link_topk=n,
                    param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    state = cell.initial_state(1)
    index, values = _sparse_weightings(rng, 5, n, 4)

    @jax.jit
    def five_steps(state):
        link, keep, p_index, p = (state.link, state.keep_log, state.precedence_index,
                                  state.precedence)
        for t in range(5):
            link, keep = sd.sparse_link(link, keep, p_index, p, index[t], values[t])
            p_index, p = sd.sparse_precedence(p_index, p, index[t], values[t])
        return link, keep

    link, keep = five_steps(state)
    (f_index, f), (b_index, b) = sd.sparse_directions(link, keep, r_index, r_values, n)
    want_f, want_b = da.directional_weights(sd.dense_link(link, keep),
                                            sd.spread(r_index, r_values, n))
    np.testing.assert_allclose(sd.spread(f_index, f, n), want_f, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sd.spread(b_index, b, n), want_b, rtol=1e-10, atol=1e-14)
    # With K_L = 2 each keeps its 2 largest entries.
    (k_index, k_values), _ = sd.sparse_directions(link, keep, r_index, r_values, 2)
    np.testing.assert_allclose(k_values, -jnp.sort(-want_f, -1)[..., :2], rtol=1e-10)


def test_repeated_candidates_are_merged_alike_by_pairs_and_through_a_buffer(x64):
    rng = np.random.default_rng(3)
    index = jnp.asarray(rng.integers(0, 7, size=(2, 3, 12)).astype(np.int32))
    values = jnp.asarray(rng.random(size=(2, 3, 12)))

    def merged(rows):
        return jax.value_and_grad(lambda v: (sd._merged(index, v, 4, rows)[1] ** 2).sum())(
            values)

    by_pairs, by_buffer = merged(None), merged(7)  # 7 rows: the buffer is the cheaper
    np.testing.assert_allclose(by_buffer[0], by_pairs[0], rtol=1e-12)
    np.testing.assert_allclose(by_buffer[1], by_pairs[1], rtol=1e-12)
    kept_pairs, kept_buffer = sd._merged(index, values, 4)[0], sd._merged(index, values, 4, 7)[0]
    np.testing.assert_array_equal(kept_buffer, kept_pairs)


def test_the_backward_pass_does_not_store_the_memory_at_every_step():
    rows, width, steps, batch = 4096, 16, 32, 2
    model = SDNC(2, 2, memory_rows=rows, memory_width=width, read_topk=2, link_topk=4,
                 controller_size=4, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    inputs = jnp.zeros((batch, steps, 2))

    def loss(params):
        return (nnx.merge(graphdef, params)(inputs)[0] ** 2).sum()

    stats = jax.jit(jax.grad(loss)).lower(params).compile().memory_analysis()
    state = sum(a.nbytes for a in jax.tree.leaves(model.initial_state(batch)))
    # The state (the memory, usage, keep_log and the link's six (N, K_L) arrays), its
    # gradient and working copies: far from a memory a step.
    assert stats.temp_size_in_bytes < 4 * state < steps * batch * rows * width * 4 / 2


def test_the_cell_runs_in_nnx_rnn_as_the_layer_does():
    model = SDNC(C, 3, memory_rows=16, memory_width=W, read_heads=R, read_topk=3, link_topk=4,
                 controller_size=8, rngs=nnx.Rngs(0), **REFINEMENTS)
    inputs = _inputs().astype(jnp.float32)
    ys, _ = model(inputs)
    np.testing.assert_allclose(nnx.RNN(model.cell)(inputs), ys, rtol=1e-5, atol=1e-6)
    _, _, trace = model(inputs, return_trace=True)
    assert trace.read_weights.shape == (B, T, R, 16) and trace.link.shape == (B, 16, 16)
    # Read modes mix weightings of mass at most 1; writes sum to the write gate at most.
    assert np.all(np.asarray(trace.read_weights.sum(-1)) <= 1 + 1e-5)
    assert np.all(np.asarray(trace.write_weights.sum((-1, -2)))
                  <= np.asarray(trace.write_gate) + 1e-5)


def test_sizes_and_states_of_another_model_are_refused():
    for name in ("read_topk", "link_topk"):
        with pytest.raises(ValueError, match=rf"{name}=9 must be an integer from 1 to "
                                             r"memory_rows=8"):
            SDNCCell(2, 2, memory_rows=8, rngs=nnx.Rngs(0), **{name: 9})
    with pytest.raises(ValueError, match=r"usage_lift=1.0 must be in \[0, 1\)"):
        SDNCCell(2, 2, memory_rows=8, usage_lift=1.0, rngs=nnx.Rngs(0))
    small = SDNC(2, 2, memory_rows=8, memory_width=3, read_topk=2, link_topk=4,
                 rngs=nnx.Rngs(0))
    other = SDNC(2, 2, memory_rows=8, memory_width=3, read_topk=3, link_topk=4,
                 rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"K, K_L = \(3, 4\); this SDNC has 8 x 3, 1 and "
                                         r"\(2, 4\)"):
        small(jnp.zeros((1, 2, 2)), other.initial_state(1))


def test_the_configuration_of_the_sdnc():
    config = resolve("copy", "sdnc")
    m = config.model
    assert (m.read_topk, m.link_topk, m.memory_rows, m.eval_memory_rows) == (4, 8, 32, 128)
    assert m.content_masking and m.deallocation and m.link_sharpness
    model = diffmem.build_model(config.replace(model={"link_topk": None}))
    assert model.cell.link_topk == sd.LINK_TOPK == 8
    with pytest.raises(ConfigError, match=r"model.link_topk=64 is more than "
                                          r"model.eval_memory_rows=32"):
        validate(config.replace(model={"link_topk": 64, "eval_memory_rows": 32}))
    with pytest.raises(ConfigError, match=r"model.link_topk=8 is more than "
                                          r"model.eval_memory_rows=6: a row keeps K_L"):
        validate(config.replace(model={"link_topk": None, "eval_memory_rows": 6}))
    with pytest.raises(ConfigError, match=r"the SDNC has one write head"):
        validate(config.replace(model={"write_heads": 2}))
    with pytest.raises(ConfigError, match=r"link_topk=8 is a setting of the dnc, sdnc only"):
        validate(resolve("copy", "sam").replace(model={"link_topk": 8}))


def tiny_sdnc():
    """``tiny()`` with the sparse DNC, evaluated on 24 rows, without the check."""
    return tiny().replace(model=dict(kind="sdnc", read_topk=2, link_topk=3,
                                     eval_memory_rows=24),
                          train=dict(generalisation_val_size=0))


def test_an_sdnc_run_resumes_exactly_loads_evaluates_on_any_memory_and_draws(
        tmp_path, capsys):
    check_resizable_run(tiny_sdnc(), tmp_path, capsys, SDNC)
