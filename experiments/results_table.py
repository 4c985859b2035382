"""Build the generated tables of README.md and docs/ from the records in results/.

    python experiments/results_table.py           # print the results and parameter tables
    python experiments/results_table.py --write   # rewrite every generated table in place

The tables: the results of each task and model beside the paper's (README.md and
docs/results.md), the parameter counts of the paper's architectures here beside the paper's
(docs/results.md), and the two ten-seed studies (docs/seed-studies.md). Each sits between a
pair of MARKERS, in whichever of README.md and docs/*.md holds them; --write rewrites them all.

The results table reads the JSON records written by experiments/reproduce.py (results/reproduce/,
on the CPU and on a GPU; each record names its machine). RUNS
below says which record fills each cell; a cell with no record says "not run". The seed tables
are `diffmem.sweep.table` of the records in SEED_STUDIES.
tests/test_readme.py checks that every generated table, wherever it lives, is this script's
output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from diffmem.models import names as model_names
from diffmem.rundir import atomic_write

ROOT = Path(__file__).resolve().parent.parent
MARKERS = {"results": ("<!-- results-table:start -->", "<!-- results-table:end -->"),
           "results-brief": ("<!-- results-brief-table:start -->",
                             "<!-- results-brief-table:end -->"),
           "parameters": ("<!-- parameters-table:start -->", "<!-- parameters-table:end -->"),
           "seeds-copy": ("<!-- seeds-copy-table:start -->", "<!-- seeds-copy-table:end -->"),
           "seeds-associative-recall": ("<!-- seeds-associative-recall-table:start -->",
                                        "<!-- seeds-associative-recall-table:end -->"),
           "seeds-associative-recall-ntm-lstm": (
               "<!-- seeds-associative-recall-ntm-lstm-table:start -->",
               "<!-- seeds-associative-recall-ntm-lstm-table:end -->"),
           "seeds-repeat-copy": ("<!-- seeds-repeat-copy-table:start -->",
                                 "<!-- seeds-repeat-copy-table:end -->"),
           "seeds-repeat-copy-lr-decay": ("<!-- seeds-repeat-copy-lr-decay-table:start -->",
                                          "<!-- seeds-repeat-copy-lr-decay-table:end -->"),
           "seeds-repeat-copy-restarts": ("<!-- seeds-repeat-copy-restarts-table:start -->",
                                          "<!-- seeds-repeat-copy-restarts-table:end -->"),
           "seeds-copy-dnc": ("<!-- seeds-copy-dnc-table:start -->",
                              "<!-- seeds-copy-dnc-table:end -->"),
           "seeds-copy-dnc-1000": ("<!-- seeds-copy-dnc-1000-table:start -->",
                                   "<!-- seeds-copy-dnc-1000-table:end -->"),
           "seeds-copy-sdnc-1000": ("<!-- seeds-copy-sdnc-1000-table:start -->",
                                    "<!-- seeds-copy-sdnc-1000-table:end -->"),
           "seeds-copy-dnc-check512": ("<!-- seeds-copy-dnc-check512-table:start -->",
                                       "<!-- seeds-copy-dnc-check512-table:end -->"),
           "dnc-switches": ("<!-- dnc-switches-table:start -->",
                            "<!-- dnc-switches-table:end -->")}
# The files that may hold generated tables.
DOCUMENTS = ("README.md", "docs/*.md")
# The sweep results (relative to results/) behind each seed table.
SEED_STUDIES = {"seeds-copy": ("seeds/copy/results.json",),
                "seeds-associative-recall": ("seeds/associative-recall/results.json",),
                "seeds-associative-recall-ntm-lstm": (
                    "seeds/associative-recall-ntm-lstm/results.json",),
                "seeds-repeat-copy": ("seeds/repeat-copy-ntm-lstm/results.json",),
                "seeds-repeat-copy-lr-decay": (
                    "seeds/repeat-copy-ntm-lstm-lr-decay/results.json",),
                "seeds-repeat-copy-restarts": (
                    "seeds/repeat-copy-ntm-lstm-restarts/results.json",),
                "seeds-copy-dnc": ("seeds/copy-dnc-even.json", "seeds/copy-dnc-odd.json"),
                "seeds-copy-dnc-1000": ("seeds/copy-dnc-1000/results.json",),
                "seeds-copy-sdnc-1000": ("seeds/copy-sdnc-1000/results.json",),
                "seeds-copy-dnc-check512": ("seeds/copy-dnc-check512/results.json",)}
TASKS = ("copy", "repeat-copy", "associative-recall", "dynamic-ngrams", "priority-sort")
# The model kinds of diffmem.models' registry; a kind registered there needs rows in RUNS
# and PAPER below.
MODELS = tuple(model_names())
# The README's brief table has the NTM paper's models and the DNC; the sparse models' rows
# are in docs/results.md's full table and their own pages, which keeps the README short.
BRIEF_MODELS = ("ntm-lstm", "ntm-ff", "lstm", "dnc")

# The record behind each cell, relative to results/. Where a cell uses the paper's preset or a
# resumed or changed run, the "settings" column and docs/results.md say so.
RUNS = {
    ("copy", "ntm-lstm"): "reproduce/copy-ntm-lstm-default.json",
    ("copy", "ntm-ff"): "reproduce/copy-ntm-ff-default.json",
    ("copy", "lstm"): "reproduce/copy-lstm-default.json",
    ("repeat-copy", "ntm-lstm"): "reproduce/repeat-copy-ntm-lstm-default.json",
    ("repeat-copy", "ntm-ff"): "reproduce/repeat-copy-ntm-ff-default.json",
    ("repeat-copy", "lstm"): "reproduce/repeat-copy-lstm-default.json",
    ("associative-recall", "ntm-lstm"): "reproduce/associative-recall-ntm-lstm-default.json",
    ("associative-recall", "ntm-ff"): "reproduce/associative-recall-ntm-ff-paper.json",
    ("associative-recall", "lstm"): "reproduce/associative-recall-lstm-default.json",
    ("dynamic-ngrams", "ntm-lstm"): "reproduce/dynamic-ngrams-ntm-lstm-default.json",
    ("dynamic-ngrams", "ntm-ff"): "reproduce/dynamic-ngrams-ntm-ff-default.json",
    ("dynamic-ngrams", "lstm"): "reproduce/dynamic-ngrams-lstm-default.json",
    ("priority-sort", "ntm-lstm"): "reproduce/priority-sort-ntm-lstm-default.json",
    ("priority-sort", "ntm-ff"): "reproduce/priority-sort-ntm-ff-default-lr1e-3.json",
    ("priority-sort", "lstm"): "reproduce/priority-sort-lstm-default.json",
    ("copy", "dnc"): "reproduce/copy-dnc-default.json",
    ("repeat-copy", "dnc"): "reproduce/repeat-copy-dnc-default.json",
    ("associative-recall", "dnc"): "reproduce/associative-recall-dnc-default.json",
    ("dynamic-ngrams", "dnc"): "reproduce/dynamic-ngrams-dnc-default.json",
    ("priority-sort", "dnc"): "reproduce/priority-sort-dnc-default.json",
    **{(task, "sam"): f"reproduce/{task}-sam-default.json" for task in TASKS},
    **{(task, "sdnc"): f"reproduce/{task}-sdnc-default.json" for task in TASKS},
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
    **{(task, "dnc"): "not in the papers" for task in TASKS},
    **{(task, "sam"): "not in the papers" for task in TASKS},
    **{(task, "sdnc"): "not in the papers" for task in TASKS},
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
                         f"{wrong(pick(length=L, repeats=R))} wrong"
                         for L, R in ((20, 10), (10, 20)))
    if task == "associative-recall":
        return ", ".join(f"{k} items: {pick(items=k)['bits']:.2f}" for k in (6, 12, 15, 20)) + \
            " bits"
    return "(trained distribution only)"


def table(results: Path, brief: bool = False) -> str:
    """The results table; ``brief`` (the README's) leaves out the settings, the paper's
    figures and the models not in ``BRIEF_MODELS``, which docs/results.md has."""
    head = ["task", "model", "settings", "trained (sequences, time, hardware)",
            "validation bits / sequence", "generalisation", "paper"]
    if brief:
        head = [h for h in head if h not in ("settings", "paper")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task in TASKS:
        for model in BRIEF_MODELS if brief else MODELS:
            record = load(results / RUNS[(task, model)])
            if record is None:
                cells = ["-", "not run", "-", "-"]
            else:
                cells = [settings_cell(record), training_cell(record), bits_cell(record),
                         generalisation_cell(record)]
            cells = [*cells, PAPER[(task, model)]]
            if brief:
                cells = cells[1:-1]
            lines.append("| " + " | ".join([task, model, *cells]) + " |")
    return "\n".join(lines)


def parameters_table() -> str:
    """Parameter counts of the paper's architectures here, beside the paper's (Tables 1-3)."""
    from flax import nnx

    from diffmem.config import paper_parameters, resolve
    from diffmem.models import build_model, count_parameters
    from diffmem.presets import PAPER_MODELS

    lines = ["| task | model | architecture | parameters here | paper | difference |",
             "|---|---|---|---|---|---|"]
    for task in TASKS:
        for model in MODELS:
            if (task, model) not in PAPER_MODELS:  # the DNC: not in the NTM paper
                continue
            config = resolve(task, model, "paper")
            ours = count_parameters(nnx.eval_shape(lambda c=config: build_model(c)))
            paper = paper_parameters(config)
            spec = PAPER_MODELS[(task, model)]
            layers = f"{spec['layers']}x{spec['size']}" if spec["layers"] > 1 else str(spec["size"])
            arch = (f"{layers} LSTM" if model == "lstm" else
                    f"{spec['heads']} read + {spec['heads']} write heads, "
                    f"{'LSTM' if model == 'ntm-lstm' else 'feed-forward'} {layers}")
            lines.append(f"| {task} | {model} | {arch} | {ours:,} | {paper:,} | "
                         f"{100 * (ours - paper) / paper:+.1f}% |")
    return "\n".join(lines)


def seed_table(results: Path, files: tuple[str, ...]) -> str:
    """One row per seed (``diffmem.sweep.table``): from a sweep's results.json, or from the
    run summaries of the studies made before `diffmem sweep` (``{"runs": [...]}``)."""
    from diffmem import sweep

    rows, grid = [], []
    for f in files:
        data = json.loads((results / f).read_text())
        rows += data["rows"] if "rows" in data else [sweep.summary_row(r["seed"], r)
                                                     for r in data["runs"]]
        grid += list(data.get("settings", {}).get("grid", {}))
    if grid:  # a sweep of several grid points: by point, then seed, as the sweep wrote them
        return sweep.table(rows, grid)
    return sweep.table(sorted(rows, key=lambda r: r["seed"]))


# The copy DNC with each refinement on or off (results/dnc-switches/), by record tag.
# "default" is the copy DNC's reproduction record.
SWITCH_RUNS = ("default", "rows128-paper", "none", "no-masking", "no-deallocation",
               "no-sharpness")


def switches_table(results: Path) -> str:
    """The copy DNC's refinements and memories, one record of results/dnc-switches/ a row."""
    lines = ["| record | rows (training / evaluation) | masking | de-allocation | link sharpness "
             "| sequences to target | validation bits | wrong bits at 30, 50, 80, 120 |",
             "|---|---|---|---|---|---|---|---|"]
    for tag in SWITCH_RUNS:
        record = load(results / ("reproduce/copy-dnc-default.json" if tag == "default" else
                                 f"dnc-switches/copy-dnc-default-{tag}.json"))
        if record is None:
            continue
        m, s = record["config"]["model"], record["summary"]
        rows = f"{m['memory_rows']} / {m['eval_memory_rows'] or m['memory_rows']}"
        on = lambda name, m=m: "yes" if m[name] else "-"  # noqa: E731
        first = s["first_below_target"]
        reached = f"{first['sequences']:,}" if first else "not reached"
        by = {r["label"]: r for r in s["generalisation"]}
        wrong = ", ".join(f"{100 * by[f'length {L}']['wrong_bit_fraction']:.2g}%"
                          for L in (30, 50, 80, 120))
        lines.append(f"| `{tag}` | {rows} | {on('content_masking')} | {on('deallocation')} | "
                     f"{on('link_sharpness')} | {reached} | {s['validation']['bits']:.3f} | "
                     f"{wrong} |")
    return "\n".join(lines)


def blocks(results: Path) -> dict[str, str]:
    """Every generated table, by its name in MARKERS."""
    return {"results": table(results), "results-brief": table(results, brief=True),
            "parameters": parameters_table(),
            "dnc-switches": switches_table(results),
            **{name: seed_table(results, files) for name, files in SEED_STUDIES.items()}}


def documents(root: Path = ROOT) -> list[Path]:
    """README.md and docs/*.md: the files that may hold generated tables."""
    return sorted(p for pattern in DOCUMENTS for p in root.glob(pattern))


def replace_block(text: str, name: str, block: str) -> str:
    start, end = MARKERS[name]
    before, rest = text.split(start)
    _, after = rest.split(end)
    return f"{before}{start}\n{block}\n{end}{after}"


def write(tables: dict[str, str], paths: list[Path]) -> list[Path]:
    """Rewrite every table of ``tables`` in each of ``paths`` that holds its markers; return
    the files changed. Raise ValueError for a table that no file holds."""
    changed, placed = [], set()
    for path in paths:
        text = new = path.read_text()
        for name, block in tables.items():
            if MARKERS[name][0] in new:
                new = replace_block(new, name, block)
                placed.add(name)
        if new != text:
            atomic_write(path, new)
            changed.append(path)
    if missing := sorted(set(tables) - placed):
        raise ValueError(f"no file of {', '.join(DOCUMENTS)} holds the markers of: "
                         f"{', '.join(missing)}")
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(ROOT / "results"))
    p.add_argument("--write", action="store_true",
                   help="rewrite every generated table in README.md and docs/*.md")
    args = p.parse_args(argv)
    if args.write:
        for path in write(blocks(Path(args.results)), documents()):
            print(f"rewrote {path.relative_to(ROOT)}")
    else:
        print(table(Path(args.results)) + "\n\n" + parameters_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
