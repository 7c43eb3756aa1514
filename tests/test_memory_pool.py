"""Arrow's memory pool: the command line takes jemalloc (or the C library's allocator) unless
the operator names one in ARROW_DEFAULT_MEMORY_POOL."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa

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
