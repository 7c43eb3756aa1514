"""generate → ingest: what ingest reads from the generator's county folder equals what the
generator knows it wrote, for every household-month; persons reconcile; a month's new files are
parsed alone."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from riskmodel import validate_ledger
from riskmodel.sources import ingest
from riskmodel.synthetic import county_sources, write_sources


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("county")
    sources = county_sources(150, 16, start="2023-02", seed=5)
    write_sources(sources, root / "sources", root / "expected.parquet")
    return root, sources


def test_ingest_gives_what_the_generator_wrote(folder):
    root, sources = folder
    result = ingest(root / "sources", root / "ledger.parquet")
    expected = pd.read_parquet(root / "expected.parquet")
    # The folder's month files, as the one file they replace: by household, then month.
    got = pd.read_parquet(root / "ledger.parquet").sort_values(["household_id", "month"],
                                                              ignore_index=True)
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) == 150 * 16
    report = result.report
    assert report["persons_in"] == report["persons_aggregated"] > 150 * 16
    assert report["persons_quarantined"] == 0 and report["unknown_values"] == {}
    assert report["warnings"]["unmatched"] == sources.unmatched
    assert sum(m["persons"] for m in report["months"].values()) == report["persons_in"]
    kinds = {f["kind"] for f in report["files"]}
    assert kinds == {"persons", "migrants", "warnings"}
    assert {f["path"].rsplit(".", 1)[1] for f in report["files"]} == {"csv", "xlsx"}
    assert len(validate_ledger(got).quarantine) == 0


def test_the_latent_counts_survive_the_persons(folder):
    root, sources = folder
    from riskmodel.synthetic import generate_ledger

    latent = generate_ledger(150, 16, start="2023-02", seed=5)
    ids = sources.household_ids
    expected = pd.read_parquet(root / "expected.parquet")
    mapping = dict(zip(ids.iloc[:, 0], ids.iloc[:, 1], strict=True))
    latent = latent.assign(household_id=latent["household_id"].astype(str).map(mapping))
    merged = expected.merge(latent, on=["household_id", "month"], suffixes=("", "_latent"))
    assert len(merged) == len(expected)
    for column in ["members", "labor_full", "labor_partial", "elderly", "children",
                   "students_compulsory", "students_noncompulsory", "chronic_ill",
                   "serious_ill", "disabled", "disabled_severe", "migrant_workers", "dropouts"]:
        assert (merged[column].astype(int) == merged[f"{column}_latent"].astype(int)).all(), column


def test_rerun_is_byte_identical_and_a_new_month_is_parsed_alone(tmp_path, caplog):
    sources = county_sources(60, 6, start="2024-01", seed=2)
    write_sources(sources, tmp_path / "all", tmp_path / "expected.parquet")
    months = sorted(sources.months)
    # The folder as it stood a month earlier: every file but the last month's.
    last = months[-1].replace("-", "")
    early = tmp_path / "early"
    for path in sorted((tmp_path / "all").rglob("*")):
        if path.is_file():
            target = early / path.relative_to(tmp_path / "all")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    new = [p for p in early.rglob("*") if p.is_file() and last in p.name]
    assert new, "the generator names the last month's files by their month"
    for p in new:
        p.unlink()
    out = tmp_path / "out" / "ledger.parquet"
    ingest(early, out)
    caplog.set_level(logging.INFO, logger="riskmodel.sources")
    for p in new:
        target = early / p.relative_to(early)
        target.write_bytes((tmp_path / "all" / p.relative_to(early)).read_bytes())
    caplog.clear()
    ingest(early, out, force=True)
    parsed = sorted(r.getMessage().split(":")[0] for r in caplog.records
                    if r.getMessage().endswith(")") and ": parsed (" in r.getMessage())
    assert parsed == sorted(p.relative_to(early).as_posix() for p in new)
    written = [*out.parent.iterdir(), *out.iterdir()]  # the ledger: a folder of month files
    first = {p.name: p.read_bytes() for p in written if p.is_file()}
    ingest(early, out, force=True)
    again = {p.name: p.read_bytes() for p in [*out.parent.iterdir(), *out.iterdir()]
             if p.is_file()}
    assert first == again and f"{months[-1]}.parquet" in first and "ingest_report.json" in first
