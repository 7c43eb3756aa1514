"""Benchmark of the county's month under regime b: ``riskmodel ingest`` (appending the new
month) then ``riskmodel score`` of that month, each in a fresh process, against 120 s.

The setting is built once and kept in ``--workdir``:

- a county of ``--base`` households × ``--months`` months is simulated under the county's
  sources (:func:`riskmodel.synthetic.county_sources`: annual verification, migrant tables,
  department warnings) and written as its folder of exports;
- its first ``months - 1`` months are ingested (a real full ingest, which leaves the state an
  appending ingest checks); each month file of that ledger folder is then tiled
  ``--households / --base`` times (each tile its own 户编号 prefix) into the month of
  ``--households`` households, in place (the state's record of the ledger is updated to it; the
  report and quarantine of the old months stay those of the ``--base`` households);
- the last month's person table, migrant table and warning lists are tiled the same way (户编号
  prefixed, 证件号码's first six digits replaced per tile, birth digits kept) into CSV files of
  ``--households`` households: the new month's downloads;
- a model is trained (not timed) on the ingested ``--base`` ledger of every month, with
  ``label.kind: identified``.

Each run copies the ingested outputs afresh (not timed), so the new month's files are parsed,
never taken from the cache, and an MLflow store that exists, as a county's does from its
training (a copy of one made once, not timed); then times both commands, wall and peak memory
(``peak.py``: the largest process; ``tree_peak_gib``: the command and its worker processes
together).

    python benchmarks/bench_monthly.py --households 1000000 --workdir /tmp/bench-monthly

``--score-only`` times ``score`` again on the ledger the last run's ingest left, with the
per-stage CPU seconds of ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from peak import run_measured

TARGET_S = 120.0
#: The ledger as ``riskmodel ingest`` writes it: a folder of month files.
LAYOUT = "folder"
START = "2023-01"


def _encoding(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "gb18030"


def _read_export(path: Path) -> tuple[list[str], pd.DataFrame]:
    """A generated export's title lines and its table (every cell text)."""
    if path.suffix.lower() == ".xlsx":
        sheet = pd.read_excel(path, header=None, dtype=str).fillna("")
        at = next(i for i in range(min(12, len(sheet)))
                  if {"户编号", "证件号码"} & set(sheet.iloc[i]))
        frame = sheet.iloc[at + 1:].reset_index(drop=True)
        frame.columns = list(sheet.iloc[at])
        return [], frame
    raw = path.read_bytes()
    encoding = _encoding(raw)
    lines = raw.decode(encoding).splitlines()
    at = next(i for i, line in enumerate(lines[:12]) if "户编号" in line or "证件号码" in line)
    frame = pd.read_csv(path, encoding=encoding, skiprows=at, dtype=str, keep_default_na=False)
    return lines[:at], frame


def tile_export(path: Path, out: Path, tiles: int) -> int:
    """Write ``path`` (a generated export: title lines, a header, data rows) ``tiles`` times
    over as one UTF-8 CSV, 户编号 prefixed with the tile and 证件号码 given a region per tile;
    return the data rows written."""
    titles, frame = _read_export(path)
    frames = []
    for k in range(tiles):
        part = frame.copy()
        for c in part.columns:
            name = str(c).strip().strip('"')
            if name == "户编号":
                ids = part[c]
                part[c] = np.where(ids != "", f"{k:03d}" + ids, ids)
            elif name == "证件号码":
                ids = part[c]
                part[c] = np.where(ids.str.len() == 18, f"9{k:05d}" + ids.str[6:], ids)
        frames.append(part)
    whole = pd.concat(frames, ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="") as handle:
        handle.write("".join(f"{t}\n" for t in titles))
        whole.to_csv(handle, index=False)
    return len(whole)


def tile_ledger(ledger: Path, tiles: int) -> int:
    """Each month file of the ledger folder ``tiles`` times over, 户编号 prefixed with the tile
    (tile-major: each file still sorted by household), written in place with the ledger's own
    settings; return the rows."""
    import pyarrow.compute as pc

    from riskmodel.ledger import month_files, write_month_file

    rows = 0
    for path in month_files(ledger):
        table = pq.read_table(path)
        at = table.schema.get_field_index("household_id")
        field = table.schema.field(at)
        parts = []
        for k in range(tiles):
            ids = pc.binary_join_element_wise(f"{k:03d}", table.column(at).cast(pa.string()), "")
            parts.append(table.set_column(at, field, ids.cast(field.type)))
        tiled = pa.concat_tables(parts)
        rows += tiled.num_rows
        write_month_file(tiled, path)
    return rows


def _rows(ledger: Path) -> int:
    from riskmodel.ledger import month_files

    return sum(pq.ParquetFile(f).metadata.num_rows for f in month_files(ledger))


def _train(ledger: Path, config_path: Path, model_dir: Path) -> None:
    from bench_score import fit_model

    from riskmodel import load_config, read_ledger, validate_ledger
    from riskmodel.model import save_model

    config = load_config(config_path)
    model = fit_model(validate_ledger(read_ledger(ledger)).valid, config)
    save_model(model, model_dir)


def prepare(work: Path, households: int, base: int, months: int, seed: int) -> dict:
    """Build (once) the setting in ``work``; return its paths and the new month."""
    from riskmodel.sources import ingest
    from riskmodel.sources._append import STATE_NAME, output_stats
    from riskmodel.synthetic import county_sources, write_sources

    if households % base:
        sys.exit(f"--households {households} is not a multiple of --base {base}")
    tiles = households // base
    done = work / "setting.json"
    if done.exists():
        setting = json.loads(done.read_text(encoding="utf-8"))
        if setting.get("layout") != LAYOUT:
            sys.exit(f"{work} holds a one-file ledger of an earlier version; use another "
                     "--workdir")
        if setting["households"] == households and setting["base"] == base:
            return setting
        sys.exit(f"{work} holds a setting of other sizes; use another --workdir")
    work.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    county = work / "county"
    if not county.exists():
        write_sources(county_sources(base, months, start=START, seed=seed), county)
    config = work / "identified.yaml"
    config.write_text("label:\n  kind: identified\n", encoding="utf-8")
    every = sorted({p.parent.name for p in county.rglob("*") if p.is_file()})
    new_month = every[-1]
    old = work / "old"
    shutil.rmtree(old, ignore_errors=True)
    for path in county.rglob("*"):
        if path.is_file() and path.parent.name != new_month:
            target = old / path.relative_to(county)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    print(f"county of {base:,} households × {months} months: {time.perf_counter() - tick:.0f} s")

    # The base ledger of every month (for training), then the old months' real ingest.
    tick = time.perf_counter()
    ingest(county, work / "base" / "ledger.parquet", force=True)
    model = work / "model"
    if not model.exists():
        _train(work / "base" / "ledger.parquet", config, model)
    template = work / "template"
    shutil.rmtree(template, ignore_errors=True)
    ingest(old, template / "ledger.parquet")
    print(f"ingests and model: {time.perf_counter() - tick:.0f} s")

    # The old months at full size: the ingested ledger tiled; the state records it.
    tick = time.perf_counter()
    ledger = template / "ledger.parquet"
    rows = tile_ledger(ledger, tiles)
    state_path = template / ".riskmodel-cache" / STATE_NAME
    state = json.loads(state_path.read_text(encoding="utf-8"))
    state["outputs"] = output_stats({
        "ledger": ledger, "report": template / "ingest_report.json",
        "quarantine": template / "ingest_quarantine.parquet",
        "quarantine_xlsx": template / "ingest_quarantine.xlsx"})
    state_path.write_text(json.dumps(state, ensure_ascii=False, sort_keys=True),
                          encoding="utf-8")
    incoming = work / "incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    persons = 0
    for path in sorted((county / new_month).iterdir()):
        n = tile_export(path, incoming / new_month / f"{path.stem}.csv", tiles)
        if "监测对象" in path.name:
            persons += n
    print(f"tiled ×{tiles}: ledger {rows:,} rows "
          f"({sum(f.stat().st_size for f in ledger.iterdir()) / 2**20:.0f} MiB), "
          f"new month {persons:,} persons: {time.perf_counter() - tick:.0f} s")
    setting = {"households": households, "base": base, "months": months, "seed": seed,
               "layout": LAYOUT, "new_month": new_month, "old_rows": rows, "new_persons": persons}
    done.write_text(json.dumps(setting), encoding="utf-8")
    return setting


def _tree_pss() -> int:
    """The summed proportional set size (bytes) of this process's descendants: the memory a
    command and the worker processes it forked hold together, shared pages counted once."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    todo, total = list(children.get(os.getpid(), [])), 0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                total += sum(int(line.split()[1]) * 1024 for line in f
                             if line.startswith("Pss:"))
        except OSError:
            continue
    return total


class _TreeMemory:
    """The peak of :func:`_tree_pss`, sampled every 0.2 s while the ``with`` block runs (0
    where ``/proc`` does not say)."""

    def __enter__(self) -> _TreeMemory:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _tree_pss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _measured(command: list[str]) -> tuple[dict, str]:
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as err, _TreeMemory() as memory:
        done = run_measured(command, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        said, errors = out.read(), err.read()
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed ({done.returncode}):\n{errors[-4000:]}")
    # peak_gib: the largest single process (``peak.py``); tree_peak_gib: the command and the
    # workers it forked together (``scoring.workers``), sampled.
    return {"wall_s": round(done.seconds, 1), "cpu_s": round(done.cpu_seconds, 1),
            "user_s": round(done.user_seconds, 1), "system_s": round(done.system_seconds, 1),
            "peak_gib": round(done.peak_bytes / 2**30, 2),
            "tree_peak_gib": round(memory.peak / 2**30, 2)}, said


def _store(work: Path, run_dir: Path) -> Path:
    """A tracking store for ``run_dir``'s score: a copy of ``<work>/store.db``, an MLflow
    SQLite store with its tables made (made once, not timed). A county's monthly job logs to
    the store its model was trained in, which exists; making the tables of a new store takes
    about 1.3 s of CPU more, which the job would otherwise count."""
    from mlflow import MlflowClient

    made = work / "store.db"
    if not made.exists():
        staged = work / "store.db.part"
        staged.unlink(missing_ok=True)
        MlflowClient(tracking_uri=f"sqlite:///{staged}").search_experiments()
        staged.replace(made)
    store = run_dir / "mlruns.db"
    shutil.copyfile(made, store)
    return store


def _score(work: Path, run_dir: Path, ledger: Path, setting: dict,
           config: str | None = None) -> tuple[dict, dict]:
    """Time ``riskmodel score`` of the new month into ``run_dir`` (with ``--config config``
    when given), logging to an existing store (:func:`_store`); its figures and summary."""
    store = _store(work, run_dir)
    python = [sys.executable, "-m", "riskmodel.cli"]
    score, said = _measured([*python, "score", "--ledger", str(ledger), "--month",
                             setting["new_month"], "--model", str(work / "model"),
                             "--out", str(run_dir / "scores"),
                             "--tracking-uri", f"sqlite:///{store}",
                             *(["--config", config] if config else [])])
    print(said.strip()[-2000:])
    summary = json.loads((run_dir / "scores" / setting["new_month"] / "summary.json")
                         .read_text(encoding="utf-8"))
    return score, summary


def score_only(work: Path, setting: dict, config: str | None = None) -> dict:
    """Time ``score`` alone on the ledger the last run's ingest left in ``<workdir>/run/out``."""
    run_dir = work / "run"
    ledger = run_dir / "out" / "ledger.parquet"
    if not ledger.exists():
        sys.exit(f"{ledger} is missing: run the benchmark once without --score-only")
    shutil.rmtree(run_dir / "scores", ignore_errors=True)
    shutil.rmtree(run_dir / "mlartifacts", ignore_errors=True)
    score, summary = _score(work, run_dir, ledger, setting, config)
    return {"score": score, "stages_s": summary.get("timings_s"),
            "stages_cpu_s": summary.get("cpu_s"), "rows": _rows(ledger)}


def run(work: Path, setting: dict, config: str | None = None) -> dict:
    """Copy the ingested outputs and the folder afresh; time ingest (append) and score."""
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    out = run_dir / "out"
    shutil.copytree(work / "template", out, copy_function=shutil.copy2)
    county = run_dir / "county"
    for src in (work / "old", work / "incoming"):
        for path in src.rglob("*"):
            if path.is_file():
                target = county / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
    python = [sys.executable, "-m", "riskmodel.cli"]
    ledger = out / "ledger.parquet"
    ingest, said = _measured([*python, "ingest", "--sources", str(county), "--out", str(ledger),
                              "--force"])
    print(said.strip())
    if "appended" not in said:
        sys.exit("the ingest did not append")
    score, summary = _score(work, run_dir, ledger, setting, config)
    total = ingest["wall_s"] + score["wall_s"]
    return {"ingest": ingest, "score": score, "total_s": round(total, 1),
            "met": total <= TARGET_S, "stages_s": summary.get("timings_s"),
            "stages_cpu_s": summary.get("cpu_s"),
            "rows": _rows(ledger)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--base", type=int, default=10_000,
                        help="households simulated; tiled up to --households")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workdir", required=True, help="where the setting is built and kept")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--prepare-only", action="store_true",
                        help="build the setting and stop")
    parser.add_argument("--score-only", action="store_true",
                        help="time score alone, on the ledger the last run's ingest left")
    parser.add_argument("--score-config", metavar="YAML",
                        help="passed to score as --config (e.g. scoring: {workers: 1})")
    args = parser.parse_args(argv)
    work = Path(args.workdir)
    setting = prepare(work, args.households, args.base, args.months, args.seed)
    if args.prepare_only:
        return
    with open("/proc/loadavg", encoding="ascii") as f:
        load = f.read().split()[:3]
    figures = (score_only(work, setting, args.score_config) if args.score_only
               else run(work, setting, args.score_config))
    figures |= {"setting": setting, "load_before": load,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "cpus": os.cpu_count()}
    print(json.dumps(figures, ensure_ascii=False, indent=1))
    if args.score_only:
        if args.json:
            Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=1),
                                       encoding="utf-8")
        return
    i, s = figures["ingest"], figures["score"]
    print(f"ingest {i['wall_s']} s ({i['peak_gib']} GiB) + score {s['wall_s']} s "
          f"({s['tree_peak_gib']} GiB, its workers included) = {figures['total_s']} s "
          f"against {TARGET_S:.0f} s: "
          f"{'met' if figures['met'] else 'not met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=1),
                                   encoding="utf-8")


if __name__ == "__main__":
    main()
