"""Test configuration: CPU only, strict dtype promotion, fixed seeds are set in each test."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
