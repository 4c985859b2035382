"""Shared helpers: a tiny configuration that every training test starts from and shrinks."""

import jax
import pytest

from diffmem.config import resolve


@pytest.fixture
def x64():
    """Enable float64 for one test only; the flag is restored when the test ends."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def tiny_config():
    """The default copy configuration shrunk so that a run takes seconds."""
    return resolve("copy").replace(
        model=dict(controller_size=16, memory_rows=16, memory_width=6),
        train=dict(batch_size=4, sequences=32, minutes=None, eval_every=16, val_size=8,
                   eval_count=4, lr=3e-3),
    )


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """Share compiled programs between tests: many build the same small model."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield


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
