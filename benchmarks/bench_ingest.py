"""``riskmodel ingest`` end to end: a county folder of monthly person tables into the ledger.

Writes ``--months`` monthly person tables (监测对象信息, 60 columns, three title lines, UTF-8 CSV
with BOM) of ``--households`` households each (about 3.3 persons a household; the tables of
``bench_sources_read.py``, each month drawn with its own seed and carrying its own 导出月份),
then runs ``riskmodel ingest`` on the folder in a fresh process, measuring its wall time, CPU
time and peak resident memory: first with no cache (every file parsed), then again (every file
from the cache), then once more after adding one more month (that file alone parsed).

Targets (issue "county sources"): one table of 1,000,000 households in ≤ 60 s and ≤ 8 GB;
24 tables of 100,000 households in ≤ 2 minutes, on the 2-core project machine.

    python benchmarks/bench_ingest.py --households 1000000 --months 1
    python benchmarks/bench_ingest.py --households 100000 --months 24
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))

from bench_sources_read import person_table, write_csv  # noqa: E402
from peak import run_measured  # noqa: E402


def month_table(households: int, k: int) -> tuple[pa.Table, str]:
    """The person table of the ``k``-th month (from 2023-01) and its YYYYMM."""
    year, month = divmod(2023 * 12 + k, 12)
    yyyymm = f"{year}{month + 1:02d}"
    table = person_table(households, seed=k)
    column = table.schema.get_field_index("导出月份")
    return table.set_column(column, "导出月份", pa.array([yyyymm] * table.num_rows)), yyyymm


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a "
                                                      "temporary folder, removed)")
    args = parser.parse_args(argv)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    sources, out = root / "sources", root / "out" / "ledger.parquet"
    sources.mkdir(parents=True, exist_ok=True)
    persons = 0
    for k in range(args.months):
        table, yyyymm = month_table(args.households, k)
        write_csv(table, sources / f"监测对象信息_{yyyymm}.csv")
        persons += table.num_rows
    size = sum(p.stat().st_size for p in sources.iterdir())
    print(f"{date.today()} on {platform.node()} ({platform.machine()}, "
          f"{__import__('os').cpu_count()} cores): {args.months} person table(s) of "
          f"{args.households:,} households, {persons:,} persons, {size / 1e9:.2f} GB of CSV")
    command = [sys.executable, "-m", "riskmodel.cli", "ingest", "--sources", str(sources),
               "--out", str(out), "--force"]

    def run(label: str, persons_read: int) -> None:
        m = run_measured(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if m.returncode != 0:
            raise SystemExit(f"{label}: ingest exited {m.returncode}")
        print(f"  {label}: {m.seconds:.1f} s wall, {m.cpu_seconds:.1f} s CPU, peak "
              f"{m.peak_bytes / 2**30:.2f} GiB, {persons_read / m.seconds:,.0f} persons/s")

    run("no cache (every file parsed)", persons)
    run("again (every file from the cache)", persons)
    table, yyyymm = month_table(args.households, args.months)
    write_csv(table, sources / f"监测对象信息_{yyyymm}.csv")
    run("one month added (that file parsed)", persons + table.num_rows)
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
