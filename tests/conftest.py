"""Test configuration: CPU only, strict dtype promotion, fixed seeds are set in each test.

XLA's persistent compilation cache is on for the suite (and for the CLI subprocesses the tests start): many tests
compile the same programs (one job config resumed, re-run, read back), and on 2 cores compilation is most of their
time. The cache lives in ``.pytest_cache/jax-compilation-cache`` (empty on a fresh clone; never committed).
"""
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax-compilation-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
