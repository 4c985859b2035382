"""Every figure is drawn from a tiny run without error and has the expected panels."""

import matplotlib
import pytest

import diffmem
from diffmem import plots, tasks
from diffmem.train import evaluate, train_and_evaluate


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from diffmem.config import resolve

    config = resolve("copy").replace(
        model=dict(controller_size=16, memory_rows=16, memory_width=6, read_heads=2,
                   write_heads=1),
        train=dict(batch_size=4, sequences=32, minutes=None, eval_every=16, val_size=8,
                   eval_count=4),
    )
    run_dir = tmp_path_factory.mktemp("run")
    train_and_evaluate(config, run_dir)
    model, _ = diffmem.load(run_dir)
    return run_dir, model


def test_memory_figure_has_a_panel_per_head_and_quantity(tiny_run, tmp_path):
    _, model = tiny_run
    fig = plots.memory_figure(model, tasks.get("copy"), {"length": 6})
    panels = [ax for ax in fig.axes if ax.get_title()]  # the others are colour bars
    titles = [ax.get_title() for ax in panels]
    assert titles == ["inputs", "targets", "outputs (sigmoid, masked)",
                      "write head 0: add vectors", "write head 0: write weighting",
                      "read head 0: read weighting", "read head 0: read vectors",
                      "read head 1: read weighting", "read head 1: read vectors"]
    assert panels[-1].get_xlabel() == "time step"
    assert all(ax.get_ylabel() for ax in panels)
    fig.savefig(tmp_path / "memory.png")
    assert (tmp_path / "memory.png").stat().st_size > 1000


def test_learning_curves_overlay_training_and_validation_for_each_run(tiny_run):
    run_dir, _ = tiny_run
    records = plots.read_metrics(run_dir)
    fig = plots.learning_curves({"a": records, "b": records})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == [
        "a, training", "a, validation", "b, training", "b, validation"]
    assert ax.get_xlabel() == "sequences seen" and ax.get_yscale() == "log"


def test_generalisation_figure_has_one_panel_per_size_and_an_error_panel(tiny_run):
    _, model = tiny_run
    task = tasks.get("copy")
    sizes = [{"length": 4}, {"length": 9}]
    rows = evaluate(model, task, sizes, count=2)
    fig = plots.generalisation_figure(model, task, sizes, rows)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["length 4: targets (top) and outputs (bottom)",
                      "length 9: targets (top) and outputs (bottom)", "error against size"]
    assert isinstance(fig, matplotlib.figure.Figure)
