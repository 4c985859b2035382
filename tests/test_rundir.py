import json
import os

import pytest

from diffmem import rundir
from diffmem.config import resolve


def test_atomic_write_replaces_the_file_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    rundir.write_json(path, {"status": "old"})

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        rundir.write_summary(tmp_path, {"status": "new"})
    assert json.loads(path.read_text()) == {"status": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left


def test_files_are_strict_json_with_nulls_for_non_finite_values(tmp_path):
    rundir.start_metrics(tmp_path)
    rundir.append_metrics(tmp_path, {"sequences": 4, "loss": float("nan")})
    rundir.write_summary(tmp_path, {"validation": {"bits": float("inf")}, "runs": [1.0]})
    assert rundir.read_metrics(tmp_path) == [{"sequences": 4, "loss": None}]
    assert rundir.read_summary(tmp_path) == {"validation": {"bits": None}, "runs": [1.0]}
    assert oct((tmp_path / rundir.SUMMARY).stat().st_mode & 0o777) == "0o644"


def test_truncate_keeps_the_points_up_to_the_checkpoint_and_drops_a_cut_line(tmp_path):
    rundir.start_metrics(tmp_path)
    for n in (16, 32, 48):
        rundir.append_metrics(tmp_path, {"sequences": n})
    with open(tmp_path / rundir.METRICS, "a") as f:
        f.write('{"sequences": 6')  # a kill in the middle of a line
    rundir.truncate_metrics(tmp_path, 32)
    assert [r["sequences"] for r in rundir.read_metrics(tmp_path)] == [16, 32]


def test_config_round_trips_and_bad_files_name_themselves(tmp_path):
    config = resolve("repeat-copy", "ntm-ff")
    rundir.write_config(tmp_path, config)
    assert rundir.read_config(tmp_path) == config
    with pytest.raises(ValueError, match="is not a diffmem run directory: it has no metrics"):
        rundir.read_metrics(tmp_path)
    (tmp_path / rundir.CONFIG).write_text("{")
    with pytest.raises(ValueError, match="config.json is not a valid diffmem configuration"):
        rundir.read_config(tmp_path)
    (tmp_path / rundir.SUMMARY).write_text("{")
    with pytest.raises(ValueError, match="summary.json is not valid JSON"):
        rundir.read_summary(tmp_path)
    assert rundir.read_summary(tmp_path / "nowhere") is None


def test_a_run_resumed_within_the_second_keeps_the_first_event_file(tmp_path):
    # Event files are named by the second they were opened in: a resumed run's writer opened
    # in the same second must not overwrite the first one's file.
    config = resolve("copy")
    for resume_at in (None, 16):
        writer = rundir.tensorboard_writer(tmp_path, config, resume_at)
        writer.add_scalar("validation/bits", 1.0, 16 if resume_at is None else 32)
        writer.close()
    files = sorted((tmp_path / rundir.TENSORBOARD).glob("events.out.tfevents.*"))
    assert len(files) == 2
    assert files[0].stat().st_size > files[1].stat().st_size  # the first also holds the config
