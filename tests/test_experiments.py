"""The maintainer's tools in experiments/, each run for real on the tiny runs of conftest.py:
reproduce, the results table, the export of pretrained models, the figures, the comparison
of two runs and the curves of a study. A change to the library that breaks one fails here."""

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from conftest import tiny
from diffmem import checkpoint, demo, rundir
from diffmem.config import resolve

ROOT = Path(__file__).resolve().parents[1]


def script(name):
    """experiments/NAME.py as a module (its ``main`` not run)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_overrides():
    """``--set`` assignments that turn the copy default into ``tiny()`` (budget aside)."""
    default, small = resolve("copy"), tiny()
    return [f"{section}.{name}={value}"
            for section in ("model", "train")
            for name, value in dataclasses.asdict(getattr(small, section)).items()
            if name not in ("sequences", "minutes")
            and value != getattr(getattr(default, section), name)]


def record_of(run_dir, out_dir):
    """The reproduction record of ``run_dir`` (a tiny copy run), written by ``--from-run``."""
    assert script("reproduce").main(["copy", "--models", "ntm-lstm", "--from-run", str(run_dir),
                                     "--command", "diffmem train copy", "--out",
                                     str(out_dir)]) == 0
    return out_dir / "copy-ntm-lstm-default.json"


def export_tiny(run_dir, tmp_path, monkeypatch):
    """The tiny run exported as the shipped copy model of an otherwise empty weights folder."""
    record = record_of(run_dir, tmp_path / "records")
    data = json.loads(record.read_text())
    data["summary"]["reached_target"] = True  # a tiny run does not; the export asks for it
    record.write_text(json.dumps(data))
    monkeypatch.setattr(demo, "WEIGHTS", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    return record, script("export_pretrained").export(record)


def test_reproduce_trains_each_model_and_records_the_run(tmp_path):
    reproduce = script("reproduce")
    argv = ["copy", "--models", "ntm-lstm", "--sequences", "32", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "records"), "--tag", "tiny"]
    for assignment in tiny_overrides():
        argv += ["--set", assignment]
    assert reproduce.main(argv) == 0
    record = json.loads((tmp_path / "records" / "copy-ntm-lstm-default-tiny.json").read_text())
    assert (record["task"], record["model"], record["preset"]) == ("copy", "ntm-lstm", "default")
    assert "reproduce.py copy --models ntm-lstm" in record["command"]
    assert record["config"]["train"]["batch_size"] == 4
    assert record["summary"]["sequences"] == 32
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert record["curve"] == rundir.read_metrics(run_dir)


def test_reproduce_records_a_finished_run_and_refuses_one_of_another_task(tmp_path, tiny_run):
    run_dir, _ = tiny_run
    record = json.loads(record_of(run_dir, tmp_path).read_text())
    assert record["command"] == "diffmem train copy" and record["started"] is None
    assert record["summary"] == rundir.read_summary(run_dir)
    with pytest.raises(SystemExit, match="a copy ntm-lstm run of preset default"):
        script("reproduce").main(["repeat-copy", "--models", "ntm-lstm", "--from-run",
                                  str(run_dir), "--command", "x", "--out", str(tmp_path)])


def test_results_table_fills_the_cells_that_have_a_record(tmp_path, tiny_run, capsys):
    results_table = script("results_table")
    record_of(tiny_run[0], tmp_path / "results" / "reproduce")
    assert results_table.main(["--results", str(tmp_path / "results")]) == 0
    lines = capsys.readouterr().out.splitlines()
    copy = next(line for line in lines if line.startswith("| copy | ntm-lstm |"))
    assert "default: Adam 0.003, batch 4" in copy and "32 seq" in copy
    assert "| repeat-copy | ntm-lstm | - | not run |" in "\n".join(lines)
    assert any(line.startswith("| copy | ntm-lstm | 1 read + 1 write heads") for line in lines)

    doc = tmp_path / "doc.md"
    start, end = results_table.MARKERS["results"]
    doc.write_text(f"before\n{start}\nold\n{end}\nafter\n")
    table = results_table.table(tmp_path / "results")
    assert results_table.write({"results": table}, [doc]) == [doc]
    assert doc.read_text() == f"before\n{start}\n{table}\n{end}\nafter\n"
    with pytest.raises(ValueError, match="parameters"):
        results_table.write({"parameters": "x"}, [doc])


def test_export_pretrained_ships_the_best_model_without_optimiser_state(
        tmp_path, tiny_run, monkeypatch):
    export = script("export_pretrained").export
    with pytest.raises(SystemExit, match="did not reach its target"):
        export(record_of(tiny_run[0], tmp_path / "unreached"))
    record, out = export_tiny(tiny_run[0], tmp_path, monkeypatch)
    assert out == tmp_path / "weights" / "copy.safetensors"
    tensors, header = checkpoint.read(out)
    assert tensors and not any(name.startswith("optimizer/") for name in tensors)
    assert header["pretrained"]["record"] == str(record)
    model, config, info = demo.load_pretrained("copy")
    assert config == rundir.read_config(tiny_run[0])
    assert info["command"] == "diffmem train copy"


def test_make_figures_draws_a_tasks_figures_from_its_shipped_model(
        tmp_path, tiny_run, monkeypatch, capsys):
    record, _ = export_tiny(tiny_run[0], tmp_path, monkeypatch)
    data = json.loads(record.read_text())
    del data["summary"]["generalisation"][2:]  # two sizes to run the model at are enough
    record.write_text(json.dumps(data))
    out = tmp_path / "figures"
    assert script("make_figures").main(["--out", str(out), "--tasks", "copy"]) == 0
    drawn = sorted(p.name for p in out.iterdir())
    assert drawn == ["copy-curves.png", "copy-generalisation.png", "copy-memory.png"]
    assert all((out / name).read_bytes()[:4] == b"\x89PNG" for name in drawn)


def test_make_figures_draws_the_scaling_figure_from_bench_records(tmp_path, monkeypatch):
    make_figures = script("make_figures")
    records = tmp_path / "records"
    records.mkdir()
    for i, (name, _) in enumerate(make_figures.SCALING_RUNS):
        rows = [{"memory_rows": n, "batch_size": b, "step_ms": (i + 1) * n / 100,
                 "peak_bytes": (i + 1) * n * 2**20, "memory_width": 64, "read_heads": 4,
                 "controller_size": 256, "device": "cpu"} for n in (128, 256) for b in (1, 16)]
        (records / name).write_text(json.dumps(rows))
    for name, _ in (r for runs in make_figures.LINK_CURVES.values() for r in runs):
        curve = [[4000, 50.0, 0.4], [8000, 0.04, 0.0]]
        (records / name).write_text(json.dumps({"runs": [{"curve": curve}]}))
    monkeypatch.setattr(make_figures, "SCALING", records)
    out = tmp_path / "figures"
    assert make_figures.main(["--out", str(out), "--tasks", "scaling"]) == 0
    drawn = sorted(p.name for p in out.iterdir())
    assert drawn == ["dnc-sparse-link.png", "scaling.png"]
    assert all((out / name).read_bytes()[:4] == b"\x89PNG" for name in drawn)


def test_compare_runs_tells_a_copy_of_a_run_from_a_changed_one(tmp_path, tiny_run, capsys):
    compare_runs = script("compare_runs")
    copied = tmp_path / "copy"
    shutil.copytree(tiny_run[0], copied)
    assert compare_runs.main([str(tiny_run[0]), str(copied)]) == 0
    assert "DIFFERENT" not in capsys.readouterr().out
    points = rundir.read_metrics(copied)
    points[-1]["val_bits"] += 1.0
    (copied / "metrics.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points))
    assert compare_runs.main([str(tiny_run[0]), str(copied)]) == 1
    assert "DIFFERENT: metrics.jsonl" in capsys.readouterr().out


def test_curves_records_every_run_under_the_directories(tmp_path, tiny_run, tiny_dnc_run):
    curves = script("curves")
    out = tmp_path / "curves.json"
    curves.main([str(tiny_run[0]), str(tiny_dnc_run[0]), "--command", "pytest", "--out",
                 str(out)])
    record = json.loads(out.read_text())
    assert record["command"] == "pytest"
    assert [r["varied"]["model.kind"] for r in record["runs"]] == ["ntm-lstm", "dnc"]
    assert all(r["curve"] and r["summary"]["sequences"] == 32 for r in record["runs"])
    with pytest.raises(SystemExit, match="no run directories"):
        curves.main([str(tmp_path / "empty"), "--command", "x", "--out", str(out)])
