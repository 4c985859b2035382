"""Eager PyTorch DNC (the ``dnc`` package): a training-throughput baseline for ``diffmem bench``.

Measures how many training sequences per second the Differentiable Neural Computer of the
``dnc`` package on PyPI (ixaxaar/pytorch-dnc, eager PyTorch) achieves on the copy task, at
the sizes of diffmem's copy DNC (``diffmem.config.resolve("copy", "dnc")``), so that diffmem's
``diffmem bench --model dnc`` can be compared against a DNC that people actually use. The
package is used as an installed library; it is *not* a dependency of ``diffmem``. No
``torch.compile``, no CUDA: the package's time loop is an ordinary Python ``for`` loop.

Install it in a virtual environment of its own (versions used: Python 3.11, torch 2.13.0+cpu,
dnc 1.1.0, numpy 2.4.6)::

    python -m venv /tmp/torchdnc-venv
    /tmp/torchdnc-venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    /tmp/torchdnc-venv/bin/pip install numpy==2.4.6
    /tmp/torchdnc-venv/bin/pip install --no-deps dnc==1.1.0
    /tmp/torchdnc-venv/bin/python benchmarks/torch_eager_dnc.py --batch-sizes 1,16,64

(``pip install torch`` from PyPI works too, but on Linux x86-64 it pulls the CUDA build and its
libraries; the CPU wheel is smaller and is what the numbers were taken with. ``--no-deps``
because dnc 1.1.0 declares ``flann``, which the package only needs for its sparse models, SAM
and SDNC, imported lazily; the plain DNC needs torch and numpy. dnc 1.1.0 imports and runs
unchanged on torch 2.13: no compatibility patch is applied.)

Options: ``--seconds`` (measured time per batch size, default 20), ``--warmup`` (untimed
warm-up steps, default 5), ``--threads`` (torch intra-op threads; default: torch's default)
and ``--json`` (machine-readable output), as in ``benchmarks/torch_eager_ntm.py``; and the
sizes: ``--memory-rows`` (one or a comma-separated list, default 128), ``--memory-width``
(default 20), ``--read-heads`` (default 1) and ``--controller-size`` (default 100). The DNC
paper's bAbI model is ``--memory-rows 256 --memory-width 64 --read-heads 4
--controller-size 256`` (results/dnc-scale/run.sh).

Model: ``dnc.DNC(9, 100, rnn_type="lstm", num_layers=1, num_hidden_layers=1, nr_cells=128,
cell_size=20, read_heads=1, clip=20)``: one LSTM layer of 100 units, memory 128 x 20, one read
head and one write head, one linear interface layer of R*W + 3W + 5R + 3 = 88 values, as in
diffmem's copy DNC. 62,256 parameters against diffmem's 61,856: torch's LSTM has two bias
vectors (400 more values). Where it differs from diffmem's DNC, and why that leaves the
amount of work per step essentially the same:

- Output layer. The package maps [h_t, r_t] linearly to ``input_size`` (9) values; this script
  replaces that layer (``model.output``) by a linear map of the same input to the 8 output
  bits, which is exactly diffmem's output layer. No extra layer is added.
- The package clips the controller output h_t to +-20 before the interface layer (a no-op for
  an LSTM, whose outputs lie in [-1, 1]); diffmem clips the interface vector. Both are one
  elementwise clamp.
- The controller's initial state is drawn at random (Xavier-uniform) on every forward call,
  and its memory state is zeros, as in diffmem; the random draw is one small op per sequence.
- The package concatenates every step's input with the read vectors of *before the sequence*
  (zeros) rather than of the previous step (its time loop builds all the controller inputs
  first), so its controller never sees what it read. The controller's input is still
  9 + 20 wide, so the arithmetic is the same; only the trained model differs, which does not
  matter for throughput.
- Strengths use softplus (diffmem: 1 + softplus) and the write vector tanh (diffmem:
  identity); the free list is sorted with ``topk``. Elementwise differences only.

One training step, as diffmem's ``train_step`` for the copy DNC: a fresh batch of copy
sequences of length 20 (20 data steps, 1 delimiter step, 20 output steps = 41 steps; input
width 9, target width 8), sigmoid cross-entropy summed over the output steps and bits and
averaged over the batch, backward, gradient clipping by global norm 10 and Adam (lr 3e-3).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import dnc
import torch
import torch.nn as nn
import torch.nn.functional as F

# Sizes (diffmem's copy DNC, resolve("copy", "dnc")).
INPUT_WIDTH = 9  # 8 bits + delimiter
OUTPUT_WIDTH = 8
CONTROLLER_UNITS = 100
MEMORY_ROWS = 128  # N
MEMORY_WIDTH = 20  # W
READ_HEADS = 1  # R
CLIP = 20.0
SEQ_LEN = 20

# Optimiser settings (diffmem's copy DNC).
LEARNING_RATE = 3e-3
CLIP_NORM = 10.0


def build_model(rows: int = MEMORY_ROWS, width: int = MEMORY_WIDTH, heads: int = READ_HEADS,
                units: int = CONTROLLER_UNITS) -> nn.Module:
    """The package's DNC at diffmem's sizes (``rows`` memory rows of ``width``, ``heads`` read
    heads, an LSTM of ``units``), with an 8-bit output layer (see the docstring)."""
    model = dnc.DNC(
        input_size=INPUT_WIDTH,
        hidden_size=units,
        rnn_type="lstm",
        num_layers=1,
        num_hidden_layers=1,  # the package's default, 2, would stack two LSTM layers
        nr_cells=rows,
        cell_size=width,
        read_heads=heads,
        batch_first=True,
        gpu_id=-1,  # CPU
        independent_linears=False,  # one interface layer, as in diffmem
        share_memory=True,
        clip=CLIP,
    )
    # Its forward applies self.output to [h_t, r_t] at each step; make that the 8-bit output.
    model.output = nn.Linear(units + heads * width, OUTPUT_WIDTH)
    return model


def make_copy_batch(batch: int, length: int = SEQ_LEN):
    """Copy task (SPEC section 2): inputs (B, 2L+1, 9), targets (B, 2L+1, 8), mask (B, 2L+1)."""
    steps = 2 * length + 1
    bits = torch.randint(0, 2, (batch, length, OUTPUT_WIDTH)).float()
    inputs = torch.zeros(batch, steps, INPUT_WIDTH)
    inputs[:, :length, :OUTPUT_WIDTH] = bits
    inputs[:, length, OUTPUT_WIDTH] = 1.0  # delimiter
    targets = torch.zeros(batch, steps, OUTPUT_WIDTH)
    targets[:, length + 1 :] = bits
    mask = torch.zeros(batch, steps)
    mask[:, length + 1 :] = 1.0
    return inputs, targets, mask


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)


def train_step(model, optimizer, batch: int, length: int = SEQ_LEN) -> torch.Tensor:
    """One full training step on a fresh copy batch; returns the (detached) loss."""
    inputs, targets, mask = make_copy_batch(batch, length)
    logits, _ = model(inputs)  # the package returns (outputs, hidden state)
    # Only the output steps count: slice them out (mask is 1 exactly there). diffmem's loss:
    # nats summed over a sequence's output bits, averaged over the batch.
    out = mask[0].bool()
    bce = F.binary_cross_entropy_with_logits(logits[:, out], targets[:, out], reduction="sum")
    loss = bce / batch
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
    optimizer.step()
    return loss.detach()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def benchmark(batch: int, seconds: float, warmup: int, rows: int = MEMORY_ROWS,
              width: int = MEMORY_WIDTH, heads: int = READ_HEADS,
              units: int = CONTROLLER_UNITS) -> dict:
    torch.manual_seed(0)
    model = build_model(rows, width, heads, units)
    optimizer = make_optimizer(model)
    loss = None
    for _ in range(warmup):
        loss = train_step(model, optimizer, batch)
    steps = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds or steps == 0:
        loss = train_step(model, optimizer, batch)
        steps += 1
        elapsed = time.perf_counter() - start
    final_loss = float(loss)
    if not math.isfinite(final_loss):
        raise RuntimeError(f"non-finite loss {final_loss} at batch size {batch}")
    return {
        "batch_size": batch,
        "memory_rows": rows,
        "memory_width": width,
        "read_heads": heads,
        "controller_size": units,
        "parameters": count_parameters(model),
        "sequences_per_second": steps * batch / elapsed,
        "steps": steps,
        "seconds": elapsed,
        "torch_version": torch.__version__,
        "dnc_version": _dnc_version(),
        "threads": torch.get_num_threads(),
        "_final_loss": final_loss,
    }


def _dnc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dnc")
    except PackageNotFoundError:  # imported from a source checkout
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1", help="comma-separated, e.g. 1,16,64")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per batch size")
    parser.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--memory-rows", default=str(MEMORY_ROWS),
                        help="memory rows N, comma-separated (diffmem's DNC trains copy on 32)")
    parser.add_argument("--memory-width", type=int, default=MEMORY_WIDTH, help="row width W")
    parser.add_argument("--read-heads", type=int, default=READ_HEADS, help="read heads R")
    parser.add_argument("--controller-size", type=int, default=CONTROLLER_UNITS,
                        help="LSTM units (the DNC paper's bAbI model: N 256, W 64, R 4, 256)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results")
    args = parser.parse_args(argv)
    try:
        rows_list = [int(n) for n in args.memory_rows.split(",") if n.strip()]
    except ValueError:
        rows_list = []
    if not rows_list or any(n < 1 for n in rows_list):
        parser.error(f"--memory-rows {args.memory_rows!r} must be comma-separated positive "
                     "integers")
    for name in ("memory_width", "read_heads", "controller_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")

    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        parser.error("--batch-sizes must be positive integers")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    sizes = dict(width=args.memory_width, heads=args.read_heads, units=args.controller_size)
    if not args.json:
        print(f"eager PyTorch DNC baseline (dnc {_dnc_version()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads)")
        print(f"LSTM {args.controller_size}, {args.read_heads} read heads, rows of width "
              f"{args.memory_width}, copy length {SEQ_LEN}")
        print(f"{'rows':>6} {'batch':>6} {'steps':>7} {'seconds':>8} {'seq/s':>10} {'loss':>8}")

    results = []
    for rows in rows_list:
        for batch in batch_sizes:
            res = benchmark(batch, args.seconds, args.warmup, rows, **sizes)
            final_loss = res.pop("_final_loss")
            results.append(res)
            if not args.json:
                print(f"{rows:>6} {batch:>6} {res['steps']:>7} {res['seconds']:>8.2f} "
                      f"{res['sequences_per_second']:>10.2f} {final_loss:>8.4f}", flush=True)

    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
