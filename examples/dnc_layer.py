"""The DNC as a layer of your own Flax NNX model, trained with Optax on a problem that needs
memory: see T random tokens, then name the token that stood at a queried position.

    python examples/dnc_layer.py [--steps 1000]
"""

import argparse

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import diffmem

V, T = 8, 6  # vocabulary, tokens per sequence


class Recall(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        # output_size=None: the DNC returns its controller output and read vectors, and this
        # model adds its own head.
        self.dnc = diffmem.DNC(V + T, None, controller_size=32, memory_rows=16,
                               memory_width=8, read_heads=1, rngs=rngs)
        self.head = nnx.Linear(self.dnc.out_features, V, rngs=rngs)

    def __call__(self, x):  # (B, T + 1, V + T) -> (B, V): the answer at the last step
        features, _ = self.dnc(x)
        return self.head(features[:, -1])


def batch(key, size):
    tokens = jax.random.randint(key, (size, T), 0, V)
    where = jax.random.randint(jax.random.fold_in(key, 1), (size,), 0, T)
    seen = jax.nn.one_hot(tokens, V + T)  # steps 0..T-1: a token each
    query = jax.nn.one_hot(V + where, V + T)[:, None]  # step T: which position to name
    return jnp.concatenate([seen, query], axis=1), tokens[jnp.arange(size), where]


def loss_fn(model, x, y):
    logits = model(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits


@nnx.jit
def train_step(model, optimizer, x, y):
    (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, x, y)
    optimizer.update(model, grads)
    return loss, (logits.argmax(-1) == y).mean()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    steps = parser.parse_args().steps
    model = Recall(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)
    for step in range(1, steps + 1):
        loss, accuracy = train_step(model, optimizer, *batch(jax.random.key(step), 32))
        if step % 50 == 0 or step == steps:
            print(f"step {step}: loss {float(loss):.3f}, accuracy {float(accuracy):.2f}")
