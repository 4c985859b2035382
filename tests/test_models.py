"""The LSTM baseline, and the parameter counts of the paper's architectures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from diffmem.config import paper_parameters, resolve
from diffmem.controllers import LSTMController
from diffmem.lstm import LSTM
from diffmem.models import build_model, count_parameters
from diffmem.presets import PAPER_MODELS

PAIRS = list(PAPER_MODELS)


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
