"""Test session set-up: 8 fake CPU devices, so data-parallel code runs as on an 8-chip host.

The device count is fixed when jax first initialises its backend, so the flag is set here,
before any test module imports jax.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
