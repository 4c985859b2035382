"""Eager PyTorch NTM: a training-throughput baseline for ``diffmem bench``.

This is a plain, eager-mode PyTorch implementation of the Neural Turing Machine with an
LSTM controller (Graves, Wayne & Danihelka 2014), written from the equations in
``SPEC.md`` section 1. It is *not* part of the ``diffmem`` package and is used only to
measure how many training sequences per second a straightforward PyTorch NTM of the same
size as diffmem's default achieves on the copy task, so that diffmem's README can compare
against it honestly. No ``torch.compile``, no CUDA: the time loop is an ordinary Python
``for`` loop, which is exactly what an eager implementation looks like.

Model (matches diffmem's default sizes): LSTM controller with 100 units, 1 read head and
1 write head, memory 128 x 20, shift radius 1 (3 shifts). Memory starts at the constant
1e-6, the initial read/write weightings are the softmax of learned logits and the initial
read vector is learned. The controller's initial state is zero.

One training step: a batch of copy sequences of length 20 (20 data steps, 1 delimiter
step, 20 output steps = 41 steps; input width 9, target width 8), sigmoid binary
cross-entropy on the output steps, backward, gradient clipping by global norm 50 and
centred RMSProp (lr 1e-4, decay 0.95, momentum 0.9, eps 1e-4).

Run it with::

    pip install torch==2.13.0
    python benchmarks/torch_eager_ntm.py --batch-sizes 1,16,64

Options: ``--seconds`` (measured time per batch size, default 20), ``--warmup`` (untimed
warm-up steps, default 5), ``--threads`` (torch intra-op threads; default: torch's
default) and ``--json`` (machine-readable output).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Sizes (diffmem's default NTM for the copy task).
INPUT_WIDTH = 9  # 8 bits + delimiter
OUTPUT_WIDTH = 8
CONTROLLER_UNITS = 100
MEMORY_ROWS = 128  # N
MEMORY_WIDTH = 20  # M
SHIFT_RADIUS = 1  # K: shifts -1, 0, +1
SEQ_LEN = 20

MEMORY_INIT = 1e-6
COSINE_EPS = 1e-8
LOG_EPS = 1e-16

# Optimiser / training settings.
LEARNING_RATE = 1e-4
RMSPROP_ALPHA = 0.95
RMSPROP_MOMENTUM = 0.9
RMSPROP_EPS = 1e-4
CLIP_NORM = 50.0


def _head_sizes(m: int, k: int, write: bool) -> list[int]:
    """Widths of one head's raw outputs: key, beta, g, shift, gamma[, erase, add]."""
    sizes = [m, 1, 1, 2 * k + 1, 1]
    if write:
        sizes += [m, m]
    return sizes


class EagerNTM(nn.Module):
    """LSTM-controller NTM with one read head and one write head, batch-first."""

    def __init__(
        self,
        input_width: int = INPUT_WIDTH,
        output_width: int = OUTPUT_WIDTH,
        hidden: int = CONTROLLER_UNITS,
        rows: int = MEMORY_ROWS,
        width: int = MEMORY_WIDTH,
        shift_radius: int = SHIFT_RADIUS,
    ) -> None:
        super().__init__()
        self.rows = rows
        self.width = width
        self.k = shift_radius
        self.hidden = hidden

        self.controller = nn.LSTMCell(input_width + width, hidden)
        self.read_sizes = _head_sizes(width, shift_radius, write=False)
        self.write_sizes = _head_sizes(width, shift_radius, write=True)
        self.heads = nn.Linear(hidden, sum(self.read_sizes) + sum(self.write_sizes))
        self.output = nn.Linear(hidden + width, output_width)

        # Learned initial state: read vector, and logits of the initial weightings.
        self.init_read = nn.Parameter(torch.randn(width) * 0.01)
        self.init_read_logits = nn.Parameter(torch.randn(rows) * 0.01)
        self.init_write_logits = nn.Parameter(torch.randn(rows) * 0.01)

    # -- addressing (SPEC section 1, step 4) ---------------------------------------------

    @staticmethod
    def _head_params(raw: torch.Tensor, sizes: list[int]):
        parts = torch.split(raw, sizes, dim=-1)
        key = torch.tanh(parts[0])
        beta = F.softplus(parts[1])
        gate = torch.sigmoid(parts[2])
        shift = torch.softmax(parts[3], dim=-1)
        gamma = 1.0 + F.softplus(parts[4])
        extra = ()
        if len(parts) > 5:
            extra = (torch.sigmoid(parts[5]), torch.tanh(parts[6]))  # erase, add
        return (key, beta, gate, shift, gamma) + extra

    def _address(self, memory, w_prev, key, beta, gate, shift, gamma):
        # memory (B, N, M); w_prev (B, N); key (B, M); beta/gate/gamma (B, 1); shift (B, 2K+1)
        dot = torch.bmm(memory, key.unsqueeze(-1)).squeeze(-1)  # (B, N)
        norms = memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True)  # (B, N)
        cosine = dot / (norms + COSINE_EPS)
        w_c = torch.softmax(beta * cosine, dim=-1)
        w_g = gate * w_c + (1.0 - gate) * w_prev
        # Circular shift: w_s(i) = sum_d s[K+d] * w_g(i - d); torch.roll(x, d)[i] == x[i - d],
        # so a one-hot at row i shifted by d lands on row i + d.
        w_s = sum(
            shift[:, self.k + d : self.k + d + 1] * torch.roll(w_g, shifts=d, dims=-1)
            for d in range(-self.k, self.k + 1)
        )
        # Sharpening in log space.
        return torch.softmax(gamma * torch.log(w_s + LOG_EPS), dim=-1)

    # -- forward over a whole sequence ----------------------------------------------------

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T, input_width) -> logits (B, T, output_width)."""
        batch, steps, _ = inputs.shape
        memory = inputs.new_full((batch, self.rows, self.width), MEMORY_INIT)
        h = inputs.new_zeros(batch, self.hidden)
        c = inputs.new_zeros(batch, self.hidden)
        read = self.init_read.expand(batch, self.width)
        w_read = torch.softmax(self.init_read_logits, dim=-1).expand(batch, self.rows)
        w_write = torch.softmax(self.init_write_logits, dim=-1).expand(batch, self.rows)
        n_read = sum(self.read_sizes)

        outputs = []
        for t in range(steps):  # the eager Python time loop
            h, c = self.controller(torch.cat([inputs[:, t], read], dim=-1), (h, c))
            raw = self.heads(h)
            r_params = self._head_params(raw[:, :n_read], self.read_sizes)
            w_params = self._head_params(raw[:, n_read:], self.write_sizes)

            # Read first, from the memory as it stood before this step's write.
            w_read = self._address(memory, w_read, *r_params)
            read = torch.bmm(w_read.unsqueeze(1), memory).squeeze(1)  # (B, M)

            # Then write.
            erase, add = w_params[5], w_params[6]
            w_write = self._address(memory, w_write, *w_params[:5])
            ww = w_write.unsqueeze(-1)  # (B, N, 1)
            memory = memory * (1.0 - ww * erase.unsqueeze(1)) + ww * add.unsqueeze(1)

            outputs.append(self.output(torch.cat([h, read], dim=-1)))
        return torch.stack(outputs, dim=1)


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
    return torch.optim.RMSprop(
        model.parameters(),
        lr=LEARNING_RATE,
        alpha=RMSPROP_ALPHA,
        momentum=RMSPROP_MOMENTUM,
        eps=RMSPROP_EPS,
        centered=True,
    )


def train_step(model, optimizer, batch: int, length: int = SEQ_LEN) -> torch.Tensor:
    """One full training step on a fresh copy batch; returns the (detached) loss."""
    inputs, targets, mask = make_copy_batch(batch, length)
    logits = model(inputs)
    # Only the output steps count: slice them out (mask is 1 exactly there).
    out = mask[0].bool()
    loss = F.binary_cross_entropy_with_logits(logits[:, out], targets[:, out])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
    optimizer.step()
    return loss.detach()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def benchmark(batch: int, seconds: float, warmup: int) -> dict:
    torch.manual_seed(0)
    model = EagerNTM()
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
        "sequences_per_second": steps * batch / elapsed,
        "steps": steps,
        "seconds": elapsed,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "_final_loss": final_loss,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1", help="comma-separated, e.g. 1,16,64")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per batch size")
    parser.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results")
    args = parser.parse_args(argv)

    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        parser.error("--batch-sizes must be positive integers")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    if not args.json:
        n_params = count_parameters(EagerNTM())
        print(f"eager PyTorch NTM baseline (torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads)")
        print(f"parameters: {n_params:,}  (LSTM 100, 1R/1W heads, memory "
              f"{MEMORY_ROWS}x{MEMORY_WIDTH}, copy length {SEQ_LEN})")
        print(f"{'batch':>6} {'steps':>7} {'seconds':>8} {'seq/s':>10} {'loss':>8}")

    results = []
    for batch in batch_sizes:
        res = benchmark(batch, args.seconds, args.warmup)
        final_loss = res.pop("_final_loss")
        results.append(res)
        if not args.json:
            print(f"{batch:>6} {res['steps']:>7} {res['seconds']:>8.2f} "
                  f"{res['sequences_per_second']:>10.2f} {final_loss:>8.4f}", flush=True)

    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
