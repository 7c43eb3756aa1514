"""Persons to households at the size of a province's monthly person table.

Builds one person table as ``read_sources`` gives it (canonical fields, "string" cells, about
3.3 persons per household, every field a county's export has for the ledger, personal fields
included), a migrant table and a warning list for the same month (not timed), then times
:func:`riskmodel.sources.households_from_tables`: grouping, counts, the household-level
fields compared across member rows, the joins and the ledger's columns.
Target: 1,000,000 households (≈3.3 million persons) well under 30 seconds on 2 cores. The
CPU time is printed beside the wall time: on a shared machine the wall time depends on the load.

    python benchmarks/bench_households.py --households 1000000
    python benchmarks/bench_households.py --households 100000 --months 24
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from riskmodel import load_config
from riskmodel.sources import SourceTable, households_from_tables


def _strings(values) -> pd.Series:
    return pd.Series(pd.array(np.asarray(values, dtype=object), dtype="string"))


def person_table(households: int, seed: int = 0) -> tuple[SourceTable, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 7, households)
    household = np.repeat(np.arange(households), size)
    n = len(household)
    hid = np.char.zfill(household.astype(str), 12)
    year = rng.integers(1940, 2020, n)
    born = (year * 10000 + rng.integers(1, 13, n) * 100 + rng.integers(1, 29, n)).astype(str)
    pid = np.char.add(np.char.add("530123", born), np.char.zfill((np.arange(n) % 1000)
                                                                 .astype(str), 3))
    pid = np.char.add(pid, "X")

    def pick(choices, p=None, per_household=False):
        if per_household:
            return np.asarray(choices, dtype=object)[rng.choice(len(choices), households,
                                                                p=p)][household]
        return np.asarray(choices, dtype=object)[rng.choice(len(choices), n, p=p)]

    wage = rng.integers(0, 60_000, households).astype(str)[household]
    per_head = np.char.add(rng.integers(3_000, 30_000, households).astype(str), ".5")[household]
    frame = pd.DataFrame({
        "county": _strings(np.full(n, "丘北县", dtype=object)),
        "township": pick([f"乡{i}" for i in range(12)], per_household=True),
        "village": pick([f"村{i}" for i in range(200)], per_household=True),
        "household_id": _strings(hid),
        "person_id": _strings(pid),
        "name": _strings(np.char.add("姓名", np.arange(n).astype(str))),
        "phone": _strings(np.char.add("139", np.char.zfill(np.arange(n).astype(str), 8))),
        "bank_account": _strings(np.char.add("6222", np.char.zfill(np.arange(n).astype(str),
                                                                   15))),
        "relation": pick(["户主", "配偶", "之子", "之女"]),
        "household_type": pick(["脱贫户", "一般农户", ""], per_household=True),
        "monitoring_category": pick(["", "", "", "边缘易致贫户", "脱贫不稳定户"],
                                    per_household=True),
        "identified_month": pick(["", "202301", "202211"], per_household=True),
        "risk_eliminated": pick(["否", "是", ""], per_household=True),
        "eliminated_month": pick(["", "202306"], per_household=True),
        **{f"recorded_risk_{k}": pick(["", "因病", "缺劳动力", "因学"], per_household=True)
           for k in range(1, 6)},
        "health": pick(["健康", "长期慢性病", "患大病", "残疾", "长期慢性病、残疾"],
                       p=[0.7, 0.15, 0.05, 0.05, 0.05]),
        "disability_grade": pick(["", "一级", "二级", "三级"], p=[0.9, 0.03, 0.03, 0.04]),
        "labor_skill": pick(["普通劳动力", "技能劳动力", "弱劳动力或半劳动力", "无劳动力"]),
        "schooling": pick(["", "小学三年级", "八年级", "高中一年级"], p=[0.8, 0.08, 0.07, 0.05]),
        "dropout": pick(["否", ""]),
        "working": pick(["是", "否"]),
        "dibao": pick(["未享受", "农村低保", ""], per_household=True),
        "tekun": pick(["否", "是"], p=[0.98, 0.02]),
        "welfare_job": pick(["否", "是", "6"], p=[0.9, 0.05, 0.05]),
        "housing_unsafe": pick(["否", ""], per_household=True),
        "water_safe": pick(["是", ""], per_household=True),
        "annual_inc_wage": _strings(wage),
        "annual_inc_business": _strings(wage),
        "annual_inc_property": pick(["0", "200"], per_household=True),
        "annual_inc_transfer": pick(["3,000", "1500"], per_household=True),
        "annual_exp_medical_oop": pick(["0", "800"], per_household=True),
        "annual_income_pc": _strings(per_head),
        "annual_income_total": _strings(wage),
        "annual_income_year": pick(["2023", "2022"], per_household=True),
    })
    for c in frame.columns:
        frame[c] = frame[c].astype("string")
    frame["_row"] = np.arange(3, n + 3, dtype="int64")
    table = SourceTable("persons_20240105.csv", None, "0" * 64, "persons", "2024-01", frame,
                        {c: c for c in frame.columns if c != "_row"}, 0)
    return table, pid


def feeds(pid: np.ndarray, seed: int = 1, month: str = "2024-01") -> list[SourceTable]:
    rng = np.random.default_rng(seed)
    who = rng.choice(len(pid), len(pid) // 5, replace=False)
    migrants = pd.DataFrame({"person_id": pid[who], "working": "是",
                             "migrant_wage": rng.integers(1000, 6000, len(who)).astype(str)})
    said = rng.choice(len(pid), len(pid) // 50, replace=False)
    warnings = pd.DataFrame({"person_id": pid[said], "warning_month": month.replace("-", ""),
                             "department": np.array(["医保", "民政", "残联"])[
                                 rng.integers(0, 3, len(said))],
                             "warning_item": "x"})
    out = []
    for kind, frame in (("migrants", migrants), ("warnings", warnings)):
        frame = frame.astype("string")
        frame["_row"] = np.arange(2, len(frame) + 2, dtype="int64")
        out.append(SourceTable(f"{kind}_{month}.csv", None, "0" * 64, kind, month, frame,
                               {c: c for c in frame.columns if c != "_row"}, 0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=1,
                        help="monthly person tables (the same persons each month)")
    args = parser.parse_args()
    persons, pid = person_table(args.households)
    tables = []
    for i in range(args.months):
        month = f"{2024 + i // 12}-{i % 12 + 1:02d}"
        tables += [replace(persons, month=month, path=f"persons_{month}.csv"),
                   *feeds(pid, seed=i, month=month)]
    config = load_config()
    start, cpu = time.perf_counter(), time.process_time()
    made = households_from_tables(tables, config)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    n = len(persons.frame) * args.months
    print(f"{n:,} persons ({args.months} months) -> {len(made.ledger):,} household-months in "
          f"{seconds:.1f} s "
          f"({n / seconds:,.0f} persons/s; {cpu:.1f} s of CPU time, all threads); "
          f"quarantined {len(made.quarantine):,}; "
          f"peak memory of the process {peak:.2f} GiB")


if __name__ == "__main__":
    main()
