"""dpbench: Diffusion Policy and the classic imitation-learning baselines, benchmarked honestly."""

from __future__ import annotations

__version__ = "0.1.0"

from dpbench.host import configure_allocator as _configure_allocator
from dpbench.host import configure_openmp as _configure_openmp

_configure_openmp()  # before anything loads torch: OpenMP threads sleep, not spin, when cores are shared
_configure_allocator()  # glibc keeps freed memory rather than faulting it back in every training step

from dpbench import envs as _envs  # noqa: E402,F401  (registers the Gymnasium IDs)
