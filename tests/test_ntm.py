import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from diffmem import NTM, NTMCell, NTMState
from diffmem.config import resolve
from diffmem.models import build_model, count_parameters


def tiny(**kwargs):
    args = dict(controller_size=12, memory_rows=10, memory_width=4, rngs=nnx.Rngs(0))
    args.update(kwargs)
    return NTM(5, 3, **args)


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
@pytest.mark.parametrize("heads", [(1, 1), (2, 3)])
def test_ntm_returns_logits_and_state_of_the_documented_shapes(controller, heads):
    R, W = heads
    model = tiny(controller=controller, read_heads=R, write_heads=W)
    logits, state = model(jnp.zeros((2, 7, 5)))
    assert logits.shape == (2, 7, 3)
    assert isinstance(state, NTMState)
    assert state.memory.shape == (2, 10, 4)
    assert state.read_weights.shape == (2, R, 10)
    assert state.write_weights.shape == (2, W, 10)
    assert state.reads.shape == (2, R, 4)


def test_trace_has_every_step_and_its_weightings_sum_to_one():
    model = tiny(read_heads=2, write_heads=1)
    x = jax.random.bernoulli(jax.random.key(1), 0.5, (3, 6, 5)).astype(jnp.float32)
    logits, _, trace = model(x, return_trace=True)
    assert trace.read_weights.shape == (3, 6, 2, 10)
    assert trace.write_weights.shape == (3, 6, 1, 10)
    assert trace.erase.shape == trace.add.shape == (3, 6, 1, 4)
    assert trace.reads.shape == (3, 6, 2, 4)
    for w in (trace.read_weights, trace.write_weights):
        assert np.all(np.asarray(w) >= 0)
        np.testing.assert_allclose(np.sum(w, axis=-1), 1.0, rtol=1e-5)
    assert np.all((np.asarray(trace.erase) > 0) & (np.asarray(trace.erase) < 1))


def test_sequence_model_matches_a_loop_of_cell_steps():
    model = tiny(read_heads=2, write_heads=2)
    x = jax.random.normal(jax.random.key(2), (2, 5, 5))
    logits, final = model(x)
    cell: NTMCell = model.cell
    graphdef, variables = nnx.split(cell)
    # One compiled step: op by op, each step would compile every operation anew.
    step = jax.jit(lambda state, x_t: nnx.merge(graphdef, variables)(state, x_t))
    state, ys = None, []  # None: the cell starts from its initial state
    for t in range(5):
        state, y = step(state, x[:, t])
        ys.append(y)
    np.testing.assert_allclose(np.stack(ys, axis=1), logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.memory, final.memory, rtol=1e-5, atol=1e-6)


def test_passing_the_final_state_continues_the_sequence():
    model = tiny()
    x = jax.random.normal(jax.random.key(3), (2, 8, 5))
    whole, _ = model(x)
    first, state = model(x[:, :3])
    second, _ = model(x[:, 3:], state)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, rtol=1e-5, atol=1e-6)


def test_sequences_in_a_batch_do_not_interact_and_rematerialised_gradients_agree():
    # Batch > 1 takes the rematerialised path, batch 1 does not: both must agree.
    model = tiny()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x = jax.random.normal(jax.random.key(4), (2, 6, 5))

    def loss(p, x):
        return jnp.sum(nnx.merge(graphdef, p, rest)(x)[0] ** 2)

    grad = jax.jit(jax.grad(loss))  # compiled: op by op, a backward pass is slow to run
    both = grad(params, x)
    one = jax.tree.map(lambda a, b: a + b, grad(params, x[:1]), grad(params, x[1:]))
    for a, b in zip(jax.tree.leaves(both), jax.tree.leaves(one)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    together, _ = model(x)
    apart = jnp.concatenate([model(x[:1])[0], model(x[1:])[0]])
    np.testing.assert_allclose(together, apart, rtol=1e-5, atol=1e-6)


def test_numpy_input_is_accepted():
    logits, _ = tiny()(np.zeros((1, 4, 5), np.float32))
    assert logits.shape == (1, 4, 3)


def test_wrong_input_width_names_what_was_expected_and_received():
    with pytest.raises(ValueError, match=r"Expected inputs with 5 channels.*got 9"):
        tiny()(jnp.zeros((1, 4, 9)))


def test_wrong_input_rank_names_the_expected_layout():
    with pytest.raises(ValueError, match=r"\(B, T, C_in\).*got a 2D array"):
        tiny()(jnp.zeros((4, 5)))


@pytest.mark.parametrize("bad", [dict(shift_radius=5), dict(memory_rows=0),
                                 dict(controller="gru"), dict(memory_init="zeros")])
def test_invalid_sizes_are_rejected_with_the_value_named(bad):
    with pytest.raises(ValueError, match=str(list(bad.values())[0])):
        tiny(**bad)


@pytest.mark.parametrize("scheme", ["constant", "learned", "random"])
def test_memory_init_schemes_start_from_their_memory(scheme):
    model = tiny(memory_init=scheme)
    memory = np.asarray(model.initial_state(2).memory)
    assert memory.shape == (2, 10, 4)
    if scheme == "constant":
        np.testing.assert_allclose(memory, 1e-6)
    else:
        assert memory.std() > 0.01
    trained = nnx.state(model, nnx.Param)
    learned_memory = "initial_memory" in trained["cell"]
    assert learned_memory == (scheme == "learned")


def test_every_head_starts_focused_on_the_first_row():
    state = tiny(read_heads=2, write_heads=3).initial_state(1)
    for w in (state.read_weights, state.write_weights):
        np.testing.assert_array_equal(np.argmax(w, axis=-1), 0)
        assert np.all(np.asarray(w)[..., 0] > 0.99)


def test_tape_bias_starts_the_write_gates_and_their_plus_one_shift_and_nothing_else():
    from diffmem.ntm import split_head_params

    plain, biased = tiny(read_heads=2, write_heads=3), tiny(read_heads=2, write_heads=3,
                                                           tape_bias=3.0)
    cell = biased.cell
    raw = biased.cell.head_params.bias[...] - plain.cell.head_params.bias[...]
    reads = np.asarray(raw[: 2 * cell.read_size])
    writes = split_head_params(raw[2 * cell.read_size:].reshape(1, 3, -1), 4, 1, write=True)
    assert not reads.any()
    np.testing.assert_allclose(writes.g, jax.nn.sigmoid(-3.0), rtol=1e-6)
    np.testing.assert_allclose(writes.s[..., 2], np.exp(3) / (np.exp(3) + 2), rtol=1e-6)
    assert np.count_nonzero(np.asarray(raw)) == 6  # two outputs of each write head


def test_tape_read_heads_start_the_first_read_heads_as_tapes_too():
    from diffmem.ntm import split_head_params

    plain = tiny(read_heads=3, write_heads=1)
    biased = tiny(read_heads=3, write_heads=1, tape_bias=3.0, tape_read_heads=2)
    size = biased.cell.read_size
    raw = biased.cell.head_params.bias[...] - plain.cell.head_params.bias[...]
    reads = split_head_params(raw[: 3 * size].reshape(1, 3, -1), 4, 1, write=False)
    np.testing.assert_allclose(reads.g[0], [jax.nn.sigmoid(-3.0)] * 2 + [0.5], rtol=1e-6)
    np.testing.assert_allclose(reads.s[0, :2, 2], np.exp(3) / (np.exp(3) + 2), rtol=1e-6)
    assert np.count_nonzero(np.asarray(raw)) == 6  # two reads' and the write's gate and shift
    with pytest.raises(ValueError, match="tape_read_heads=4 must be between 0 and read_heads=3"):
        tiny(read_heads=3, tape_bias=3.0, tape_read_heads=4)
    with pytest.raises(ValueError, match="tape_bias, which is 0"):
        tiny(read_heads=3, tape_read_heads=1)


def test_a_strong_tape_bias_writes_one_row_a_step_from_the_first():
    model = tiny(controller="feedforward", tape_bias=30.0)
    kernel = model.cell.head_params.kernel
    kernel[...] = jnp.zeros_like(kernel[...])  # the heads follow their biases alone
    _, _, trace = model(jnp.ones((1, 14, 5)), return_trace=True)
    rows = np.argmax(np.asarray(trace.write_weights[0, :, 0]), axis=-1)
    np.testing.assert_array_equal(rows, (np.arange(14) + 1) % 10)  # wraps after 10 rows


@pytest.mark.parametrize("after", [False, True])
def test_read_after_write_lets_the_reads_see_this_steps_write(after):
    # Both heads are strong tapes (gate shut, shift +1), so the read and the write head move
    # together over rows 1, 2, ...; every step writes the add vector +1 on row t + 1.
    model = tiny(controller="feedforward", tape_bias=30.0, tape_read_heads=1,
                 read_after_write=after)
    cell = model.cell
    kernel, bias = cell.head_params.kernel, cell.head_params.bias
    kernel[...] = jnp.zeros_like(kernel[...])
    M, K = 4, 1
    write_add = cell.read_size + M + 3 + 2 * K + 1 + M  # after k, beta, g, gamma, s, e
    bias[...] = bias[...].at[write_add:write_add + M].set(30.0)  # add tanh(30) = 1 everywhere
    _, _, trace = model(jnp.ones((1, 6, 5)), return_trace=True)
    reads = np.asarray(trace.reads[0, :, 0])
    # Before the write the tape row is still the constant initial memory; after it, the row
    # holds what the erase (sigmoid(0) = 1/2) and the add made of it.
    expected = 0.5 * 1e-6 + 1.0 if after else 1e-6
    np.testing.assert_allclose(reads, expected, rtol=1e-3, atol=1e-7)


def test_default_copy_model_has_about_the_papers_parameter_count():
    # Paper, Table 2: LSTM-controller NTM on copy has 67,561 parameters (SPEC: within ~10%).
    def count(model):  # from shapes alone: nothing is initialised
        return count_parameters(nnx.eval_shape(lambda: build_model(resolve("copy", model))))

    n = count("ntm-lstm")
    assert abs(n - 67_561) / 67_561 < 0.10, n
    n_ff = count("ntm-ff")
    assert n_ff < n


def test_gradients_are_finite_from_the_constant_initial_memory():
    model = tiny()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x = jnp.zeros((1, 5, 5))
    grads = jax.jit(jax.grad(lambda p: jnp.sum(nnx.merge(graphdef, p, rest)(x)[0])))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_state_grad_clip_leaves_the_forward_pass_and_clips_the_gradient_through_the_state():
    from diffmem.scan import clip_gradient

    # The helper: the identity forward, its gradient clipped elementwise on the way back.
    g = jax.grad(lambda x: jnp.sum(clip_gradient(x, 1.0) * jnp.array([0.5, -3.0, 4.0])))(
        jnp.zeros(3))
    np.testing.assert_array_equal(g, [0.5, -1.0, 1.0])

    x = jax.random.bernoulli(jax.random.key(2), 0.5, (2, 6, 5)).astype(jnp.float32)
    plain, clipped, loose = (tiny(controller="feedforward", state_grad_clip=c)
                             for c in (None, 1e-4, 1e6))
    np.testing.assert_array_equal(plain(x)[0], clipped(x)[0])

    def grads(model):
        graphdef, params = nnx.split(model)
        loss = lambda p: jnp.sum(nnx.merge(graphdef, p)(x)[0] ** 2)  # noqa: E731
        return jax.tree.leaves(jax.grad(loss)(params))

    for a, b in zip(grads(plain), grads(loose)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    assert any(not np.allclose(a, b) for a, b in zip(grads(plain), grads(clipped)))
    with pytest.raises(ValueError, match="state_grad_clip"):
        tiny(state_grad_clip=-1.0)
