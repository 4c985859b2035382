"""A task of your own, trained from the command line: reverse a sequence of random bit vectors.

    cd examples && diffmem train custom_task:Reverse --model ntm-lstm --minutes 5
    diffmem eval runs/reverse-... --sizes 8,16

`diffmem train MODULE:CLASS` imports the module (the current directory is on the path) and
builds the class; eval, plot and report find it the same way.
"""

import jax
import jax.numpy as jnp

from diffmem.tasks import Batch, Task


class Reverse(Task):
    """Input: L vectors, then a delimiter on its own channel. Target: the L vectors last first.

        step    0  1  2  3  4  5  6
        input   a  b  c  |  .  .  .
        target  .  .  .  .  c  b  a      scored at steps L+1 .. 2L only
    """

    name, bits, max_length = "reverse", 6, 8
    input_size, output_size = bits + 1, bits
    target_bits = 0.1  # learned below 0.1 bits per sequence
    eval_sizes = ({"length": 8}, {"length": 12}, {"length": 16})

    def sample(self, key, batch_size, length=None):
        longest = length or self.max_length
        L = (jnp.full((batch_size,), length) if length else
             jax.random.randint(key, (batch_size,), 1, longest + 1))[:, None]  # (B, 1)
        bits = jax.random.bernoulli(jax.random.fold_in(key, 1), 0.5,
                                    (batch_size, longest, self.bits)).astype(jnp.float32)
        t = jnp.arange(2 * longest + 1)[None]  # (1, T)
        seen = jnp.take_along_axis(bits, jnp.clip(t, 0, longest - 1)[..., None], 1)
        inputs = jnp.concatenate([seen * (t < L)[..., None], (t == L)[..., None]], -1)
        back = jnp.clip(2 * L - t, 0, longest - 1)  # step L + 1 + i shows vector L - 1 - i
        targets = jnp.take_along_axis(bits, back[..., None], 1)
        mask = ((t > L) & (t <= 2 * L)).astype(jnp.float32)  # (B, T)
        return Batch(inputs.astype(jnp.float32), targets * mask[..., None], mask)

    def parse_size(self, text):  # `diffmem eval --sizes 8,16`
        return {"length": int(text)}

    def describe_size(self, size):
        return f"length {size['length']}" if size else "lengths 1 to 8"
