"""Tests for diffmem.lock: one trainer per run directory. The other trainers are small Python
processes that load lock.py alone (no JAX), so the file runs in about a second."""

import hashlib
import os
import pickle
import signal
import subprocess
import sys

import pytest

from diffmem import lock
from diffmem.lock import RunDirBusy

# argv: path of lock.py, run directory, "hold" or "try". "hold" takes the lock, says "held"
# and keeps it until its stdin closes; "try" takes it and prints what it took over, or prints
# the refusal and exits 3.
_TRAINER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("lock", sys.argv[1])
lock = importlib.util.module_from_spec(spec)
sys.modules["lock"] = lock
spec.loader.exec_module(lock)
try:
    with lock.hold(sys.argv[2]) as held:
        print("held" if sys.argv[3] == "hold" else held.took_over, flush=True)
        if sys.argv[3] == "hold":
            sys.stdin.read()
except lock.RunDirBusy as err:
    print(err)
    sys.exit(3)
"""


def _trainer(run_dir, mode):
    return subprocess.Popen([sys.executable, "-c", _TRAINER, lock.__file__, str(run_dir), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock on tmp_path / "run"."""
    process = _trainer(tmp_path / "run", "hold")
    assert process.stdout.readline() == "held\n"
    yield process
    process.kill()
    process.wait()


def _snapshot(folder):
    """Every file's name, bytes and modification time, and the folder's own."""
    files = {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
             for p in sorted(folder.iterdir())}
    return files, folder.stat().st_mtime_ns


def test_a_second_trainer_in_another_process_is_refused_naming_the_directory_and_holder(
        tmp_path):
    run_dir = tmp_path / "run"
    with lock.hold(run_dir):
        trainer = _trainer(run_dir, "try")
        out, _ = trainer.communicate(timeout=10)
    assert trainer.returncode == 3
    assert out.count("\n") == 1  # one line
    assert f"{run_dir} is being trained by process {os.getpid()} (" in out
    assert f"kill -INT {os.getpid()})" in out


def test_a_trainer_is_refused_by_a_holder_in_another_process_and_changes_nothing(
        tmp_path, holder):
    run_dir = tmp_path / "run"
    (run_dir / "config.json").write_text("{}\n")
    (run_dir / "metrics.jsonl").write_text('{"sequences": 4}\n')
    before = _snapshot(run_dir)
    with pytest.raises(RunDirBusy) as info:
        lock.hold(run_dir).acquire()
    assert _snapshot(run_dir) == before  # the holder's record included
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{run_dir} is being trained by process {holder.pid} (")
    assert f"stop it (kill -INT {holder.pid})" in message
    assert info.value.holder["pid"] == holder.pid
    assert isinstance(info.value, OSError)


def test_the_lock_of_a_killed_trainer_is_taken_over(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with lock.hold(tmp_path / "run") as held:
        assert held.previous["pid"] == holder.pid
        assert held.took_over.startswith(f"took over the lock of process {holder.pid} (")
    with lock.hold(tmp_path / "run") as held:  # released cleanly this time: nothing to take
        assert held.took_over is None


def test_a_run_directory_is_held_again_after_release_in_the_same_process(tmp_path):
    run_dir = tmp_path / "a" / "run"
    with lock.hold(run_dir) as held:  # makes the directory
        assert held.held and held.took_over is None
    assert not held.held
    assert (run_dir / lock.LOCK).read_bytes() == b""  # the record goes with the holder
    with lock.hold(run_dir) as held:
        assert held.took_over is None
    explicit = lock.RunLock(run_dir)
    for _ in range(2):
        explicit.acquire()
        explicit.release()
    explicit.release()  # releasing twice is harmless


def test_a_directory_held_in_this_process_is_refused_to_a_second_holder_in_it(tmp_path):
    """flock's locks belong to open files, so the process holding a directory is refused a
    second hold of it; a population holds its own directory and each member's at once."""
    population, member = tmp_path / "pop", tmp_path / "pop" / "seed-0"
    with lock.hold(population), lock.hold(member):
        with pytest.raises(RunDirBusy, match="by this process already") as info:
            lock.hold(member).acquire()
        assert "\n" not in str(info.value)
        trainer = _trainer(population, "try")
        assert trainer.communicate(timeout=10)[0].startswith(f"{population} is being trained")
    with lock.hold(member):
        pass


def test_the_refusal_survives_pickling_and_names_a_holder_it_could_not_read(tmp_path):
    err = RunDirBusy(tmp_path, {"pid": 7, "host": "elsewhere", "started": "2026-01-02 03:04:05",
                                "command": ["diffmem", "train", "--resume", "runs/x"]})
    assert str(pickle.loads(pickle.dumps(err))) == str(err)
    assert str(err) == (
        f"{tmp_path} is being trained by process 7 (diffmem train --resume runs/x, started "
        "2026-01-02 03:04:05 on host elsewhere); wait for it to end or stop it "
        "(kill -INT 7 on elsewhere), then try again")
    assert "another process" in str(RunDirBusy(tmp_path, None))
