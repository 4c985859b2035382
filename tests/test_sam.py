"""Sparse access memory (diffmem.sam): its scan's own backward pass against JAX's, the model
with K = N against a dense reference written here, and the layer's protocol and errors.
Numerics in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import diffmem
from conftest import check_resizable_run, tiny
from diffmem import sparse_memory as sm
from diffmem import tasks
from diffmem.addressing import content_weights
from diffmem.cli import main
from diffmem.config import ConfigError, capacity_warnings, resolve, validate
from diffmem.sam import SAM, SAMCell, split_interface
from diffmem.scan import scan_steps

B, T, C, N, W, R, K = 3, 9, 4, 16, 5, 2, 3
LENGTHS = jnp.asarray([9, 5, 1])


def _model(k=K, **kwargs):
    return SAM(C, 3, memory_rows=N, memory_width=W, read_heads=R, read_topk=k,
               controller_size=8, param_dtype=jnp.float64, rngs=nnx.Rngs(0), **kwargs)


def _inputs(seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, C)))


def _plain(model, inputs, state, lengths):
    """The cell's step through ``scan_steps``: JAX differentiates it."""
    ys, final, _ = scan_steps(model.cell.step, state, inputs, False, model.state_grad_clip,
                              remat=None, seq_lengths=lengths)
    return ys, final


def _start(model, memory0, weights0):
    """A state whose first write goes to rows 0..5, read before with ``weights0``, and to row
    0, the least used, which it erases: the erased row is among the rows written."""
    index = jnp.arange(R * K, dtype=jnp.int32).reshape(1, R, K).repeat(B, 0)
    last = jnp.full((B, N), 4, jnp.int32).at[:, 0].set(-1)
    return model.initial_state(B)._replace(memory=memory0, read_index=index,
                                           read_weights=weights0, last_access=last)


def _loss(run, graphdef, outputs_only=False):
    def loss(params, inputs, memory0, weights0):
        model = nnx.merge(graphdef, params)
        ys, final = run(model, inputs, _start(model, memory0, weights0), LENGTHS)
        total = (ys ** 2).sum()
        if not outputs_only:
            total += ((final.memory ** 3).sum() + 1.7 * final.reads.sum()
                      + sum((c ** 2).sum() for c in jax.tree.leaves(final.controller)))
        return total
    return loss


@pytest.mark.parametrize("clip", [None, 0.05])
def test_the_sparse_scan_equals_jaxs_own_in_values_and_gradients(x64, clip):
    model = _model(state_grad_clip=clip)
    graphdef, params = nnx.split(model)
    inputs = _inputs()
    rng = np.random.default_rng(1)
    memory0 = jnp.asarray(rng.normal(size=(B, N, W)))
    weights0 = jax.nn.softmax(jnp.asarray(rng.normal(size=(B, R, K))))
    ys, final = model(inputs, _start(model, memory0, weights0), seq_lengths=LENGTHS)
    want_ys, want_final = _plain(model, inputs, _start(model, memory0, weights0), LENGTHS)
    np.testing.assert_array_equal(ys, want_ys)
    for got, want in zip(jax.tree.leaves(final), jax.tree.leaves(want_final)):
        np.testing.assert_array_equal(got, want)
    assert np.all(np.asarray(ys)[2, 1:] == 0)  # after its length of 1

    # With the clip, the final memory's gradient must be within it for the two to agree.
    sparse = _loss(lambda m, x, s, n: m(x, s, seq_lengths=n), graphdef, clip is not None)
    plain = _loss(_plain, graphdef, clip is not None)
    got = jax.grad(sparse, argnums=(0, 1, 2, 3))(params, inputs, memory0, weights0)
    want = jax.grad(plain, argnums=(0, 1, 2, 3))(params, inputs, memory0, weights0)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-13)
    assert all(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(got))
    if clip is not None:
        assert np.abs(np.asarray(got[2])).max() <= clip  # the initial memory's gradient


def _dense_step(cell, state, x):
    """One step of SAM written densely, a weighting over all N rows: the paper's equations
    without top-K. ``state``: (controller, memory, last access, step, dense read weights
    (B, R, N), reads)."""
    controller, memory, last, step, read_w, reads = state
    h, controller = cell.controller(jnp.concatenate([x, reads.reshape(B, -1)], -1), controller)
    h = jnp.concatenate([layer_h for _, layer_h in controller], -1)
    xi = split_interface(jnp.clip(cell.interface(h), -cell.clip, cell.clip), R, W)
    lru = jnp.argmin(last, axis=-1)
    unused = jax.nn.one_hot(lru, N, dtype=memory.dtype)
    write_w = xi.write_gate[:, None] * (xi.interpolation_gate[:, None] * read_w.mean(1)
                                        + (1 - xi.interpolation_gate[:, None]) * unused)
    memory = memory * (1 - unused)[..., None] + write_w[..., None] * xi.add[:, None, :]
    read_w = jax.vmap(content_weights, in_axes=(None, 1, 1), out_axes=1)(
        memory, xi.read_keys, xi.read_strengths)
    reads = jnp.einsum("brn,bnw->brw", read_w, memory)
    hit = (write_w > sm.ACCESS_THRESHOLD) | (read_w > sm.ACCESS_THRESHOLD).any(1)
    last = jnp.where(hit, step[:, None], last)
    y = cell.output(jnp.concatenate([h, reads.reshape(B, -1)], -1))
    return (controller, memory, last, step + 1, read_w, reads), y


def test_with_k_equal_to_n_it_is_the_dense_reference(x64):
    model = _model(k=N)
    graphdef, params = nnx.split(model)
    inputs = _inputs(2)

    def dense(params, inputs):
        cell = nnx.merge(graphdef, params).cell
        state = (cell.controller.initial_state(B), jnp.zeros((B, N, W)),
                 jnp.full((B, N), -1), jnp.zeros((B,), jnp.int32), jnp.zeros((B, R, N)),
                 jnp.zeros((B, R, W)))
        _, ys = jax.lax.scan(lambda s, x: _dense_step(cell, s, x), state,
                             jnp.swapaxes(inputs, 0, 1))
        return jnp.swapaxes(ys, 0, 1), state

    def sparse(params, inputs):
        return nnx.merge(graphdef, params)(inputs)[0]

    np.testing.assert_allclose(sparse(params, inputs), dense(params, inputs)[0], rtol=1e-10,
                               atol=1e-12)
    got = jax.grad(lambda p, x: (sparse(p, x) ** 2).sum(), argnums=(0, 1))(params, inputs)
    want = jax.grad(lambda p, x: (dense(p, x)[0] ** 2).sum(), argnums=(0, 1))(params, inputs)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-11)


def test_the_backward_pass_does_not_store_the_memory_at_every_step():
    rows, width, steps = 4096, 8, 32
    model = SAM(2, 2, memory_rows=rows, memory_width=width, read_topk=2, controller_size=4,
                rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    inputs = jnp.zeros((1, steps, 2))

    def loss(params):
        return (nnx.merge(graphdef, params)(inputs)[0] ** 2).sum()

    stats = jax.jit(jax.grad(loss)).lower(params).compile().memory_analysis()
    one_memory = rows * width * 4
    # The memory, its gradient and a few working copies: far from one per step.
    assert stats.temp_size_in_bytes < 6 * one_memory < steps * one_memory


def test_the_cell_runs_in_nnx_rnn_as_the_layer_does():
    model = SAM(C, 3, memory_rows=N, memory_width=W, read_heads=R, read_topk=K,
                controller_size=8, rngs=nnx.Rngs(0))
    inputs = _inputs().astype(jnp.float32)
    ys, _ = model(inputs)
    rnn = nnx.RNN(model.cell)
    np.testing.assert_allclose(rnn(inputs), ys, rtol=1e-5, atol=1e-6)
    # The trace spreads the weightings over every row; each read head's sums to 1.
    _, _, trace = model(inputs, return_trace=True)
    assert trace.read_weights.shape == (B, T, R, N) and trace.write_weights.shape == (B, T, 1, N)
    np.testing.assert_allclose(trace.read_weights.sum(-1), 1.0, rtol=1e-5)
    # From t = 1, when there are read weights to write by, the write's sum to its gate.
    np.testing.assert_allclose(trace.write_weights.sum((-1, -2))[:, 1:],
                               trace.write_gate[:, 1:], rtol=1e-5)


def test_sizes_and_states_of_another_model_are_refused():
    with pytest.raises(ValueError, match=r"read_topk=9 must be at most memory_rows=8"):
        SAMCell(2, 2, memory_rows=8, read_topk=9, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"read_topk=0 must be a positive integer"):
        SAMCell(2, 2, read_topk=0, rngs=nnx.Rngs(0))
    small = SAM(2, 2, memory_rows=8, memory_width=3, read_topk=2, rngs=nnx.Rngs(0))
    other = SAM(2, 2, memory_rows=8, memory_width=3, read_topk=3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError,
                       match=r"reads of 1 x 3 \(heads x rows\); this SAM has 8 x 3 and 1 x 2"):
        small(jnp.zeros((1, 2, 2)), other.initial_state(1))


def test_the_configuration_checks_its_sparse_reads():
    config = resolve("copy", "sam")
    assert config.model.read_topk == 4 and config.model.eval_memory_rows == 1024
    with pytest.raises(ConfigError, match=r"model.read_topk=200 is more than "
                                          r"model.memory_rows=128"):
        validate(config.replace(model={"read_topk": 200, "eval_memory_rows": None}))
    with pytest.raises(ConfigError, match=r"read_topk=8 is a setting of the sam, sdnc only"):
        validate(resolve("copy", "dnc").replace(model={"read_topk": 8}))
    with pytest.raises(ConfigError, match=r"the SAM has one write head"):
        validate(config.replace(model={"write_heads": 2}))
    # Every step erases a row: copy's 41 training steps do not fit in 32 rows.
    (text,) = capacity_warnings(config.replace(model={"memory_rows": 32}))
    assert "erases a row at each of its 41 steps, more than its memory's 32 rows" in text
    assert capacity_warnings(config, [{"length": 120}]) == []  # 241 steps, 1,024 rows


def tiny_sam():
    """``tiny()`` with SAM, reads of 2 rows, evaluated on 24 rows, without the check."""
    return tiny().replace(model=dict(kind="sam", read_topk=2, eval_memory_rows=24),
                          train=dict(generalisation_val_size=0))


def test_a_sam_run_resumes_exactly_loads_evaluates_on_any_memory_and_draws(
        tmp_path, capsys, tiny_run):
    whole = check_resizable_run(tiny_sam(), tmp_path, capsys, SAM)
    assert main(["eval", str(tiny_run[0]), "--memory-rows", "64"]) == 2
    assert "the ntm-lstm's parameters depend on the number of memory rows" in " ".join(
        capsys.readouterr().out.split())
    assert main(["eval", str(whole), "--memory-rows", "1"]) == 2
    assert "--memory-rows 1: model.read_topk=2 is more than model.eval_memory_rows=1" in " ".join(
        capsys.readouterr().out.split())


def test_a_population_of_sams_computes_what_each_member_computes_alone(tmp_path):
    from diffmem.training import population
    from diffmem.training.optim import make_optimizer
    from diffmem.training.state import TrainState
    from diffmem.training.step import compile_step, data_key, make_train_step

    configs = [tiny_sam().replace(train=dict(seed=s)) for s in (0, 1)]
    task = tasks.get("copy")

    def start(config):
        graphdef, params, rest = nnx.split(diffmem.build_model(config), nnx.Param, ...)
        tx = make_optimizer(config.train)
        zero = jnp.zeros((), jnp.int32)
        return graphdef, rest, TrainState(params, tx.init(params), zero, zero)

    losses = []
    for c in configs:
        graphdef, rest, state = start(c)
        state, m = make_train_step(graphdef, rest, task, make_optimizer(c.train), 4)(
            state, data_key(c.train.seed))
        losses.append(float(m["loss"]))
    states = population.stack([start(c)[2] for c in configs])
    keys = jnp.stack([data_key(c.train.seed) for c in configs])
    lrs = jnp.full((2,), configs[0].train.lr, jnp.float32)
    on = jnp.ones((2,), bool)
    step = compile_step(population.make_population_step(graphdef, rest, task,
                                                        configs[0].train, 2),
                        states, keys, lrs, on, batch_size=4, members=2)
    # A rounding difference between the two programs can change which of two near-equal rows
    # a read takes (top-K is not continuous): the loss agrees to 1e-3, not to rounding, and the
    # runs part after a few updates. Another member's seed or batch would be 30% off.
    _, metrics = step(states, keys, lrs, on)
    np.testing.assert_allclose(np.asarray(metrics["loss"]), losses, rtol=1e-3)
