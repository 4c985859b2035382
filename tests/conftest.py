"""Shared helpers: a tiny configuration that every training test starts from and shrinks, and
one compilation cache for the whole session.

Most of the suite's time is XLA compiling the same few small programs: every test that builds
a model or a sampler of the same shapes compiles the same program again, and so does every
`python -m diffmem` the tests start. JAX's persistent compilation cache keeps each compiled
program on disk after its first compilation. It is switched on here, before jax is imported,
through the environment, so that the subprocesses inherit it; set JAX_COMPILATION_CACHE_DIR
yourself to keep the cache between sessions (a fresh directory is made otherwise, and removed
at the end).
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

import jax  # noqa: E402  (after the environment above, which jax reads when imported)
import pytest  # noqa: E402

from diffmem.config import resolve  # noqa: E402


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
                   eval_count=4, lr=3e-3),
    )


@pytest.fixture
def tiny_config():
    return tiny()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished tiny copy run with two read heads (its directory and loaded model), shared
    by the figure, report and CLI tests."""
    import diffmem
    from diffmem.train import train_and_evaluate

    config = resolve("copy").replace(
        model=dict(controller_size=16, memory_rows=16, memory_width=6, read_heads=2,
                   write_heads=1),
        train=dict(batch_size=4, sequences=32, minutes=None, eval_every=16, val_size=8,
                   eval_count=4),
    )
    run_dir = tmp_path_factory.mktemp("tiny-run")
    train_and_evaluate(config, run_dir)
    model, _ = diffmem.load(run_dir)
    return run_dir, model
