"""The month scored by several processes at once (``scoring.workers``) publishes what one
process publishes: the same bytes of scores and quarantine, the same counts, rejected rows
numbered by their place in the ledger folder."""

from __future__ import annotations

import json
import multiprocessing

import numpy as np
import pandas as pd
import pytest
from conftest import small_model

from riskmodel.errors import LedgerError
from riskmodel.ledger import (
    KEY,
    PARQUET_OPTIONS,
    LedgerChunks,
    read_ledger,
    write_ledger_folder,
)
from riskmodel.scoring import score_month
from riskmodel.scoring._workers import shares
from riskmodel.synthetic import generate_ledger


@pytest.mark.parametrize(("n", "workers", "expected"), [
    (1, 2, [(0, 1)]),
    (2, 2, [(0, 1), (1, 2)]),
    (5, 2, [(0, 3), (3, 5)]),
    (7, 3, [(0, 3), (3, 5), (5, 7)]),
    (4, 1, [(0, 4)]),
])
def test_shares_are_contiguous_and_cover_every_chunk_once(n, workers, expected):
    got = shares(n, workers)
    assert got == expected
    assert [s for a, b in got for s in range(a, b)] == list(range(n))


@pytest.mark.parametrize("group_rows", [None, 7])
def test_a_worker_reads_its_chunks_as_one_pass_gives_them(tmp_path, monkeypatch, group_rows):
    """With month files of several row groups, a worker starts each file at the row group
    holding its first row (7 rows: mid-group, mid-household) and reads the same rows."""
    if group_rows is not None:
        monkeypatch.setitem(PARQUET_OPTIONS, "row_group_size", group_rows)
    raw = generate_ledger(households=50, months=4, seed=2).sort_values(KEY, ignore_index=True)
    folder = tmp_path / "ledger.parquet"
    write_ledger_folder(raw, folder)
    chunks = LedgerChunks(folder, chunk_households=12)
    assert chunks.n_chunks == 5
    if group_rows is not None:
        # The third chunk's first row of the first file: three row groups (21 rows) before it.
        first = int(np.flatnonzero(chunks.chunk_of_row == 2)[0])
        assert first == 24 and chunks._parts._groups_before(0, first) == (3, 21)
    every = list(chunks)
    for start, stop in [(0, 2), (2, 5), (4, 5), (3, 3)]:
        part = list(chunks.read_chunks(start, stop))
        assert len(part) == stop - start
        for (rows, frame), (want_rows, want) in zip(part, every[start:stop], strict=True):
            assert np.array_equal(rows, want_rows)
            pd.testing.assert_frame_equal(frame, want)


def _config(path, workers, chunk_households):
    path.write_text(f"scoring:\n  workers: {workers}\n  chunk_households: {chunk_households}\n",
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from riskmodel.model import save_model

    _, _, model = small_model(seed=4, households=300)
    return save_model(model, tmp_path_factory.mktemp("model") / "model")


def test_several_workers_publish_what_one_publishes(tmp_path, model_dir):
    raw = generate_ledger(households=150, months=14, seed=9)
    raw = raw.sort_values(KEY, kind="stable", ignore_index=True).astype({"members": object})
    month = raw["month"].max()
    # Rejected rows in several chunks, of the month and of months before.
    in_month = raw.index[raw["month"] == month]
    raw.loc[in_month[[3, 70, 140]], "members"] = 0
    raw.loc[[5, 900, 2000], "members"] = -2
    folder = tmp_path / "ledger.parquet"
    write_ledger_folder(raw.astype({"members": "string"}), folder)
    common = {"month": month, "model_uri": str(model_dir),
              "tracking_uri": f"sqlite:///{tmp_path / 'mlruns.db'}"}
    one = score_month(folder, tmp_path / "one",
                      config_path=_config(tmp_path / "one.yaml", 1, 1000), **common)
    # 150 households, 40 a chunk: 4 chunks in 3 processes.
    three = score_month(folder, tmp_path / "three",
                        config_path=_config(tmp_path / "three.yaml", 3, 120), **common)
    for name in ["scores.parquet", "quarantine.parquet", "watchlist.csv"]:
        assert (one.folder / name).read_bytes() == (three.folder / name).read_bytes(), name
    quarantine = pd.read_parquet(three.folder / "quarantine.parquet")
    assert len(quarantine) == 3
    whole = read_ledger(folder)
    assert (whole.loc[quarantine["source_row"], "month"] == month).all()
    assert quarantine["household_id"].nunique() == 3

    def counts(result):
        summary = json.loads((result.folder / "summary.json").read_text(encoding="utf-8"))
        return {k: v for k, v in summary.items() if k not in ("timings_s", "cpu_s", "mlflow")}

    assert counts(one) == counts(three)
    assert counts(three)["ledger"]["quarantined"] == 6
    assert counts(three)["reconciliation"]["rows_in"] == 150


def test_a_month_over_its_quarantine_limit_stops_the_workers_and_writes_nothing(tmp_path,
                                                                              model_dir):
    raw = generate_ledger(households=150, months=14, seed=9)
    raw = raw.sort_values(KEY, kind="stable", ignore_index=True).astype({"members": object})
    month = raw["month"].max()
    raw.loc[raw.index[raw["month"] == month][:20], "members"] = 0
    folder = tmp_path / "ledger.parquet"
    write_ledger_folder(raw.astype({"members": "string"}), folder)
    config = tmp_path / "strict.yaml"
    config.write_text("scoring:\n  workers: 3\n  chunk_households: 120\n"
                      "  max_quarantine_share: 0.01\n", encoding="utf-8")
    with pytest.raises(LedgerError, match="max_quarantine_share") as err:
        score_month(folder, tmp_path / "out", month=month, model_uri=str(model_dir),
                    tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}", config_path=config)
    assert err.value.exit_code == 2
    assert not (tmp_path / "out" / month).exists()
    assert multiprocessing.active_children() == []


def test_a_killed_job_takes_its_workers_with_it(tmp_path, model_dir):
    """A job killed outright (SIGKILL) while its worker scores: the worker ends too, so the
    output folder's lock is free for the next run, which publishes."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    raw = generate_ledger(households=150, months=14, seed=9).sort_values(KEY, ignore_index=True)
    folder = tmp_path / "ledger.parquet"
    write_ledger_folder(raw, folder)
    out, pids = tmp_path / "out", tmp_path / "worker.pid"
    config = _config(tmp_path / "two.yaml", 2, 120)
    tracking = f"sqlite:///{tmp_path / 'mlruns.db'}"
    script = textwrap.dedent(f"""
        import os, pathlib, time
        import riskmodel.scoring._job as job
        job_pid, real = os.getpid(), job.score_frame
        def stall(*args, **kwargs):
            if os.getpid() != job_pid:  # the worker: says who it is, then never ends
                pathlib.Path({str(pids)!r}).write_text(str(os.getpid()))
                time.sleep(600)
            return real(*args, **kwargs)
        job.score_frame = stall
        job.score_month({str(folder)!r}, {str(out)!r}, model_uri={str(model_dir)!r},
                        tracking_uri={tracking!r}, config_path={str(config)!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not pids.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert pids.exists(), "the worker never started"
        worker = int(pids.read_text())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{worker}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{worker}"), "the worker outlived the job"
    result = score_month(folder, out, model_uri=str(model_dir), tracking_uri=tracking,
                         config_path=config)
    assert (result.folder / "scores.parquet").is_file()
