"""The Differentiable Neural Computer: shapes, the scan against its cell, the interface vector,
the three Csordas & Schmidhuber switches, input checks, checkpoints and the model registry."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import diffmem
from conftest import tiny_dnc
from diffmem import DNC, DNCCell, DNCState, DNCTrace, models, plots, rundir
from diffmem.config import DNC_SWITCHES, ConfigError, resolve, validate
from diffmem.dnc import interface_sizes, split_interface
from diffmem.models import build_model, count_parameters
from diffmem.overrides import apply_sets
from diffmem.training import train_and_evaluate

B, T, C_IN, C_OUT = 2, 6, 5, 3
H, N, W, R = 12, 10, 4, 2
SWITCHES = DNC_SWITCHES


def tiny(**kwargs):
    args = dict(controller_size=H, memory_rows=N, memory_width=W, read_heads=R,
                rngs=nnx.Rngs(0))
    args.update(kwargs)
    return DNC(C_IN, C_OUT, **args)


# One model and one input for the shape, scan and continuation tests: each new DNC call
# compiles its scan, so the traced runs are computed once per batch size and shared.
MODEL = tiny()
X = jax.random.bernoulli(jax.random.key(1), 0.5, (B, T, C_IN)).astype(jnp.float32)
# From an empty memory the unwritten rows all get the same usage, up to rounding, and which
# of them is allocated next then depends on how a program rounds (the jitted step and the
# scan differed under the suite's XLA flags). A random memory keeps the rows' usages apart.
MEMORY = 0.5 * jax.random.normal(jax.random.key(2), (B, N, W))


def start(batch):
    return MODEL.initial_state(batch)._replace(memory=MEMORY[:batch])


@functools.cache
def traced(batch):
    """``MODEL(X[:batch], start(batch), return_trace=True)``: batch 1 runs the plain step,
    batch 2 the rematerialised one (jax.checkpoint)."""
    return MODEL(X[:batch], start(batch), return_trace=True)


def jit_step(cell):
    """``cell.step`` as one compiled program: op by op, each step would compile every
    operation anew."""
    graphdef, variables = nnx.split(cell)
    return jax.jit(lambda state, x_t: nnx.merge(graphdef, variables).step(state, x_t))


def assert_trees_close(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_dnc_returns_logits_state_and_trace_of_the_documented_shapes():
    logits, state, trace = traced(B)
    assert logits.shape == (B, T, C_OUT)
    assert isinstance(state, DNCState) and isinstance(trace, DNCTrace)
    assert [(c.shape, h.shape) for c, h in state.controller] == [((B, H), (B, H))]
    assert state.memory.shape == (B, N, W)
    assert state.usage.shape == state.precedence.shape == state.write_weights.shape == (B, N)
    assert state.link.shape == (B, N, N)
    assert state.read_weights.shape == (B, R, N)
    assert state.reads.shape == (B, R, W)

    assert trace.read_weights.shape == (B, T, R, N)
    assert trace.write_weights.shape == (B, T, 1, N)
    assert trace.erase.shape == trace.add.shape == (B, T, 1, W)
    assert trace.reads.shape == (B, T, R, W)
    assert trace.usage.shape == (B, T, N)
    assert trace.allocation_gate.shape == trace.write_gate.shape == (B, T)
    assert trace.free_gates.shape == (B, T, R)
    assert trace.read_modes.shape == (B, T, R, 3)
    assert trace.link.shape == (B, N, N)
    np.testing.assert_array_equal(trace.link, state.link)  # the final link matrix L_T


def test_trace_values_lie_in_their_documented_ranges():
    _, _, trace = traced(B)
    np.testing.assert_allclose(np.sum(trace.read_modes, axis=-1), 1.0, rtol=1e-5)
    for gate in (trace.allocation_gate, trace.write_gate, trace.free_gates, trace.erase):
        gate = np.asarray(gate)
        assert np.all((gate > 0) & (gate < 1))
    usage = np.asarray(trace.usage)
    assert np.all((usage >= 0) & (usage <= 1))
    # DNC weightings are non-negative and sum to at most 1 (unlike the NTM's, exactly 1).
    for w in (trace.read_weights, trace.write_weights):
        assert np.all(np.asarray(w) >= 0)
        assert np.all(np.sum(w, axis=-1) <= 1 + 1e-5)
    link = np.asarray(trace.link)
    np.testing.assert_array_equal(np.diagonal(link, axis1=-2, axis2=-1), 0.0)
    assert np.all((link >= 0) & (link <= 1)) and link.max() > 0


@pytest.mark.parametrize("batch", [1, B])
def test_dnc_matches_a_loop_of_cell_steps(batch):
    logits, final, trace = traced(batch)
    step = jit_step(MODEL.cell)
    state, ys, steps = start(batch), [], []
    for t in range(T):
        state, y, step_trace = step(state, X[:batch, t])
        ys.append(y)
        steps.append(step_trace)
    np.testing.assert_allclose(np.stack(ys, axis=1), logits, rtol=1e-5, atol=1e-6)
    assert_trees_close(state, final)
    # Per-step traces (link None) stacked on axis 1 are the scan's trace.
    stacked = jax.tree.map(lambda *a: np.stack(a, axis=1), *steps)
    assert_trees_close(stacked, trace._replace(link=None))


def test_sequences_in_a_batch_do_not_interact():
    # Batch 2 (rematerialised step) against batch 1 (plain step) on the same first sequence.
    np.testing.assert_allclose(traced(B)[0][:1], traced(1)[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(traced(B)[1].memory[:1], traced(1)[1].memory, rtol=1e-5,
                               atol=1e-6)


def test_cell_call_starts_afresh_from_none():
    graphdef, variables = nnx.split(MODEL.cell)

    def both(x):
        cell = nnx.merge(graphdef, variables)
        return cell(None, x), cell.step(cell.initial_state(B), x)[:2]

    (state, y), (expected_state, expected) = jax.jit(both)(X[:, 0])  # one program, not op by op
    assert y.shape == (B, C_OUT) and isinstance(state, DNCState)
    np.testing.assert_array_equal(y, expected)
    assert_trees_close(state, expected_state)


def test_passing_the_final_state_continues_the_sequence():
    whole, final, _ = traced(B)
    # Two halves of the same shape: the second call reuses the first's program.
    first, state = MODEL(X[:, :3], start(B))
    second, last = MODEL(X[:, 3:], state)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, rtol=1e-5, atol=1e-6)
    assert_trees_close(last, final)


@pytest.mark.parametrize("heads, width", [(1, 20), (2, 4), (4, 7)])
def test_interface_sizes_follow_the_papers_formula_and_the_switches(heads, width):
    def total(**switches):
        return sum(interface_sizes(heads, width, **switches).values())

    paper = heads * width + 3 * width + 5 * heads + 3
    assert total() == paper
    assert total(content_masking=True) == paper + (heads + 1) * width
    assert total(link_sharpness=True) == paper + 2 * heads
    assert total(content_masking=True, link_sharpness=True) == (
        paper + (heads + 1) * width + 2 * heads)
    assert list(interface_sizes(heads, width)) == [
        "read_keys", "read_strengths", "write_key", "write_strength", "erase", "write_vector",
        "free_gates", "allocation_gate", "write_gate", "read_modes"]


def _oneplus(a):
    return 1 + np.logaddexp(0, a)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# Each part's activation, written independently of diffmem, on its slice of the raw vector.
ACTIVATIONS = dict(
    read_keys=lambda a: a.reshape(-1, R, W), read_strengths=_oneplus, write_key=lambda a: a,
    write_strength=lambda a: _oneplus(a[:, 0]), erase=_sigmoid, write_vector=lambda a: a,
    free_gates=_sigmoid, allocation_gate=lambda a: _sigmoid(a[:, 0]),
    write_gate=lambda a: _sigmoid(a[:, 0]), read_modes=lambda a: _softmax(a.reshape(-1, R, 3)),
    read_masks=lambda a: _sigmoid(a.reshape(-1, R, W)), write_mask=_sigmoid,
    link_sharpness=lambda a: _oneplus(a.reshape(-1, 2, R)),
)


@pytest.mark.parametrize("content_masking", [False, True])
@pytest.mark.parametrize("link_sharpness", [False, True])
def test_split_interface_takes_each_part_from_its_slice_with_its_activation(
        content_masking, link_sharpness):
    switches = dict(content_masking=content_masking, link_sharpness=link_sharpness)
    sizes = interface_sizes(R, W, **switches)
    raw = 3 * np.asarray(jax.random.normal(jax.random.key(7), (3, sum(sizes.values()))))
    xi = split_interface(jnp.asarray(raw), R, W, **switches)
    start = 0
    for name, size in sizes.items():
        np.testing.assert_allclose(getattr(xi, name), ACTIVATIONS[name](raw[:, start:start + size]),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
        start += size
    assert (xi.read_masks is None) == (xi.write_mask is None) == (not content_masking)
    assert (xi.link_sharpness is None) == (not link_sharpness)
    assert np.all(np.asarray(xi.read_strengths) >= 1) and np.all(np.asarray(xi.write_strength) >= 1)
    for gate in (xi.erase, xi.free_gates, xi.allocation_gate, xi.write_gate):
        gate = np.asarray(gate)
        assert np.all((gate > 0) & (gate < 1))
    np.testing.assert_allclose(np.sum(xi.read_modes, axis=-1), 1.0, rtol=1e-5)
    assert np.all(np.asarray(xi.read_modes) > 0)


def test_each_switch_adds_its_interface_parameters_and_reaches_the_model():
    def built(**switches):  # shapes only: nothing is initialised
        return nnx.eval_shape(lambda: build_model(tiny_dnc().replace(model=switches)))

    base = count_parameters(built())
    m = tiny_dnc().model
    h, r, w = m.controller_size, m.read_heads, m.memory_width
    # Each extra interface value is one more output of Linear(h, .): h weights and a bias.
    extra = dict(content_masking=(r + 1) * w * (h + 1), deallocation=0,
                 link_sharpness=2 * r * (h + 1))
    for switch in SWITCHES:
        model = built(**{switch: True})
        assert count_parameters(model) == base + extra[switch], switch
        assert getattr(model.cell, switch) is True
        assert all(getattr(model.cell, s) is False for s in SWITCHES if s != switch)


def test_a_model_with_every_switch_on_runs_and_stays_finite():
    # One model with all three: each switch alone is a separate compilation.
    logits, state = tiny(**dict.fromkeys(SWITCHES, True))(X[:1, :4])
    assert logits.shape == (1, 4, C_OUT)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves((logits, state)))


def test_deallocation_changes_outputs_only_once_a_row_has_been_read():
    # Same seed, same parameters (the switch adds none): at t = 0 nothing has been read, so
    # the retention is 1 and the outputs agree; later the freed rows are wiped.
    logits = tiny(deallocation=True)(X[:1], start(1))[0]
    plain = traced(1)[0]
    assert bool(jnp.all(jnp.isfinite(logits)))
    np.testing.assert_allclose(logits[:, 0], plain[:, 0], rtol=1e-6)
    assert not np.allclose(logits[:, 1:], plain[:, 1:], rtol=1e-4, atol=1e-5)


def _freeing_cell(deallocation):
    """A cell whose interface ignores the controller: head 0 frees what it read (free gate
    sigmoid(4)), head 1 frees nothing, and the write gate is shut (sigmoid(-20))."""
    cell = DNCCell(C_IN, C_OUT, controller_size=H, memory_rows=N, memory_width=W, read_heads=R,
                   deallocation=deallocation, rngs=nnx.Rngs(0))
    sizes = interface_sizes(R, W)
    parts = {name: np.zeros(size, np.float32) for name, size in sizes.items()}
    parts["free_gates"][:] = [4.0, -20.0]
    parts["write_gate"][:] = -20.0
    cell.interface.kernel[...] = jnp.zeros_like(cell.interface.kernel[...])
    cell.interface.bias[...] = jnp.asarray(np.concatenate(list(parts.values())))
    return cell


def test_deallocation_scales_a_freed_row_by_its_retention():
    mem = jax.random.normal(jax.random.key(3), (1, N, W))
    read = np.zeros((1, R, N), np.float32)
    read[0, 0, 3] = 1.0  # head 0 read row 3 alone at t-1; head 1 read nothing
    x = jnp.zeros((1, C_IN))
    f = float(jax.nn.sigmoid(4.0))
    for deallocation in (False, True):
        cell = _freeing_cell(deallocation)
        before = cell.initial_state(1)._replace(memory=mem, usage=jnp.ones((1, N)),
                                                read_weights=jnp.asarray(read))
        state, _, trace = jit_step(cell)(before, x)
        np.testing.assert_allclose(trace.free_gates, [[f, 0.0]], atol=1e-7)
        # Usage falls by the retention either way: row 3 is free again.
        expected_usage = np.ones((1, N))
        expected_usage[0, 3] = 1 - f
        np.testing.assert_allclose(state.usage, expected_usage, rtol=1e-6)
        # The contents too, with de-allocation only (the closed write gate changes nothing).
        expected = np.array(mem)
        if deallocation:
            expected[0, 3] *= 1 - f
        np.testing.assert_allclose(state.memory, expected, rtol=1e-5, atol=1e-6)


def test_wrong_input_width_names_what_was_expected_and_received():
    with pytest.raises(ValueError, match=r"Expected inputs with 5 channels.*got 9.*\(1, 4, 9\)"):
        MODEL(jnp.zeros((1, 4, 9)))
    with pytest.raises(ValueError, match=r"Expected x with 5 channels.*got 7"):
        MODEL.cell(None, jnp.zeros((1, 7)))


def test_wrong_input_rank_names_the_expected_layout():
    with pytest.raises(ValueError, match=r"\(B, T, C_in\).*got a 2D array of shape \(4, 5\)"):
        MODEL(jnp.zeros((4, 5)))
    # The cell takes any batch axes, as flax.nnx's cells do (tests/test_layers.py), but one
    # feature axis at least.
    with pytest.raises(ValueError, match=r"\(\*B, C_in\).*got a 0D array"):
        MODEL.cell(None, jnp.zeros(()))


@pytest.mark.parametrize("bad, message", [
    (dict(memory_rows=0), "memory_rows=0 must be a positive integer"),
    (dict(read_heads=0), "read_heads=0 must be a positive integer"),
    (dict(memory_width=2.5), "memory_width=2.5 must be a positive integer"),
    (dict(controller="gru"), r"controller='gru' is not one of \['feedforward', 'lstm'\]"),
    (dict(clip=0.0), "clip=0.0 must be a positive number"),
    (dict(link_topk=N + 1), f"link_topk={N + 1} must be None .* from 1 to memory_rows={N}"),
    (dict(link_topk=0), "link_topk=0 must be None"),
    (dict(link_topk=True), "link_topk=True must be None"),
])
def test_invalid_sizes_are_rejected_with_the_value_named(bad, message):
    with pytest.raises(ValueError, match=message):
        tiny(**bad)


def test_config_switches_must_be_booleans_and_parse_from_overrides():
    for switch in SWITCHES:
        with pytest.raises(ConfigError, match=rf"model.{switch}='yes' must be true or false"):
            validate(tiny_dnc().replace(model={switch: "yes"}))
    config = apply_sets(tiny_dnc(), ["model.deallocation=true", "model.link_sharpness=1"])
    assert (config.model.deallocation, config.model.link_sharpness) == (True, True)
    assert config.model.content_masking is False
    with pytest.raises(ConfigError, match="'yes' is not valid here; expected true or false"):
        apply_sets(tiny_dnc(), ["model.deallocation=yes"])


def test_the_registry_knows_the_dnc_has_a_memory():
    assert models.get("dnc").has_memory is True
    assert DNC.has_memory is True and plots.has_memory(MODEL)
    assert "dnc" in models.names()


def test_resolve_gives_a_dnc_configuration_that_builds_a_dnc():
    config = resolve("copy", "dnc")
    assert config.model.kind == "dnc" and validate(config) == config
    # The default has all three refinements and trains on 32 rows, evaluated on 128; the
    # paper preset is the DNC paper's model.
    assert all(getattr(config.model, s) for s in SWITCHES)
    paper = resolve("copy", "dnc", "paper").model
    assert not any(getattr(paper, s) for s in SWITCHES) and paper.eval_memory_rows is None
    model = nnx.eval_shape(lambda: build_model(config))  # shapes only
    assert isinstance(model, DNC) and model.cell.memory_rows == 32
    evaluated = nnx.eval_shape(lambda: build_model(config, evaluation=True))
    assert evaluated.cell.memory_rows == 128


def test_tiny_dnc_parameter_count_is_the_sum_of_its_layers():
    config = tiny_dnc()
    model = nnx.eval_shape(lambda: build_model(config))
    m = config.model
    h, r, w = m.controller_size, m.read_heads, m.memory_width
    c_in, c_out = 9, 8  # the copy task's input and output widths
    # An LSTM cell on [x, r_{t-1}]: four gates, each with input and recurrent weights and a bias.
    controller = 4 * h * ((c_in + r * w) + h + 1)
    size = r * w + 3 * w + 5 * r + 3
    interface = h * size + size
    output = (h + r * w) * c_out + c_out
    assert isinstance(model, DNC)
    assert count_parameters(model) == controller + interface + output


@functools.cache
def _apply(graphdef):
    return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x)[0])


def logits_of(model, x):
    """``model(x)[0]`` through one compiled program per graph, shared by the tiny DNC runs'
    models: called op by op, every call would compile its scan again."""
    graphdef, state = nnx.split(model)
    return _apply(graphdef)(state, x)


def test_a_loaded_dnc_run_gives_the_trained_models_outputs(tiny_dnc_run, samples):
    run_dir, model = tiny_dnc_run
    loaded, config = diffmem.load(run_dir)
    assert isinstance(loaded, DNC) and config == tiny_dnc()
    assert count_parameters(loaded) == count_parameters(
        nnx.eval_shape(lambda: build_model(config)))
    x = samples("copy", seed=9).inputs
    logits = logits_of(loaded, x)
    assert logits.shape == x.shape[:2] + (8,) and bool(jnp.all(jnp.isfinite(logits)))
    np.testing.assert_array_equal(logits, logits_of(model, x))


def test_a_resumed_dnc_run_is_bit_identical_to_an_uninterrupted_one(tiny_dnc_run, tmp_path,
                                                                     samples):
    # The uninterrupted run is the shared tiny_dnc_run (train_and_evaluate(tiny_dnc())).
    whole_dir, whole = tiny_dnc_run
    config = tiny_dnc()
    train_and_evaluate(config.replace(train=dict(sequences=16)), tmp_path)
    resumed = train_and_evaluate(config, tmp_path, resume=True)
    for a, b in zip(jax.tree.leaves(nnx.state(whole, nnx.Param)),
                    jax.tree.leaves(nnx.state(resumed.model, nnx.Param))):
        np.testing.assert_array_equal(a, b)

    def untimed(run_dir):
        return [{k: v for k, v in r.items() if "second" not in k}
                for r in rundir.read_metrics(run_dir)]

    assert untimed(whole_dir) == untimed(tmp_path)
    # The model train_and_evaluate returns is the one its checkpoint loads (on the
    # evaluation memory).
    loaded, _ = diffmem.load(tmp_path)
    x = samples("copy", seed=9).inputs
    np.testing.assert_array_equal(logits_of(loaded, x),
                                  logits_of(models.for_evaluation(resumed.model, config), x))


def test_eval_memory_rows_is_only_for_models_whose_parameters_ignore_the_rows():
    with pytest.raises(ConfigError, match="eval_memory_rows=64 needs a model whose parameters"):
        validate(resolve("copy", "ntm-lstm").replace(model=dict(eval_memory_rows=64)))
    with pytest.raises(ConfigError, match="eval_memory_rows"):
        validate(resolve("copy", "dnc").replace(model=dict(eval_memory_rows=0)))
    assert models.get("dnc").resizable_memory and not models.get("ntm-lstm").resizable_memory


def test_capacity_warnings_count_the_evaluation_memory_for_evaluation_sizes():
    from diffmem.config import capacity_warnings

    config = resolve("copy", "dnc").replace(model=dict(memory_rows=32, eval_memory_rows=128))
    assert capacity_warnings(config) == []  # training: length 20 in 32 rows
    assert capacity_warnings(config, [{"length": 120}]) == []  # evaluation: 128 rows
    (text,) = capacity_warnings(config, [{"length": 130}])
    assert "128 rows (model.eval_memory_rows)" in text


def test_a_dnc_run_is_loaded_and_evaluated_on_its_evaluation_memory(tiny_dnc_run):
    import json

    run_dir, model = tiny_dnc_run
    config = json.loads((run_dir / "config.json").read_text())["model"]
    assert (config["memory_rows"], config["eval_memory_rows"]) == (16, 24)
    assert model.cell.memory_rows == 24  # diffmem.load builds the evaluation memory
    trained = models.build_model(tiny_dnc())
    assert trained.cell.memory_rows == 16
    # The same parameters serve both memories.
    shapes = lambda m: jax.tree.map(jnp.shape, nnx.state(m, nnx.Param))  # noqa: E731
    assert shapes(trained) == shapes(model)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["generalisation"]  # evaluated after training, on the 24 rows
    # and checked at every log point on them too
    assert [c["label"] for c in summary["best"]["check"]] == ["length 10", "length 30",
                                                              "length 50", "length 120"]


def test_a_feed_forward_dnc_runs_and_its_gradients_are_finite():
    model = tiny(controller="feedforward")
    x = X[:1, :3]
    grads = nnx.grad(lambda m: jnp.sum(m(x)[0] ** 2))(model)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(nnx.state(grads)))
    assert model.cell.hidden_size == H  # its top layer alone feeds the interface


def test_a_model_whose_variables_depend_on_the_rows_is_not_resized():
    # validate() refuses eval_memory_rows for the NTM; for_evaluation checks the shapes too.
    config = resolve("copy", "ntm-lstm").replace(
        model=dict(controller_size=4, memory_rows=8, memory_width=3, eval_memory_rows=16))
    ntm = nnx.eval_shape(lambda: build_model(config))
    with pytest.raises(ValueError, match="depend on the number of memory rows"):
        models.for_evaluation(ntm, config)


def test_state_grad_clip_keeps_the_dncs_forward_pass_and_changes_its_gradient():
    clipped = tiny(state_grad_clip=1e-4)
    np.testing.assert_array_equal(MODEL(X)[0], clipped(X)[0])

    def grads(model):
        graphdef, params = nnx.split(model)
        loss = lambda p: jnp.sum(nnx.merge(graphdef, p)(X)[0] ** 2)  # noqa: E731
        return jax.tree.leaves(jax.grad(loss)(params))

    assert any(not np.allclose(a, b) for a, b in zip(grads(MODEL), grads(clipped)))


def test_a_sparse_link_of_k_equal_to_n_gives_the_dense_dncs_outputs_gradients_and_trace():
    # Batch 2 and a clipped state gradient: the rematerialised step and the clip of the
    # sparse link's integer indices both take part.
    dense, sparse = tiny(state_grad_clip=10.0), tiny(state_grad_clip=10.0, link_topk=N)
    start = sparse.initial_state(B)._replace(memory=MEMORY)
    assert start.link.forward_index.shape == (B, N, N)
    out, _, trace = sparse(X, start, return_trace=True)
    expected, _, expected_trace = dense(X, dense.initial_state(B)._replace(memory=MEMORY),
                                        return_trace=True)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trace.link, expected_trace.link, atol=1e-6)

    def grads(model):
        graphdef, params = nnx.split(model)
        loss = lambda p: jnp.sum(nnx.merge(graphdef, p)(X)[0] ** 2)  # noqa: E731
        return jax.grad(loss)(params)

    assert_trees_close(grads(sparse), grads(dense))


def test_link_topk_is_a_dnc_setting_that_reaches_the_model_and_is_checked():
    config = apply_sets(tiny_dnc(), ["model.link_topk=2"])
    assert nnx.eval_shape(lambda: build_model(config)).cell.link_topk == 2
    rows = config.model.memory_rows
    with pytest.raises(ConfigError, match=rf"model.link_topk={rows + 1} must be None"):
        validate(config.replace(model={"link_topk": rows + 1}))
    ntm = resolve("copy", "ntm-lstm").replace(model={"link_topk": 8})
    with pytest.raises(ConfigError, match="model.link_topk=8 is a setting of the dnc, sdnc only"):
        validate(ntm)
    # The evaluation memory must hold K rows too, found before training rather than after.
    small = resolve("copy", "dnc").replace(model={"link_topk": 24, "eval_memory_rows": 16})
    with pytest.raises(ConfigError, match="model.link_topk=24 is more than "
                                          "model.eval_memory_rows=16"):
        validate(small)


def test_a_state_with_another_link_is_refused_with_what_was_expected():
    dense_state = MODEL.initial_state(B)
    with pytest.raises(ValueError, match="holds a dense link; this DNC has a sparse link of "
                                         "K = 2"):
        tiny(link_topk=2)(X, dense_state)
    with pytest.raises(ValueError, match="holds a sparse link of K = 2; this DNC has a sparse "
                                         "link of K = 3"):
        tiny(link_topk=3)(X, tiny(link_topk=2).initial_state(B))
    with pytest.raises(ValueError, match="this DNC has a dense link"):
        MODEL(X, tiny(link_topk=2).initial_state(B))


def test_the_benchmark_gives_a_row_per_memory_size_with_its_step_time_and_planned_memory():
    from diffmem.bench import benchmark

    config = tiny_dnc().replace(model={"link_topk": 2})
    rows = benchmark([1], seconds=0.05, length=3, config=config, memory_rows=[4, 16])
    assert [(r["memory_rows"], r["link_topk"]) for r in rows] == [(4, 2), (16, 2)]
    for r in rows:
        assert r["step_ms"] == pytest.approx(1000 / r["updates_per_second"] / r["time_steps"])
    assert 0 < rows[0]["peak_bytes"] < rows[1]["peak_bytes"]  # the memory is in the update
