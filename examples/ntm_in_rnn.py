"""NTMCell in Flax's own recurrent wrappers: nnx.RNN with per-sequence lengths, and
nnx.Bidirectional. The cell follows flax.nnx's cell protocol (initialize_carry,
num_feature_axes), so nnx.RNN gives what diffmem.NTM gives.

    python examples/ntm_in_rnn.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import diffmem

B, T, C_IN, C_OUT = 3, 7, 5, 4
sizes = dict(controller_size=16, memory_rows=8, memory_width=6)
ntm = diffmem.NTM(C_IN, C_OUT, rngs=nnx.Rngs(0), **sizes)  # the layer; ntm.cell is one step

x = jax.random.normal(jax.random.key(1), (B, T, C_IN))
lengths = jnp.array([7, 4, 2])  # right-padded: sequence b is x[b, :lengths[b]]

# The layer: outputs after each sequence's length are zeros, and the state returned is the
# state after its own last step.
y, state = ntm(x, seq_lengths=lengths)

# The same cell in nnx.RNN.
rnn = nnx.RNN(ntm.cell, return_carry=True)
carry, y_rnn = rnn(x, seq_lengths=lengths)
for b, L in enumerate(lengths.tolist()):
    np.testing.assert_allclose(y_rnn[b, :L], y[b, :L], atol=1e-5)
np.testing.assert_allclose(carry.memory, state.memory, atol=1e-5)
print("nnx.RNN matches diffmem.NTM: outputs", y_rnn.shape, "memory", carry.memory.shape)

# Padding changes nothing: sequence 1 alone, unpadded, ends in the same memory.
_, alone = ntm(x[1:2, :4])
np.testing.assert_allclose(alone.memory[0], state.memory[1], atol=1e-5)
print("the padded sequence ends where the unpadded one does")

# Both directions: one NTM reads the sequence forwards, another backwards.
backward = diffmem.NTMCell(C_IN, C_OUT, rngs=nnx.Rngs(2), **sizes)
both = nnx.Bidirectional(nnx.RNN(ntm.cell), nnx.RNN(backward))
y_both = both(x, seq_lengths=lengths)
print("nnx.Bidirectional:", y_both.shape)  # (B, T, 2 * C_OUT)
assert y_both.shape == (B, T, 2 * C_OUT)
