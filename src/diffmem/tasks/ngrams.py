"""The dynamic N-grams task (paper section 4.4): predict the next bit of a sequence drawn from
a random 6-gram distribution, and the Bayes-optimal predictor to judge the model against."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from diffmem.tasks.base import Batch, Task


class DynamicNGrams(Task):
    """Predict bit t + 1 of a 200-bit sequence from bits 0..t.

    Every sequence has its own table of 2^5 = 32 probabilities, one per 5-bit context, drawn
    i.i.d. from Beta(1/2, 1/2). Bits 0..4 are fair coin flips; bit t >= 5 is 1 with the table's
    probability for the context (bits t-5..t-1). The model sees the bits one per step and must
    infer the table as it goes. Layout (T = 200):

                    t: 0   1   2   3   4   5  ... 198 199
        inputs    0:   b0  b1  b2  b3  b4  b5 ... b198 b199
        targets   0:   b1  b2  b3  b4  b5  b6 ... b199  .
        mask:          0   0   0   0   1   1  ...  1    0

    The mask keeps the 195 predictions whose 5-bit context is complete (t = 4..198).
    ``optimal_bits`` gives the Bayes-optimal predictor's bits per sequence on a batch.
    """

    name = "dynamic-ngrams"
    # Learned: within this many bits per sequence of the Bayes-optimal predictor.
    target_bits_above_optimum = 2.0
    target_bits = None
    eval_sizes = ({},)

    def __init__(self, length: int = 200, context: int = 5):
        if context < 1 or length <= context:
            raise ValueError(
                f"dynamic-ngrams needs context >= 1 and length > context, got "
                f"length={length}, context={context}"
            )
        self.length, self.context = length, context
        self.input_size = self.output_size = 1

    def training_range(self) -> str:
        return f"sequences of {self.length} bits from random {self.context}-bit-context tables"

    def sample(self, key: jax.Array, batch_size: int) -> Batch:
        """A batch of ``batch_size`` sequences, each with its own fresh probability table."""
        key_table, key_bits = jax.random.split(key)
        n_contexts = 2 ** self.context
        table = jax.random.beta(key_table, 0.5, 0.5, (batch_size, n_contexts))  # (B, 32)
        uniform = jax.random.uniform(key_bits, (self.length, batch_size))
        rows = jnp.arange(batch_size)

        def step(carry, u):
            ctx, filled = carry  # the last `context` bits as an integer, how many are real
            p = jnp.where(filled >= self.context, table[rows, ctx], 0.5)
            bit = (u < p).astype(jnp.int32)
            ctx = ((ctx << 1) | bit) & (n_contexts - 1)
            return (ctx, jnp.minimum(filled + 1, self.context)), bit

        init = (jnp.zeros((batch_size,), jnp.int32), jnp.zeros((), jnp.int32))
        _, bits = jax.lax.scan(step, init, uniform)
        bits = jnp.swapaxes(bits, 0, 1).astype(jnp.float32)  # (B, T)
        targets = jnp.pad(bits[:, 1:], ((0, 0), (0, 1)))  # bit t + 1 at step t
        t = jnp.arange(self.length)[None, :]
        mask = jnp.broadcast_to((t >= self.context - 1) & (t < self.length - 1),
                                bits.shape).astype(jnp.float32)
        return Batch(bits[..., None], targets[..., None], mask)

    def context_counts(self, bits: jax.Array) -> jax.Array:
        """How often each step's context was followed by a 0 and by a 1 before it.

        ``bits`` (B, T) -> (B, T, 2): at step t, with c the context of bits t-4..t, N0 and N1,
        the counts of 0s and 1s that followed c earlier in the same sequence (0 where the
        context is incomplete).
        """
        bits = jnp.asarray(bits).astype(jnp.int32)
        B, T = bits.shape
        n_contexts = 2 ** self.context
        rows = jnp.arange(B)

        def step(carry, bit):
            counts, ctx, filled = carry  # counts (B, 32, 2): N0 and N1 per context
            # The bit just read followed ctx; count it once ctx holds `context` real bits.
            counts = counts.at[rows, ctx, bit].add(jnp.where(filled >= self.context, 1.0, 0.0))
            ctx = ((ctx << 1) | bit) & (n_contexts - 1)
            filled = jnp.minimum(filled + 1, self.context)
            return (counts, ctx, filled), counts[rows, ctx]

        init = (jnp.zeros((B, n_contexts, 2), jnp.float32), jnp.zeros((B,), jnp.int32),
                jnp.zeros((), jnp.int32))
        _, n = jax.lax.scan(step, init, jnp.swapaxes(bits, 0, 1))
        return jnp.swapaxes(n, 0, 1)

    def optimal_probabilities(self, bits: jax.Array) -> jax.Array:
        """The Bayes-optimal P(next bit = 1) after each step (paper eq. 10).

        ``bits`` (B, T) -> (B, T): P = (N1 + 1/2) / (N1 + N0 + 1) with N0 and N1 from
        ``context_counts``; 1/2 where the context is incomplete (no counts yet).
        """
        n = self.context_counts(bits)
        return (n[..., 1] + 0.5) / (n[..., 0] + n[..., 1] + 1.0)

    def optimal_bits(self, batch: Batch) -> jax.Array:
        """Bits per sequence (B,) of the Bayes-optimal predictor on the batch's masked steps."""
        p = self.optimal_probabilities(batch.inputs[..., 0])
        y = batch.targets[..., 0]
        likelihood = jnp.where(y > 0.5, p, 1.0 - p)
        return -jnp.sum(jnp.log2(likelihood) * batch.mask, axis=-1)
