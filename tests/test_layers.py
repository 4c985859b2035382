"""The models as layers: flax.nnx's recurrent-cell protocol (``nnx.RNN``, ``nnx.Bidirectional``),
per-sequence lengths, explicit state, no output layer, dtypes and the choice of rematerialising
(docs/layers.md)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from flax.nnx.nn.recurrent import flip_sequences

from diffmem import DNC, NTM
from diffmem.lstm import LSTM, LSTMCell
from diffmem.models import with_remat

B, T, C_IN, C_OUT = 3, 7, 3, 2
H, N, M = 8, 8, 4
LENGTHS = jnp.array([4, 7, 1])
SIZES = dict(controller_size=H, memory_rows=N, memory_width=M)
LAYERS = {
    "ntm": lambda **kw: NTM(C_IN, kw.pop("output_size", C_OUT), **SIZES, **kw),
    "dnc": lambda **kw: DNC(C_IN, kw.pop("output_size", C_OUT), read_heads=2, **SIZES, **kw),
    "lstm": lambda **kw: LSTM(C_IN, kw.pop("output_size", C_OUT), hidden_size=H, layers=2,
                              **kw),
}
X = jax.random.normal(jax.random.key(1), (B, T, C_IN))
# From the DNC's empty memory the unwritten rows all get the same usage, up to rounding, and
# which of them is allocated next depends on how a program rounds (batch 1 does not
# rematerialise, batch 3 does): a random memory keeps the rows' usages apart.
MEMORY = 0.5 * jax.random.normal(jax.random.key(2), (B, N, M))


@functools.cache
def layer(kind):
    return LAYERS[kind](rngs=nnx.Rngs(0))


def start(kind, rows=slice(None)):
    """The initial state of sequences ``rows``, on a random memory for the DNC."""
    state = layer(kind).initial_state(B)
    if kind == "dnc":
        state = state._replace(memory=MEMORY)
    return jax.tree.map(lambda a: a[rows], state)


@functools.cache
def run(kind):
    """The layer's outputs and final state on X with LENGTHS, computed once per kind."""
    return layer(kind)(X, start(kind), seq_lengths=LENGTHS)


def assert_trees_close(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_nnx_rnn_of_the_cell_gives_the_layers_outputs_and_final_state(kind):
    outputs, state = run(kind)
    # The DNC from its random memory (MEMORY); the others from the cell's own initial carry.
    initial = {"initial_carry": start(kind)} if kind == "dnc" else {}
    carry, rnn_outputs = nnx.RNN(layer(kind).cell)(X, seq_lengths=LENGTHS, return_carry=True,
                                                   **initial)
    assert_trees_close(carry, state)
    for b, n in enumerate(LENGTHS.tolist()):
        np.testing.assert_allclose(rnn_outputs[b, :n], outputs[b, :n], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_padding_changes_nothing_and_its_outputs_are_zero(kind):
    outputs, state = run(kind)
    # Other values on the padding: the same outputs and state.
    pad = jnp.arange(T)[None, :, None] >= LENGTHS[:, None, None]
    noise = jnp.where(pad, 5.0 * jax.random.normal(jax.random.key(9), X.shape), X)
    assert_trees_close(layer(kind)(noise, start(kind), seq_lengths=LENGTHS), (outputs, state))
    for b, n in enumerate(LENGTHS.tolist()):
        assert not np.any(outputs[b, n:])
        # Each sequence alone and unpadded: its outputs, and the state after its last step.
        rows = slice(b, b + 1)
        alone, alone_state = layer(kind)(X[rows, :n], start(kind, rows))
        np.testing.assert_allclose(outputs[rows, :n], alone, rtol=1e-5, atol=1e-6)
        assert_trees_close(jax.tree.map(lambda a, rows=rows: a[rows], state), alone_state)


def test_no_gradient_reaches_the_padding():
    model = layer("ntm")
    grads = jax.jit(jax.grad(lambda x: jnp.sum(model(x, seq_lengths=LENGTHS)[0] ** 2)))(X)
    pad = np.arange(T)[None, :] >= np.asarray(LENGTHS)[:, None]
    assert not np.any(np.asarray(grads)[pad]) and np.all(np.any(grads[~pad], axis=-1))


def test_the_trace_stops_at_each_length_and_holds_each_final_link():
    outputs, state, trace = layer("dnc")(X, start("dnc"), seq_lengths=LENGTHS,
                                         return_trace=True)
    assert_trees_close((outputs, state), run("dnc"))
    np.testing.assert_array_equal(trace.link, state.link)
    for b, n in enumerate(LENGTHS.tolist()):
        assert not np.any(trace.read_weights[b, n:]) and np.all(trace.read_weights[b, :n] >= 0)
        np.testing.assert_allclose(trace.reads[b, n - 1], state.reads[b], rtol=1e-6)


def test_lengths_of_the_whole_sequence_change_nothing():
    outputs, state = layer("dnc")(X, start("dnc"))
    assert_trees_close(layer("dnc")(X, start("dnc"), seq_lengths=jnp.full((B,), T)),
                       (outputs, state))


def test_a_state_passed_in_continues_the_sequences():
    model = layer("dnc")
    first, state = model(X[:, :3], start("dnc"), seq_lengths=jnp.minimum(LENGTHS, 3))
    second, _ = model(X[:, 3:], state, seq_lengths=jnp.maximum(LENGTHS - 3, 0))
    whole, _ = run("dnc")
    np.testing.assert_allclose(second[0, :1], whole[0, 3:4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second[1], whole[1, 3:], rtol=1e-5, atol=1e-6)
    assert not np.any(second[2])  # its one step was in the first call


@pytest.mark.parametrize("kind", LAYERS)
def test_bidirectional_runs_the_cell_forward_and_each_sequence_reversed(kind):
    model = layer(kind)
    both = nnx.Bidirectional(nnx.RNN(model.cell), nnx.RNN(model.cell))
    outputs = both(X, initial_carry=(start(kind), start(kind)), seq_lengths=LENGTHS)
    assert outputs.shape == (B, T, 2 * C_OUT)
    backward = model(flip_sequences(X, LENGTHS, 1, False), start(kind), seq_lengths=LENGTHS)[0]
    backward = flip_sequences(backward, LENGTHS, 1, False)
    for b, n in enumerate(LENGTHS.tolist()):
        np.testing.assert_allclose(outputs[b, :n, :C_OUT], run(kind)[0][b, :n], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(outputs[b, :n, C_OUT:], backward[b, :n], rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_the_cells_carry_is_the_initial_state_for_any_batch_axes(kind):
    cell = layer(kind).cell
    assert cell.num_feature_axes == 1 and isinstance(cell, nnx.RNNCellBase)
    assert_trees_close(cell.initialize_carry((B, C_IN)), layer(kind).initial_state(B))
    carry = cell.initialize_carry((2, 3, C_IN), nnx.Rngs(0))
    assert all(leaf.shape[:2] == (2, 3) for leaf in jax.tree.leaves(carry))
    # Two batch axes, or none, step as the same sequences on one axis: the layer's first step.
    graphdef, variables = nnx.split(cell)
    step = jax.jit(lambda state, x: nnx.merge(graphdef, variables)(state, x))
    first = run(kind)[0][:, 0]
    _, y = step(jax.tree.map(lambda a: a[None], start(kind)), X[None, :, 0])
    np.testing.assert_allclose(y[0], first, rtol=1e-5, atol=1e-6)
    state, y = step(start(kind, 0), X[0, 0])
    np.testing.assert_allclose(y, first[0], rtol=1e-5, atol=1e-6)
    assert jax.tree.structure(state) == jax.tree.structure(carry)


def test_the_lstm_cell_shares_the_layers_variables_at_the_same_paths():
    model = layer("lstm")
    assert isinstance(model.cell, LSTMCell)
    assert nnx.state(model.cell) == nnx.state(model)
    fresh = LSTMCell(C_IN, C_OUT, hidden_size=H, layers=2, rngs=nnx.Rngs(0))
    assert_trees_close(nnx.state(fresh, nnx.Param), nnx.state(model, nnx.Param))


@pytest.mark.parametrize("kind, width", [("ntm", H + M), ("dnc", H + 2 * M),
                                         ("lstm", H)])
def test_without_output_size_the_layer_returns_the_controller_output_and_reads(kind, width):
    model = LAYERS[kind](output_size=None, rngs=nnx.Rngs(0))
    assert model.out_features == width
    outputs, state = model(X[:, :2])
    assert outputs.shape == (B, 2, width)
    assert not any("output" in map(str, path) for path, _ in nnx.to_flat_state(nnx.state(model)))
    if kind == "ntm":  # [h_t, r_t]: the reads are the state's
        np.testing.assert_array_equal(outputs[:, -1, H:], state.reads.reshape(B, M))


@pytest.mark.parametrize("kind", LAYERS)
def test_bfloat16_computation_keeps_float32_parameters_and_state(kind):
    model = LAYERS[kind](dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    outputs, state = model(X[:, :3])
    assert outputs.dtype == jnp.bfloat16
    assert {leaf.dtype for leaf in jax.tree.leaves(state)} == {jnp.dtype(jnp.float32)}
    assert {v.dtype for v in jax.tree.leaves(nnx.state(model))} == {jnp.dtype(jnp.float32)}


def test_bfloat16_parameters_keep_a_bfloat16_state_whatever_the_computation():
    # float32 computation on bfloat16 parameters: the LSTM controller's carry and the memory
    # keep the parameters' dtype from step to step.
    low = LAYERS["ntm"](dtype=jnp.float32, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert {v.dtype for v in jax.tree.leaves(nnx.state(low))} == {jnp.dtype(jnp.bfloat16)}
    outputs, state = low(X[:, :3])
    assert outputs.dtype == jnp.float32
    assert {leaf.dtype for leaf in jax.tree.leaves(state)} == {jnp.dtype(jnp.bfloat16)}


def test_every_remat_choice_gives_the_same_gradients():
    def grads(remat):  # one compiled program each: op by op, every operation compiles
        graphdef, params, rest = nnx.split(LAYERS["ntm"](remat=remat, rngs=nnx.Rngs(0)),
                                           nnx.Param, ...)
        loss = lambda p: jnp.sum(nnx.merge(graphdef, p, rest)(X[:, :3])[0] ** 2)  # noqa: E731
        return jax.jit(jax.grad(loss))(params)

    auto = grads("auto")  # batch 3: rematerialised, keeping the controller's products
    for remat in (None, "dots_saveable"):
        assert_trees_close(grads(remat), auto)


def test_with_remat_replaces_only_the_automatic_choice():
    for remat, expected in (("auto", "dots_saveable"), (None, None)):
        model = LAYERS["dnc"](remat=remat, rngs=nnx.Rngs(0))
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        assert nnx.merge(with_remat(graphdef, params, rest, "dots_saveable"),
                         params, rest).remat == expected


@pytest.mark.parametrize("kind", LAYERS)
def test_wrong_lengths_and_remat_name_what_was_expected(kind):
    with pytest.raises(ValueError, match=r"seq_lengths of shape \(B,\) = \(3,\)"):
        layer(kind)(X, seq_lengths=jnp.array([1, 2]))
    with pytest.raises(ValueError, match="of integers"):
        layer(kind)(X, seq_lengths=jnp.ones(B))
    with pytest.raises(ValueError, match="remat='dots' must be 'auto', None"):
        LAYERS[kind](remat="dots", rngs=nnx.Rngs(0))


def test_chunked_rematerialisation_gives_the_same_outputs_state_and_gradients():
    # T = 7 in chunks of 3: two whole chunks and a shorter last one; with per-sequence lengths.
    def run_and_grads(chunk):
        model = LAYERS["dnc"](remat_chunk=chunk, rngs=nnx.Rngs(0))
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def loss(p):
            out, state, trace = nnx.merge(graphdef, p, rest)(
                X, start("dnc"), seq_lengths=LENGTHS, return_trace=True)
            return jnp.sum(out ** 2), (out, state, trace)

        return jax.jit(jax.grad(loss, has_aux=True))(params)

    plain = run_and_grads(None)
    for chunk in (3, "auto"):  # "auto": this state is far too small to chunk
        assert_trees_close(run_and_grads(chunk), plain)
    for bad in (0, True):
        with pytest.raises(ValueError, match=f"remat_chunk={bad} must be 'auto', None"):
            LAYERS["dnc"](remat_chunk=bad, rngs=nnx.Rngs(0))


def test_auto_chunks_only_a_large_state_by_about_the_square_root_of_its_steps():
    from diffmem.scan import CHUNK_FROM_BYTES, chunk_steps

    small = jnp.zeros(CHUNK_FROM_BYTES // 4 - 1)
    assert chunk_steps("auto", small, 41) is None
    assert chunk_steps("auto", (small, jnp.zeros(1)), 41) == 7
    assert chunk_steps(5, small, 41) == 5 and chunk_steps(None, small, 41) is None
    # A state of integers (a sparse link's indices) counts by its bytes too.
    assert chunk_steps("auto", jnp.zeros(CHUNK_FROM_BYTES // 4, jnp.int32), 9) == 3
