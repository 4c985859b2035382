"""Shared helpers: a tiny configuration that every training test starts from and shrinks, a
tiny finished run, task batches from one compiled sampler per task, and the settings that keep
compilation, most of the suite's time, short.

Every test that builds a model or a sampler of the same shapes compiles the same XLA program
again, and so does every `python -m diffmem` the tests start. JAX's persistent compilation
cache keeps each program on disk after its first compilation; it is switched on here through
the environment, before jax is imported, so that subprocesses share it. Set
JAX_COMPILATION_CACHE_DIR yourself to keep the cache between sessions (otherwise a fresh
directory is made, and removed at the end). The pytest-xdist workers inherit it from the
controlling process, which alone removes it.

Within a worker, runs of equal settings share their compiled programs in memory as well
(``diffmem.programs``): a test that trains the tiny configuration again traces nothing.

XLA's CPU backend spends most of a program's compilation in LLVM: the suite's programs are
small and run briefly, so they are compiled unoptimised and with XLA's older elemental
emitters instead of its MLIR fusion emitters, which together compile them several times
faster. The results agree with the default compilation to float32 rounding (multiply-adds are
not fused), and every comparison in the suite is between two runs under the same flags or
within a tolerance. Set either flag in XLA_FLAGS yourself to override this.
"""

import os
import shutil
import tempfile

_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="diffmem-xla-cache-")
# Cache every program, however quick to compile or small: the suite's are all small.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
for _flag in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), _flag]).strip()

import inspect  # noqa: E402  (jax reads the environment above when it is imported)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402

from diffmem import tasks  # noqa: E402
from diffmem.config import resolve  # noqa: E402
from diffmem.tasks import Batch  # noqa: E402

# The files with the longest tests, longest first (0.12.0's durations; the Ray test's file,
# the longest single test, first of all): pytest-xdist hands whole files to its workers in
# collection order, so these go first and the short files fill in around them, instead of
# one long file starting last while the others have nothing left to do.
SLOW_FIRST = ("test_sweep.py", "test_population.py", "test_train.py", "test_train_tasks.py",
              "test_resilience.py", "test_demo.py", "test_dnc.py", "test_sdnc.py", "test_report.py",
              "test_dnc_addressing.py", "test_ntm.py", "test_cli.py", "test_restart.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def x64():
    """Enable float64 for one test only; the flag is restored when the test ends."""
    with jax.enable_x64(True):
        yield


def tiny() -> "diffmem.config.Config":  # noqa: F821
    """The default copy configuration shrunk so that a run takes seconds."""
    return resolve("copy").replace(
        model=dict(controller_size=16, memory_rows=16, memory_width=6),
        train=dict(batch_size=4, sequences=32, minutes=None, eval_every=16, val_size=8,
                   eval_count=4, generalisation_val_size=4, lr=3e-3),
    )


def tiny_dnc() -> "diffmem.config.Config":  # noqa: F821
    """``tiny()`` with the DNC: the same task, sizes and training, evaluated on 24 rows."""
    return tiny().replace(model=dict(kind="dnc", eval_memory_rows=24))


def check_resizable_run(config, tmp_path, capsys, layer):
    """Train ``config`` (a model of ``resizable_memory``) whole, and again in two parts, and
    check: the two agree exactly, the run loads as a ``layer`` on its evaluation memory,
    `diffmem eval --memory-rows 64` scores it, and its memory figure is drawn. Returns the
    whole run's directory."""
    import json

    from flax import nnx

    import diffmem
    from diffmem import plots
    from diffmem.cli import main
    from diffmem.training import train_and_evaluate

    whole = train_and_evaluate(config, tmp_path / "whole")
    train_and_evaluate(config.replace(train=dict(sequences=16)), tmp_path / "resumed")
    resumed = train_and_evaluate(config, tmp_path / "resumed", resume=True)
    for a, b in zip(jax.tree.leaves(nnx.state(whole.model, nnx.Param)),
                    jax.tree.leaves(nnx.state(resumed.model, nnx.Param))):
        np.testing.assert_array_equal(a, b)
    loaded, loaded_config = diffmem.load(tmp_path / "whole")
    assert isinstance(loaded, layer)
    assert loaded.cell.memory_rows == config.model.eval_memory_rows
    assert loaded_config == config

    assert main(["eval", str(tmp_path / "whole"), "--sizes", "3", "--count", "2",
                 "--memory-rows", "64", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["label"] == "length 3" and np.isfinite(row["bits"])

    fig = plots.memory_figure(loaded, tasks.get(config.task), {"length": 4})
    titles = [ax.get_title() for ax in fig.axes]
    assert "write head 0: write weighting" in titles and "read head 0: read vectors" in titles
    return tmp_path / "whole"


@pytest.fixture
def tiny_config():
    return tiny()


def _shared_run(tmp_path_factory, worker_id, name, config):
    """A finished run of ``config`` and its loaded model, trained once for the whole session:
    under pytest-xdist the first worker to ask trains it in the workers' common temporary
    directory, holding a lock, and the others load it from there. Tests read it; one that
    changes a run copies it first."""
    import diffmem
    from diffmem.training import train_and_evaluate

    if worker_id == "master":  # not under xdist
        run_dir = tmp_path_factory.mktemp(name)
        train_and_evaluate(config, run_dir)
    else:
        run_dir = tmp_path_factory.getbasetemp().parent / name
        with FileLock(f"{run_dir}.lock"):
            if not (run_dir / "summary.json").exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # a worker that died mid-run
                train_and_evaluate(config, run_dir)
    model, _ = diffmem.load(run_dir)
    return run_dir, model


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id):
    """A finished run of ``tiny()`` (its directory and loaded model), shared by the figure,
    report and CLI tests."""
    return _shared_run(tmp_path_factory, worker_id, "tiny-run", tiny())


@pytest.fixture(scope="session")
def tiny_dnc_run(tmp_path_factory, worker_id):
    """A finished run of ``tiny_dnc()`` (its directory and loaded model), shared by the DNC's
    checkpoint, figure, report and CLI tests."""
    return _shared_run(tmp_path_factory, worker_id, "tiny-dnc-run", tiny_dnc())


class Samples:
    """Task batches as numpy arrays, drawn by one jit-compiled ``task.sample`` per task for the
    whole session, each batch drawn once: compiling a sampler costs about a second per
    (batch size, size) on a CPU, so tests share a few shapes."""

    def __init__(self):
        self._samplers, self._batches = {}, {}

    def sampler(self, name):
        """``jax.jit(task.sample)`` with the batch size and the task's sizes static."""
        if name not in self._samplers:
            task = tasks.get(name)
            sizes = tuple(inspect.signature(task.sample).parameters)[2:]  # after key, batch_size
            self._samplers[name] = jax.jit(task.sample, static_argnums=1, static_argnames=sizes)
        return self._samplers[name]

    def __call__(self, name, seed=0, batch_size=4, **size):
        """A batch of ``batch_size`` from ``jax.random.key(seed)``; without sizes, from the
        training distribution."""
        key = (name, seed, batch_size, tuple(sorted(size.items())))
        if key not in self._batches:
            batch = self.sampler(name)(jax.random.key(seed), batch_size, **size)
            self._batches[key] = Batch(*(np.asarray(x) for x in batch))
        return self._batches[key]

    def pool(self, name, batches, batch_size=4):
        """``batches`` training batches (seeds 100, 101, ...) concatenated: many sequences from
        one compiled sampler, cheaper than compiling a large batch."""
        drawn = [self(name, 100 + seed, batch_size) for seed in range(batches)]
        return Batch(*(np.concatenate(xs) for xs in zip(*drawn)))


@pytest.fixture(scope="session")
def samples():
    return Samples()
