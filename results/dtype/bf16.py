import jax
import jax.numpy as jnp
from flax import nnx

from diffmem import demo, losses, tasks, trained
from diffmem.models import build_model

bf16, f32 = jnp.bfloat16, jnp.float32
SETTINGS = {"dtype=bf16": dict(dtype=bf16),
            "param_dtype=bf16, dtype=f32": dict(dtype=f32, param_dtype=bf16),
            "dtype=param_dtype=bf16": dict(dtype=bf16, param_dtype=bf16)}
for task_name, kind in demo.available():
    reference, config = trained.load(demo.pretrained_path(task_name, kind))
    task = tasks.get(task_name)
    sizes = [None] + ([task.eval_sizes[-1]] if task.eval_sizes != ({},) else [])
    batches = [task.sample(jax.random.key(7), 64, **(s or {})) for s in sizes]
    refs = [reference(b.inputs)[0] for b in batches]
    for name, args in SETTINGS.items():
        model = build_model(config, evaluation=True, **args)
        cast = args.get("param_dtype", f32)
        nnx.update(model, jax.tree.map(lambda a, c=cast: a.astype(c), nnx.state(reference)))
        for size, b, y0 in zip(sizes, batches, refs):
            y = model(b.inputs)[0].astype(f32)
            m0, m = losses.metrics(y0, b.targets, b.mask), losses.metrics(y, b.targets, b.mask)
            dp = jnp.max(jnp.abs(jax.nn.sigmoid(y) - jax.nn.sigmoid(y0)) * b.mask[..., None])
            print(task_name, kind, name, size or "training", f"bits {float(m0['bits']):.3f} "
                  f"-> {float(m['bits']):.3f}, max |dp| {float(dp):.4f}")
