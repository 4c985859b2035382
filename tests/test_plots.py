"""Every figure is drawn without error and has the expected panels: from a tiny run, or from
an untrained model where only the panels matter."""

import matplotlib
import numpy as np
import pytest
from flax import nnx

import diffmem
from diffmem import plots, rundir, tasks
from diffmem.cli import main
from diffmem.models import build_model
from diffmem.training import evaluate


def test_memory_figure_has_a_panel_per_head_and_quantity(tiny_config, tmp_path):
    # Two read heads, for a pair of panels per head; the panels need no training.
    model = build_model(tiny_config.replace(model=dict(read_heads=2)))
    fig = plots.memory_figure(model, tasks.get("copy"), {"length": 5})
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


def test_memory_figure_of_a_dnc_adds_usage_gates_read_modes_and_links(tiny_dnc_run, tmp_path):
    run_dir, _ = tiny_dnc_run
    fig = plots.run_figure("memory", run_dir, size={"length": 5})
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    gates = "gates: allocation and write (write head), free (read heads)"
    link = "link matrix after the last step (L[i, j]: row i written right after row j)"
    assert list(panels) == ["inputs", "targets", "outputs (sigmoid, masked)",
                            "write head 0: add vectors", "write head 0: write weighting",
                            "usage", gates, "read head 0: read modes",
                            "read head 0: read weighting", "read head 0: read vectors", link]
    names = lambda title: [t.get_text() for t in panels[title].get_yticklabels()]  # noqa: E731
    assert names(gates) == ["allocation", "write", "free, read 0"]
    assert names("read head 0: read modes") == ["backward", "content", "forward"]
    assert panels["read head 0: read vectors"].get_xlabel() == "time step"
    # The link matrix is over the same rows as the usage panel.
    rows = panels["usage"].get_images()[0].get_array().shape[0]
    assert panels[link].get_images()[0].get_array().shape == (rows, rows)
    assert panels[link].get_xlabel() and all(ax.get_ylabel() for ax in panels.values())
    assert main(["plot", str(run_dir), "--figure", "memory", "--size", "5",
                 "--out-dir", str(tmp_path)]) == 0
    png = (tmp_path / "memory.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_learning_curves_overlay_training_and_validation_for_each_run(tiny_run):
    run_dir, _ = tiny_run
    records = rundir.read_metrics(run_dir)
    fig = plots.learning_curves({"a": records, "b": records})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == [
        "a, training", "a, validation", "b, training", "b, validation"]
    assert ax.get_xlabel() == "sequences seen" and ax.get_yscale() == "log"


def test_generalisation_figure_has_one_panel_per_size_and_an_error_panel(tiny_run):
    run_dir, model = tiny_run
    task = tasks.get("copy")
    # The run's own evaluation (sizes and count), whose programs the session has compiled.
    sizes = list(task.eval_sizes)
    rows = evaluate(model, task, sizes, count=rundir.read_config(run_dir).train.eval_count)
    fig = plots.generalisation_figure(model, task, sizes, rows)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"length {size['length']}: targets (top) and outputs (bottom)"
                      for size in sizes] + ["error against size"]
    assert isinstance(fig, matplotlib.figure.Figure)


def test_weighting_panels_show_the_band_of_rows_in_use_even_when_it_wraps():
    w = np.zeros((6, 1, 128))
    w[0, 0, 0] = w[1, 0, 127] = w[2, 0, 120] = 1.0  # heads moving backwards past row 0
    assert plots._rows_in_use(w).tolist() == list(range(117, 128)) + [0, 1, 2, 3]
    w = np.zeros((6, 1, 128))
    w[0, 0, 10] = w[1, 0, 20] = 1.0
    assert plots._rows_in_use(w).tolist() == list(range(7, 24))
    assert plots._rows_in_use(np.full((2, 1, 128), 1 / 128)).tolist() == list(range(128))


def test_memory_figure_of_a_model_without_memory_says_so():
    # The model's structure is enough (the figure refuses before running it), so its
    # parameters are not initialised.
    model = nnx.eval_shape(lambda: diffmem.LSTM(9, 8, hidden_size=4, layers=1, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="LSTM without one"):
        plots.memory_figure(model, tasks.get("copy"), {"length": 3})


def test_plot_command_writes_every_figure_of_a_run(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    code = main(["plot", str(run_dir), "--size", "5", "--compare", str(run_dir),
                 "--out-dir", str(tmp_path)])
    assert code == 0
    for name in plots.FIGURES:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(run_dir), "--figure", "attention"]) == 2
    assert "not one of: all, memory, curves, generalisation" in capsys.readouterr().out
    assert main(["plot", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().out
