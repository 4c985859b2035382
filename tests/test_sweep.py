"""`diffmem sweep`: a grid of populations, its table, going on after an interrupt, and the
same on a Ray cluster of two nodes with a trial's worker killed mid-run."""

import json
import os
import signal
import threading
import time

import pytest

from diffmem import sweep
from diffmem.cli import main

# Every run tiny; 2 seeds x 2 rates.
TINY = ("model.controller_size=16", "model.memory_rows=16", "model.memory_width=6",
        "train.batch_size=4", "train.sequences=32", "train.eval_every=16", "train.val_size=8",
        "train.eval_count=4", "train.generalisation_val_size=0", "train.tensorboard=false")


def _argv(out, seeds="0-1"):
    sets = [a for s in TINY for a in ("--set", s)]
    return ["sweep", "copy", "--seeds", seeds, "--grid", "train.lr=1e-3,3e-3", *sets,
            "--out", str(out)]


def _attempts(out, trial):
    path = out / "trials" / trial / sweep.ATTEMPTS
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_local_sweep_tabulates_every_run_and_goes_on_after_an_interrupt(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # the sweep adds to it
    # The second trial is interrupted as it starts (as by Ctrl-C, its members unsaved).
    run_trial = sweep.run_trial

    def interrupted(spec, reporter=None):
        if spec["dir"].endswith("lr-3e-3"):
            raise KeyboardInterrupt
        return run_trial(spec, reporter)

    monkeypatch.setattr(sweep, "run_trial", interrupted)
    assert main(_argv(tmp_path)) == 130
    assert "run the same command again to go on" in " ".join(capsys.readouterr().out.split())
    assert not (tmp_path / "results.md").exists()
    monkeypatch.setattr(sweep, "run_trial", run_trial)
    assert main(_argv(tmp_path)) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(r["train.lr"], r["seed"]) for r in rows] == [
        ("1e-3", 0), ("1e-3", 1), ("3e-3", 0), ("3e-3", 1)]
    assert all(r["status"] == "budget: sequences" for r in rows)
    csv = (tmp_path / "results.csv").read_text().splitlines()
    assert csv[0].startswith("train.lr,seed,status,target reached") and len(csv) == 5
    table = (tmp_path / "results.md").read_text()
    assert "- train.lr=1e-3: 0 of 2 seeds reached the target" in table
    assert "median bits per sequence: length 10 " in table  # the paper's measure, by size
    assert rows[0]["bits, length 10"] > 0 and "bits, length 10" in csv[0]
    assert "wall time of the whole sweep" in table
    assert all(r["restarts"] == 0 for r in rows) and "; restarts: 0" in table
    assert all(r["returns to best"] == 0 for r in rows)
    assert "; returns to the best model: 0" in table
    # The finished trial was not trained again.
    assert len(_attempts(tmp_path, "lr-1e-3")) == 1
    assert len(_attempts(tmp_path, "lr-3e-3")) == 1
    record = json.loads((tmp_path / sweep.SETTINGS).read_text())
    assert len(record["attempts"]) == 2 and record["seconds"] > 0
    # Another sweep's directory is refused, naming what to do.
    assert main(_argv(tmp_path, seeds="0-2")) == 2
    assert "holds a sweep with other settings" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("argv, expected", [
    (["--grid", "train.lr"], "--grid 'train.lr' is not FIELD=V1,V2"),
    (["--grid", "train.lr=1", "--grid", "train.lr=2"], "--grid names train.lr twice"),
    (["--grid", "train.batch_size=0,4"], "batch_size"),
    (["--engine", "slurm"], "--engine 'slurm' is not one of: local, ray"),
    (["--parallel", "0"], "--parallel 0 must be at least 1"),
])
def test_sweep_options_are_checked_before_any_work(argv, expected, capsys, tmp_path):
    assert main(["sweep", "copy", "--seeds", "0", *argv, "--out", str(tmp_path / "s")]) == 2
    assert expected in " ".join(capsys.readouterr().out.split())
    assert not (tmp_path / "s").exists()


def test_worker_settings_reach_every_trial(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                       "--xla_cpu_multi_thread_eigen=true")
    cpu = sweep.worker_env(cpus_per_trial=1, gpus_per_trial=0)
    assert cpu["XLA_FLAGS"] == ("--xla_backend_optimization_level=0 "
                                "--xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1")
    assert cpu["JAX_PLATFORMS"] == "cpu"
    shared = sweep.worker_env(cpus_per_trial=2, gpus_per_trial=0.25)
    assert shared["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and "JAX_PLATFORMS" not in shared


def test_a_ray_sweep_on_two_nodes_finishes_after_a_killed_worker(tmp_path):
    """A local Ray cluster of two one-CPU nodes runs the two trials side by side; one trial's
    worker is killed once its members have checkpoints, and Ray's retry resumes it there."""
    import ray
    from ray.cluster_utils import Cluster

    longer = tuple(s for s in TINY if not s.startswith("train.sequences")) + (
        "train.sequences=160",)  # 10 log points: time to kill a worker mid-run
    spec = sweep.Sweep("copy", tmp_path, (0, 1), sets=longer,
                       grid=(("train.lr", ("1e-3", "3e-3")),))
    killed = {}

    def kill_one_worker():
        victim = tmp_path / "trials" / "lr-1e-3"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if (victim / "seed-0" / "checkpoint.safetensors").exists():  # its first log point
                pid = _attempts(tmp_path, "lr-1e-3")[0]["pid"]
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
            time.sleep(0.05)

    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    killer = threading.Thread(target=kill_one_worker, daemon=True)
    try:
        killer.start()
        rows = sweep.run(spec, engine="ray", address=cluster.address, say=lambda text: None)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert killed, "the trial finished before its worker could be killed"
    assert [r["status"] for r in rows] == ["budget: sequences"] * 4
    first, again = _attempts(tmp_path, "lr-1e-3")
    assert first["pid"] == killed["pid"] and not first["resumed"]
    assert again["resumed"] and again["sequences"]["seed-0"] >= 16
    other = _attempts(tmp_path, "lr-3e-3")
    assert len(other) == 1
    assert first["node"] != other[0]["node"]  # the trials ran on both nodes
    assert (tmp_path / "results.md").exists() and (tmp_path / "ray").is_dir()
