"""Build the README's results table from the reproduction records, beside the paper's figures.

    python experiments/results_table.py                      # print the Markdown tables
    python experiments/results_table.py --readme README.md   # rewrite them in the README

Two tables: the results of each task and model beside the paper's, and the parameter counts
of the paper's architectures here beside the paper's.

The records are the JSON files written by experiments/reproduce.py (results/reproduce/ on the
CPU, results/gpu/ from experiments/gpu_run.sh). RUNS below says which record fills each cell;
a cell with no record says "not run". tests/test_readme.py checks that the README's tables
are this script's output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKERS = {"results": ("<!-- results-table:start -->", "<!-- results-table:end -->"),
           "parameters": ("<!-- parameters-table:start -->", "<!-- parameters-table:end -->")}
TASKS = ("copy", "repeat-copy", "associative-recall", "dynamic-ngrams", "priority-sort")
MODELS = ("ntm-lstm", "ntm-ff", "lstm")

# The record behind each cell, relative to results/. Where a cell uses the paper's preset or a
# resumed or changed run, the "settings" column and the README's text say so.
RUNS = {
    ("copy", "ntm-lstm"): "reproduce/copy-ntm-lstm-default.json",
    ("copy", "ntm-ff"): "reproduce/copy-ntm-ff-default.json",
    ("copy", "lstm"): "reproduce/copy-lstm-default.json",
    ("repeat-copy", "ntm-lstm"): "reproduce/repeat-copy-ntm-lstm-paper.json",
    ("repeat-copy", "ntm-ff"): "reproduce/repeat-copy-ntm-ff-paper.json",
    ("repeat-copy", "lstm"): "gpu/repeat-copy-lstm-default.json",
    ("associative-recall", "ntm-lstm"): "reproduce/associative-recall-ntm-lstm-paper.json",
    ("associative-recall", "ntm-ff"): "reproduce/associative-recall-ntm-ff-paper.json",
    ("associative-recall", "lstm"): "reproduce/associative-recall-lstm-default.json",
    ("dynamic-ngrams", "ntm-lstm"): "reproduce/dynamic-ngrams-ntm-lstm-default.json",
    ("dynamic-ngrams", "ntm-ff"): "reproduce/dynamic-ngrams-ntm-ff-default.json",
    ("dynamic-ngrams", "lstm"): "gpu/dynamic-ngrams-lstm-default.json",
    ("priority-sort", "ntm-lstm"): "gpu/priority-sort-ntm-lstm-default-resumed.json",
    ("priority-sort", "ntm-ff"): "gpu/priority-sort-ntm-ff-default-lr1e-3.json",
    ("priority-sort", "lstm"): "gpu/priority-sort-lstm-default.json",
}

# The paper's figures (Graves et al. 2014, sections 4.1-4.5; ~ read off its plots; SPEC).
PAPER = {
    ("copy", "ntm-lstm"): "near 0 bits before 100k sequences; generalises to 120 with few errors",
    ("copy", "ntm-ff"): "near 0 bits before 100k sequences; generalises to 120 with few errors",
    ("copy", "lstm"): "~5 bits at 100k, ~0.5 at 1M sequences; fails beyond length 20",
    ("repeat-copy", "ntm-lstm"): "near 0 bits; copies (20, 10) and (10, 20), end marker "
                                 "misplaced beyond 11 repeats",
    ("repeat-copy", "ntm-ff"): "near 0 bits; copies (20, 10) and (10, 20), end marker "
                               "misplaced beyond 11 repeats",
    ("repeat-copy", "lstm"): "learns more slowly; fails (20, 10) and (10, 20)",
    ("associative-recall", "ntm-lstm"): "near 0 within ~30k episodes",
    ("associative-recall", "ntm-ff"): "near 0 within ~30k episodes; near perfect at 12 items, "
                                      "< 1 bit at 15",
    ("associative-recall", "lstm"): "never reaches 0 in 1M episodes",
    ("dynamic-ngrams", "ntm-lstm"): "~1-3 bits above the optimum (~131-133)",
    ("dynamic-ngrams", "ntm-ff"): "~1-3 bits above the optimum (~131-133)",
    ("dynamic-ngrams", "lstm"): "~4-6 bits above the optimum",
    ("priority-sort", "ntm-lstm"): "~18-20 bits after 1M sequences",
    ("priority-sort", "ntm-ff"): "~18-20 bits after 1M sequences",
    ("priority-sort", "lstm"): "~58 bits after 1M sequences",
}


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def hardware(record: dict) -> str:
    """ "CPU", or "GPU (device kind)" from the recorded machine description."""
    machine = record["summary"]["machine"]
    if " on gpu " not in machine:
        return "CPU"
    kind = machine.rsplit("(", 1)[-1].rstrip(")")
    return f"GPU ({kind.removeprefix('NVIDIA ')})"


def settings_cell(record: dict) -> str:
    t = record["config"]["train"]
    optimizer = "Adam" if t["optimizer"] == "adam" else "RMSProp"
    return f"{record['preset']}: {optimizer} {t['lr']:g}, batch {t['batch_size']}"


def training_cell(record: dict) -> str:
    s = record["summary"]
    resumed = ", resumed once" if "--resume" in record["command"] else ""
    return (f"{s['sequences']:,} seq, {s['train_seconds'] / 60:.1f} min, "
            f"{hardware(record)}{resumed}")


def bits_cell(record: dict) -> str:
    s = record["summary"]
    v = s["validation"]
    bits = f"{v['bits']:.2f}" if v["bits"] >= 0.1 else f"{v['bits']:.3f}"
    if "optimal_bits" in v:
        gap = v["bits"] - v["optimal_bits"]
        text = f"{bits} (optimum {v['optimal_bits']:.1f}, {gap:+.1f})"
    else:
        text = bits
    if s["reached_target"]:
        return f"{text}; target < {s['target_bits']:.4g} reached"
    gap = v["bits"] - s["target_bits"]
    return f"{text}; target < {s['target_bits']:.4g} **not reached** (gap {gap:.2f})"


def generalisation_cell(record: dict) -> str:
    task, rows = record["task"], record["summary"]["generalisation"]
    by = {json.dumps(r["size"], sort_keys=True): r for r in rows}
    pick = lambda **size: by[json.dumps(size, sort_keys=True)]  # noqa: E731
    wrong = lambda r: f"{100 * r['wrong_bit_fraction']:.2g}%"  # noqa: E731
    if task == "copy":
        return ", ".join(f"{L}: {wrong(pick(length=L))}" for L in (20, 50, 120)) + " wrong bits"
    if task == "repeat-copy":
        return "; ".join(f"({L}, {R}): {pick(length=L, repeats=R)['bits']:.1f} bits, "
                         f"{wrong(pick(length=L, repeats=R))} wrong" for L, R in ((20, 10), (10, 20)))
    if task == "associative-recall":
        return ", ".join(f"{k} items: {pick(items=k)['bits']:.2f}" for k in (6, 12, 15, 20)) + \
            " bits"
    return "(trained distribution only)"


def table(results: Path) -> str:
    head = ["task", "model", "settings", "trained (sequences, time, hardware)",
            "validation bits / sequence", "generalisation", "paper"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task in TASKS:
        for model in MODELS:
            record = load(results / RUNS[(task, model)])
            if record is None:
                cells = ["-", "not run", "-", "-"]
            else:
                cells = [settings_cell(record), training_cell(record), bits_cell(record),
                         generalisation_cell(record)]
            lines.append("| " + " | ".join([task, model, *cells, PAPER[(task, model)]]) + " |")
    return "\n".join(lines)


def parameters_table() -> str:
    """Parameter counts of the paper's architectures here, beside the paper's (Tables 1-3)."""
    from flax import nnx

    from diffmem.config import PAPER_MODELS, paper_parameters, resolve
    from diffmem.models import build_model, count_parameters

    lines = ["| task | model | architecture | parameters here | paper | difference |",
             "|---|---|---|---|---|---|"]
    for task in TASKS:
        for model in MODELS:
            config = resolve(task, model, "paper")
            ours = count_parameters(nnx.eval_shape(lambda: build_model(config)))
            paper = paper_parameters(config)
            spec = PAPER_MODELS[(task, model)]
            layers = f"{spec['layers']}x{spec['size']}" if spec["layers"] > 1 else str(spec["size"])
            arch = (f"{layers} LSTM" if model == "lstm" else
                    f"{spec['heads']} read + {spec['heads']} write heads, "
                    f"{'LSTM' if model == 'ntm-lstm' else 'feed-forward'} {layers}")
            lines.append(f"| {task} | {model} | {arch} | {ours:,} | {paper:,} | "
                         f"{100 * (ours - paper) / paper:+.1f}% |")
    return "\n".join(lines)


def replace_block(text: str, name: str, block: str) -> str:
    start, end = MARKERS[name]
    before, rest = text.split(start)
    _, after = rest.split(end)
    return f"{before}{start}\n{block}\n{end}{after}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(ROOT / "results"))
    p.add_argument("--readme", help="rewrite the table between the markers in this file")
    args = p.parse_args(argv)
    blocks = {"results": table(Path(args.results)), "parameters": parameters_table()}
    if args.readme:
        readme = Path(args.readme)
        text = readme.read_text()
        for name, block in blocks.items():
            text = replace_block(text, name, block)
        readme.write_text(text)
    else:
        print(blocks["results"] + "\n\n" + blocks["parameters"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
