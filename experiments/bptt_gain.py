"""How the loss's gradient grows as it flows back through time in a trained memory model.

    python experiments/bptt_gain.py RUN_DIR_OR_CHECKPOINT ... [--batches 50] [--last]

For each model, on fresh training batches of its task: the gradient of the loss with respect
to the recurrent state after every step (memory, read and write weightings, read vectors,
controller state; found by adding a zero to the state at every step and differentiating by
it), and the gradient with respect to the parameters. Prints, per model, the median over
batches of each state part's gradient norm at the first step against its largest over the
last ten steps (the gain through time: how much larger the gradient is at the start of the
sequence than near its end), the largest gradient norm at any step, and the parameter
gradient's norm (median, largest, how many batches gave one over 100 times the median, and
how many a non-finite one), and for the batch with the largest, the state's gradient norm
after every step (every tenth printed, all recorded with ``--out``). The gradients are the
model's own, without the clipping of ``model.state_grad_clip``, so a model trained with it
shows what that clipping met.

With ``--clips 10,1``, also the parameter gradient as training computes it with
``model.state_grad_clip`` at each of those bounds (``diffmem.scan.scan_steps``): its norm
(median, largest) and its cosine to the unclipped gradient on the batches whose unclipped
gradient is under 100 times the median, which says how much the clipping changes an ordinary
batch's update.

A gain far above the number of steps (the loss is a sum over the steps, so the gradient at
the first step may collect up to T of them) means the backward pass multiplies the gradient
step after step: an exploding gradient, which clipping the finished gradient cannot undo once
it overflows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import diffmem
from diffmem import checkpoint, losses, models, tasks
from diffmem.scan import scan_steps


def state_gradients(model: nnx.Module, batch) -> tuple[float, dict[str, np.ndarray], jax.Array]:
    """The loss, per state part the (T,) batch-summed gradient norms after each step, and the
    parameters' gradient, flattened, for one batch."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    B, T = batch.inputs.shape[:2]
    zeros = jax.tree.map(lambda a: jnp.zeros((T,) + a.shape, a.dtype),
                         model.initial_state(B))

    def loss_fn(params, eps):
        m = nnx.merge(graphdef, params, rest)

        def body(state, xe):
            x, e = xe
            state, y, _ = m.cell.step(state, x)
            return jax.tree.map(jnp.add, state, e), y

        _, ys = jax.lax.scan(body, m.initial_state(B), (jnp.swapaxes(batch.inputs, 0, 1), eps))
        return losses.loss(jnp.swapaxes(ys, 0, 1), batch.targets, batch.mask)

    loss, (g_params, g_state) = jax.value_and_grad(loss_fn, argnums=(0, 1))(params, zeros)
    parts = {}
    for path, g in jax.tree_util.tree_flatten_with_path(g_state)[0]:
        name = jax.tree_util.keystr(path).strip(".[]'").replace("'][", ".")
        parts[name] = jnp.sqrt(jnp.sum(g.reshape(T, -1) ** 2, axis=-1))
    return loss, parts, _flat(g_params)


def flat_gradients(model: nnx.Module, batch, bounds: list[float]) -> list[jax.Array]:
    """The parameters' gradient, flattened, with the state's gradient clipped at each bound."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    B = batch.inputs.shape[0]

    def loss_fn(params, bound):
        m = nnx.merge(graphdef, params, rest)
        logits, _, _ = scan_steps(m.cell.step, m.initial_state(B), batch.inputs, False, bound)
        return losses.loss(logits, batch.targets, batch.mask)

    return [_flat(jax.grad(loss_fn)(params, bound)) for bound in bounds]


def _flat(tree) -> jax.Array:
    return jnp.concatenate([g.ravel() for g in jax.tree.leaves(tree)])


def probe(path: Path, batches: int, batch_size: int, seed: int, clips: list[float]) -> dict:
    model, config = diffmem.load(path)
    if not models.get(config.model.kind).has_memory:
        sys.exit(f"bptt_gain.py: {path} holds a {config.model.kind}, which has no memory "
                 "state to probe; name an NTM or DNC run")
    task = tasks.get(config.task)

    def gradients(key):  # one batch for both: the unclipped gradient is state_gradients'
        batch = task.sample(key, batch_size)
        return state_gradients(model, batch), flat_gradients(model, batch, clips)

    compute = jax.jit(gradients)
    losses_, params_, parts_, clipped = [], [], {}, []
    for i in range(batches):
        (loss, parts, plain), others = compute(jax.random.fold_in(jax.random.key(seed), i))
        plain = np.asarray(plain, np.float64)
        norm = np.linalg.norm(plain)
        if clips:
            others = [np.asarray(x, np.float64) for x in others]
            clipped.append([norm] + [np.linalg.norm(x) for x in others]
                           + [float(x @ plain) / (np.linalg.norm(x) * norm + 1e-300)
                              for x in others])
        losses_.append(float(loss))
        params_.append(norm)
        for name, norms in parts.items():
            parts_.setdefault(name, []).append(np.asarray(norms))
    params_ = np.asarray(params_)
    finite = np.isfinite(params_)
    out = {"model": str(path), "task": config.task, "kind": config.model.kind,
           "batches": batches, "batch_size": batch_size,
           "loss_median": float(np.median(losses_)),
           "param_grad_median": float(np.median(params_[finite])) if finite.any() else None,
           "param_grad_max": float(params_[finite].max()) if finite.any() else None,
           "param_grad_over_100x_median":
               int((params_[finite] > 100 * np.median(params_[finite])).sum())
           if finite.any() else 0,
           "param_grad_nonfinite": int((~finite).sum()), "state": {}}
    # The batch with the largest parameter gradient: the norm of the whole state's gradient
    # after every step, to see where along the sequence it grows.
    index = int(np.argmax(np.where(finite, params_, np.inf)))  # a non-finite one first
    whole = np.sqrt(sum(np.asarray(runs[index], np.float64) ** 2 for runs in parts_.values()))
    out["worst_batch"] = {"batch": index, "param_grad": float(params_[index]),
                          "state_grad_per_step": [float(v) for v in whole]}
    if clips:
        table = np.asarray(clipped)
        ordinary = table[:, 0] < 100 * np.nanmedian(table[:, 0])
        if not ordinary.any():  # every gradient zero or non-finite: nothing to compare
            ordinary = np.isfinite(table[:, 0])
        out["state_grad_clip"] = {str(b): {
            "norm_median": float(np.nanmedian(table[:, 1 + j])),
            "norm_max": float(np.nanmax(table[:, 1 + j])),
            "cosine_median_ordinary": float(np.median(table[ordinary, 1 + len(clips) + j]))
            if ordinary.any() else None,
            "cosine_min_ordinary": float(np.min(table[ordinary, 1 + len(clips) + j]))
            if ordinary.any() else None,
        } for j, b in enumerate(clips)}
    for name, runs in parts_.items():
        norms = np.stack(runs)  # (batches, T)
        first, late = norms[:, 0], norms[:, -10:].max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(late > 0, first / late, np.nan)
        out["state"][name] = {
            "first_median": float(np.median(first)),
            "late_median": float(np.median(late)),
            "gain_median": float(np.nanmedian(gain)) if np.isfinite(gain).any() else None,
            "gain_max": float(np.nanmax(gain)) if np.isfinite(gain).any() else None,
            "max_any_step": float(np.nanmax(norms)),
        }
    return out


def _g(x: float | None) -> str:
    return f"{'-':>10}" if x is None else f"{x:10.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path,
                        help="run directories (their best checkpoint) or checkpoint files")
    parser.add_argument("--last", action="store_true",
                        help="use each run's last checkpoint, not its best")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=12345,
                        help="seeds the probe's batches (not those the run trained on)")
    parser.add_argument("--clips", default="",
                        help="comma-separated bounds of model.state_grad_clip to compare, e.g. "
                             "10,1")
    parser.add_argument("--brief", action="store_true",
                        help="print the parameter gradient's line alone")
    parser.add_argument("--out", type=Path, help="append one JSON line per model here")
    args = parser.parse_args()
    if args.batches < 1 or args.batch_size < 1:
        sys.exit(f"bptt_gain.py: --batches and --batch-size must be at least 1, got "
                 f"{args.batches} and {args.batch_size}")
    try:
        clips = [float(b) for b in args.clips.split(",") if b.strip()]
    except ValueError:
        sys.exit(f"bptt_gain.py: --clips {args.clips!r} must be comma-separated positive numbers,"
                 " e.g. 10,1")
    if any(not b > 0 for b in clips):
        sys.exit(f"bptt_gain.py: --clips {args.clips!r} must be positive numbers, e.g. 10,1")
    for path in args.models:
        if args.last and path.is_dir():
            path = path / checkpoint.FILENAME
        if not path.exists():
            sys.exit(f"bptt_gain.py: {path} does not exist; name a run directory or a "
                     "checkpoint file")
        out = probe(path, args.batches, args.batch_size, args.seed, clips)
        print(f"{out['model']} ({out['task']}, {out['kind']}): loss {out['loss_median']:.2f} "
              f"nats; parameter gradient norm median {out['param_grad_median']}, "
              f"max {out['param_grad_max']}; over 100x the median in "
              f"{out['param_grad_over_100x_median']}, non-finite in "
              f"{out['param_grad_nonfinite']} of {args.batches} batches")
        for name, s in ([] if args.brief else out["state"].items()):
            print(f"  {name:28s} first step {s['first_median']:10.3g}  last ten "
                  f"{s['late_median']:10.3g}  gain median {_g(s['gain_median'])}  "
                  f"max {_g(s['gain_max'])}  largest {s['max_any_step']:10.3g}")
        profile = out["worst_batch"]["state_grad_per_step"]
        print(f"  worst batch ({out['worst_batch']['batch']}): the state's gradient norm every "
              f"10 steps from the first: "
              + " ".join(f"{v:.2g}" for v in profile[::10]))
        for bound, c in out.get("state_grad_clip", {}).items():
            print(f"  state_grad_clip {bound}: gradient norm median {c['norm_median']:.3g}, "
                  f"max {c['norm_max']:.3g}; cosine to the unclipped gradient on ordinary "
                  f"batches median {c['cosine_median_ordinary']}, "
                  f"min {c['cosine_min_ordinary']}")
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
