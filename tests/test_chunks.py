"""Reading a ledger file household-chunk by household-chunk, and the rows of chosen households."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskmodel.chunks import LedgerChunks
from riskmodel.synthetic import generate_ledger


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    ledger = generate_ledger(households=60, months=6, seed=3)
    # Real files are often sorted by month, so a household's rows lie in many row groups; one
    # id carries stray spaces, as typed ledgers do.
    ledger = ledger.sort_values(["month", "household_id"], kind="stable", ignore_index=True)
    ledger["household_id"] = ledger["household_id"].astype(object)
    ledger.loc[ledger["household_id"] == ledger.loc[0, "household_id"], "household_id"] = (
        " " + str(ledger.loc[0, "household_id"]) + " ")
    return ledger


def write(raw: pd.DataFrame, folder, kind: str):
    path = folder / f"ledger.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), path, row_group_size=50)
    else:
        raw.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_chunks_hold_every_row_once_with_whole_households(raw, tmp_path, kind):
    chunks = LedgerChunks(write(raw, tmp_path, kind), chunk_households=25)
    assert chunks.n_rows == len(raw) and chunks.n_chunks == 3
    seen, households = [], []
    for rows, frame in chunks:
        assert len(rows) == len(frame)
        seen.append(rows)
        households.append(set(frame["household_id"].astype(str).str.strip()))
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(raw)))
    assert sum(len(h) for h in households) == 60          # no household in two chunks


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_rows_of_the_chosen_households_in_file_order(raw, tmp_path, kind):
    chunks = LedgerChunks(write(raw, tmp_path, kind), chunk_households=25)
    ids = raw["household_id"].astype(str).str.strip()
    wanted = [ids.iloc[0], ids.iloc[7], ids.iloc[-1], "not-in-the-ledger"]
    got = chunks.rows_of(wanted)
    expected = raw[ids.isin(wanted).to_numpy()]
    assert len(got) == len(expected) == 18
    assert got["household_id"].astype(str).tolist() == expected["household_id"].astype(str).tolist()
    np.testing.assert_allclose(pd.to_numeric(got["inc_wage"], errors="coerce"),
                               pd.to_numeric(expected["inc_wage"], errors="coerce"))
    # The id typed with spaces is found by its clean form.
    assert got["household_id"].astype(str).str.startswith(" ").sum() == 6
    empty = chunks.rows_of([])
    assert empty.empty and "household_id" in empty.columns
