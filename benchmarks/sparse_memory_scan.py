"""A toy sparse access memory (linear controller, B = 1, R = 1, K = 4, W = 32, T = 20) at N
rows: forward and backward time per step and the memory XLA plans, through jax.lax.scan
("plain") or sparse_memory.reversible_scan ("rev"). Exploratory, for issue 36."""

import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffmem import sparse_memory as sm

B, R, K, W, T = 1, 1, 4, 32, 20
N, mode = int(sys.argv[1]), sys.argv[2]  # python benchmarks/sparse_memory_scan.py N plain|rev
hidden = 64
rng = np.random.default_rng(0)
shapes = dict(x=(8, hidden), r=(R * W, hidden), k=(hidden, R * W), s=(hidden, R),
              g=(hidden, 2), a=(hidden, W), y=(R * W, 8))
params = {n: jnp.asarray(rng.normal(size=s) * 0.3, jnp.float32) for n, s in shapes.items()}
def step(params, small, memory, x):
    reads_prev, index_prev, weights_prev, last, t = small
    h = jnp.tanh(x @ params["x"] + reads_prev.reshape(B, -1) @ params["r"])
    keys = (h @ params["k"]).reshape(B, R, W)
    strengths = jax.nn.softplus(h @ params["s"])
    gate, interp = jax.nn.sigmoid(h @ params["g"]).T
    lru = sm.least_recently_used(last)
    w = sm.write_weights(weights_prev, gate, interp)
    memory, touched, old = sm.sparse_write(memory, index_prev, w, lru, h @ params["a"])
    index, rw, reads = sm.sparse_read(memory, keys, strengths, K)
    last = sm.accessed(last, t, touched, w, index, rw)
    y = reads.reshape(B, -1) @ params["y"]
    return (reads, index, rw, last, t + 1), memory, y, (touched, old)
small = (jnp.zeros((B, R, W)), jnp.tile(jnp.arange(K, dtype=jnp.int32), (B, R, 1)),
         jnp.full((B, R, K), 1.0 / K), jnp.full((B, N), -1, jnp.int32),
         jnp.zeros((B,), jnp.int32))
memory = jnp.asarray(rng.normal(size=(B, N, W)) * 0.1, jnp.float32)
xs = jnp.asarray(rng.normal(size=(T, B, 8)), jnp.float32)
def loss(params, memory):
    if mode == "rev":
        s, m, ys = sm.reversible_scan(step, lambda m, r: sm.undo_write(m, *r), params, small,
                                      memory, xs)
    else:
        def body(c, x):
            s, m, y, _ = step(params, c[0], c[1], x)
            return (s, m), y
        _, ys = jax.lax.scan(body, (small, memory), xs)
    return (ys ** 2).sum()
f = jax.jit(jax.grad(loss))
c = f.lower(params, memory).compile()
ma = c.memory_analysis()
planned = (ma.argument_size_in_bytes + ma.output_size_in_bytes + ma.temp_size_in_bytes
           - ma.alias_size_in_bytes)
jax.block_until_ready(c(params, memory))
t0, n = time.perf_counter(), 0
while time.perf_counter() - t0 < 5:
    jax.block_until_ready(c(params, memory))
    n += 1
dt = (time.perf_counter() - t0) / n
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"N={N} {mode}: {dt * 1e3 / T:.2f} ms/step fwd+bwd, planned {planned / 2**20:.0f} MiB, "
      f"temp {ma.temp_size_in_bytes / 2**20:.0f} MiB, rss peak {rss:.0f} MiB")
