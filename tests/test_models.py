"""The LSTM baseline, the paper's architectures and presets, and parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from diffmem import tasks
from diffmem.config import MODELS, PAPER_MODELS, ConfigError, paper_parameters, resolve
from diffmem.controllers import LSTMController
from diffmem.lstm import LSTM
from diffmem.models import build_model, count_parameters

PAIRS = [(task, model) for task in tasks.names() for model in MODELS]


def test_lstm_baseline_maps_sequences_to_logits_and_is_causal():
    model = LSTM(9, 8, hidden_size=16, layers=2, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (3, 7, 9))
    logits, state = model(x)
    assert logits.shape == (3, 7, 8) and len(state) == 2
    # Changing step 5 leaves the outputs at steps 0..4 unchanged.
    later = model(x.at[:, 5].set(0.0))[0]
    np.testing.assert_array_equal(logits[:, :5], later[:, :5])
    assert not np.allclose(logits[:, 5:], later[:, 5:])


def test_lstm_baseline_continues_from_a_state():
    model = LSTM(9, 8, hidden_size=16, layers=2, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 6, 9))
    whole, _ = model(x)
    first, state = model(x[:, :4])
    second, _ = model(x[:, 4:], state)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, rtol=1e-5, atol=1e-6)


def test_lstm_baseline_rejects_a_wrong_input_width_and_trace_requests():
    model = LSTM(9, 8, hidden_size=8, layers=1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="Expected inputs with 9 channels"):
        model(jnp.zeros((1, 3, 10)))
    with pytest.raises(ValueError, match="no memory to trace"):
        model(jnp.zeros((1, 3, 9)), return_trace=True)


def test_stacked_lstm_layers_all_see_the_input():
    lstm = LSTMController(5, 7, 3, rngs=nnx.Rngs(0))
    # Graves (2013): layer 1 reads x (5), layers 2 and 3 read [x, h] (5 + 7).
    kernels = [layer.dense_i.kernel.shape[0] for layer in lstm.layers]
    assert kernels == [5, 12, 12]


@pytest.mark.parametrize("task, model", PAIRS)
def test_paper_architectures_match_the_papers_parameter_counts(task, model):
    config = resolve(task, model, "paper")
    ours = count_parameters(nnx.eval_shape(lambda: build_model(config)))  # shapes only
    paper = paper_parameters(config)
    assert paper == PAPER_MODELS[(task, model)]["parameters"]
    # SPEC: the published counts are not fully self-consistent; within about 10% is enough.
    # The exception is the feed-forward NTM on associative recall (4 heads, 256 units): the
    # published 146,845 is 16% above what the stated architecture gives (README).
    tolerance = 0.17 if (task, model) == ("associative-recall", "ntm-ff") else 0.105
    assert abs(ours - paper) / paper < tolerance, (ours, paper)


@pytest.mark.parametrize("task, model", PAIRS)
def test_paper_preset_is_the_papers_training(task, model):
    config = resolve(task, model, "paper")
    t, m = config.train, config.model
    assert (t.optimizer, t.batch_size, t.grad_clip_mode, t.grad_clip) == ("rmsprop", 1, "value", 10.0)
    assert t.lr == PAPER_MODELS[(task, model)]["lr"]
    assert (m.memory_rows, m.memory_width, m.shift_radius) == (128, 20, 1)
    if model != "lstm":
        assert m.memory_init == "learned"  # the paper's "learned bias values"
        assert m.read_heads == m.write_heads == PAPER_MODELS[(task, model)]["heads"]


@pytest.mark.parametrize("task, model", PAIRS)
def test_default_preset_keeps_the_papers_architecture(task, model):
    default, paper = resolve(task, model), resolve(task, model, "paper")
    for field in ("kind", "controller_size", "controller_layers", "read_heads", "write_heads"):
        assert getattr(default.model, field) == getattr(paper.model, field), field
    if (task, model) in [("repeat-copy", "ntm-lstm"), ("associative-recall", "ntm-lstm"),
                         ("associative-recall", "ntm-ff")]:
        # Measured: these NTMs learn with the paper's training and not with batch-32 Adam.
        # The feed-forward one on associative recall starts from a constant memory, where the
        # paper's is learned: with it every seed of the study reached the target (README).
        init = "constant" if model == "ntm-ff" else "learned"
        assert default.model.memory_init == init
        assert default.replace(preset="paper", model=dict(memory_init="learned"),
                               train=dict(minutes=paper.train.minutes)) == paper
    else:
        assert default.train.optimizer == "adam" and default.train.batch_size == 32
    assert paper_parameters(default) == PAPER_MODELS[(task, model)]["parameters"]


def test_paper_parameters_is_none_for_a_changed_architecture():
    config = resolve("copy").replace(model=dict(controller_size=64))
    assert paper_parameters(config) is None


def test_dynamic_ngrams_validates_on_1000_sequences():
    assert resolve("dynamic-ngrams").train.val_size == 1000


def test_unknown_model_lists_the_lstm_baseline():
    with pytest.raises(ConfigError, match="ntm-lstm, ntm-ff, lstm"):
        resolve("copy", "gru")


def test_a_registered_task_without_a_paper_setting_gets_the_plain_defaults():
    from diffmem.tasks.copy import Copy

    tasks.register("short-copy", lambda: Copy(max_length=4))
    try:
        config = resolve("short-copy")
        assert config.model.controller_size == 100 and paper_parameters(config) is None
        with pytest.raises(ConfigError, match="no paper preset for task 'short-copy'"):
            resolve("short-copy", preset="paper")
    finally:
        tasks._REGISTRY.pop("short-copy")


def test_paper_parameters_of_the_lstm_baseline_ignore_the_ntm_fields():
    config = resolve("copy", "lstm").replace(model=dict(memory_rows=64))
    assert paper_parameters(config) == 1_352_969
