"""Arrow's memory pool: the command line takes jemalloc (or the C library's allocator) unless
the operator names one in ARROW_DEFAULT_MEMORY_POOL."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa
import pytest

CODE = ("import pyarrow as pa; from riskmodel.ledger import use_memory_pool; "
        "before = pa.default_memory_pool().backend_name; got = use_memory_pool(); "
        "print(before, got, pa.default_memory_pool().backend_name)")


def _run(**env) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", CODE], env={**environ, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_jemalloc_or_the_system_allocator_replaces_the_default_pool():
    _, got, now = _run()
    try:
        pa.jemalloc_memory_pool()
        expected = "jemalloc"
    except NotImplementedError:
        expected = "system"
    assert got == now == expected


def test_a_pool_the_operator_names_is_kept():
    before, got, now = _run(ARROW_DEFAULT_MEMORY_POOL="system")
    assert before == got == now == "system"


# --- the C library's allocator ------------------------------------------------------------

FAULTS = """
import resource, sys
import numpy as np
from riskmodel.ledger import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
block = np.ones(12_000_000)  # 96 MB: glibc maps blocks this large afresh unless told
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    block = np.ones(12_000_000)
    del block
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], env={**environ, **env},
                         capture_output=True, text=True, check=True)
    kept, faults = out.stdout.split()
    return kept, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_freed_blocks_are_used_again_instead_of_faulted_in_afresh():
    kept, with_it = _faults("keep")
    assert kept == "True"
    _, without = _faults("default")
    # Five more rounds of a 96 MB block once the first is freed: its pages used again when
    # kept, mapped and touched afresh each round otherwise.
    assert with_it < without / 5


def test_an_operators_own_malloc_setting_is_left_to_rule():
    kept, _ = _faults("keep", MALLOC_TRIM_THRESHOLD_="131072")
    assert kept == "False"
