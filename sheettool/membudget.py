"""A memory budget for reading returned files: an address-space limit in collect's workers.

The size limits of xlsx/safety.py bound what one return can cost; this is the second
line. A worker process gets ``RLIMIT_AS`` = what it already uses + the budget, so a file
that still needs more makes that worker's allocation fail (MemoryError, one finding for
that file: F123) instead of the machine swapping or the kernel killing collect.

``SHEETTOOL_WORKER_MEMORY_MB`` sets the budget in MiB (0: no limit).
"""

from __future__ import annotations

import os
from pathlib import Path

MiB = 1024 * 1024
DEFAULT_BUDGET = 768 * MiB  # measured worst legal return: see the peak in tests/test_hostile.py
ENV = "SHEETTOOL_WORKER_MEMORY_MB"

_applied: int | None = None  # the budget this process runs under, once set


def budget() -> int:
    """The budget in bytes (0: none), from the environment or the default."""
    text = os.environ.get(ENV, "").strip()
    if text:
        try:
            return max(0, int(text)) * MiB
        except ValueError:
            pass
    return DEFAULT_BUDGET


def _address_space() -> int | None:
    """Bytes of address space this process uses now (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def apply_worker_budget(amount: int | None = None) -> bool:
    """Limit this process's address space to its current size plus ``amount``; True if set.

    For worker processes only (the limit cannot be raised again). Where the platform has no
    ``resource`` module or no way to tell the current size, nothing is set.
    """
    global _applied
    amount = budget() if amount is None else amount
    if amount <= 0:
        return False
    try:
        import resource
    except ImportError:  # Windows
        return False
    used = _address_space()
    if used is None:
        return False
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = used + amount
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft < limit:
        limit = soft  # someone set a tighter one already
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        return False
    _applied = amount
    return True


def limit_text() -> str:
    """The budget as a message shows it: 約768 MiB, or the machine's memory where none is set."""
    amount = _applied or budget()
    return f"約{amount // MiB:,} MiB" if amount else "このコンピューターのメモリ"
