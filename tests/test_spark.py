"""The Spark engine gives the pandas engine's results: same scores, tiers, reasons, quarantine."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.model import RiskModel, build_features, make_labels, save_model
from riskmodel.scoring import score_month
from riskmodel.synthetic import generate_ledger

pytest.importorskip("pyspark", reason="pyspark is the optional [spark] extra")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java, which is not installed here", allow_module_level=True)

pytestmark = pytest.mark.slow
MONTH = "2023-08"


def _save_model(raw: pd.DataFrame, path, max_iter: int) -> None:
    """A small risk model fitted on ``raw`` (a generated ledger), saved to ``path``."""
    config = load_config()
    train = validate_ledger(raw).valid
    features = build_features(train, config)
    target = make_labels(train, config)["target"].to_numpy()
    rows = ~np.isnan(target)
    model = RiskModel.from_config(
        config, features=list(features.columns), max_iter=max_iter, min_samples_leaf=20,
        validation_months=2, calibration_months=3,
    ).fit(features[rows], target[rows], months=train["month"].to_numpy()[rows])
    save_model(model, path)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark")
    _save_model(generate_ledger(households=400, months=24, seed=21), root / "model", 40)

    raw = generate_ledger(households=300, months=20, start="2022-01", seed=5).astype(object)
    rng = np.random.default_rng(3)
    broken = rng.choice(len(raw), size=6, replace=False)
    raw.loc[broken[0], "members"] = 0
    raw.loc[broken[1], "inc_wage"] = "一千"
    raw.loc[broken[2], "month"] = "2023-13"
    raw.loc[broken[3], "housing_safe"] = "maybe"
    last = np.flatnonzero((raw["month"] == MONTH).to_numpy())[:2]
    raw.loc[last[0], "elderly"] = -1
    raw = pd.concat([raw, raw.iloc[[last[1]]]], ignore_index=True)
    for col in ["members", "inc_wage", "housing_safe", "elderly"]:
        raw[col] = raw[col].astype("string")
    raw.to_parquet(root / "ledger.parquet", row_group_size=1500)
    return root


@pytest.fixture(scope="module")
def runs(work):
    tracking = f"sqlite:///{work / 'mlruns.db'}"
    common = {"month": MONTH, "model_uri": str(work / "model"), "tracking_uri": tracking}
    pandas_run = score_month(work / "ledger.parquet", work / "pandas", **common)
    spark_run = score_month(work / "ledger.parquet", work / "spark", engine="spark", **common)
    return pandas_run, spark_run


def test_spark_and_pandas_give_the_same_scores(runs):
    pandas_run, spark_run = runs
    a = pd.read_parquet(pandas_run.folder / "scores.parquet")
    b = pd.read_parquet(spark_run.folder / "scores.parquet")
    assert len(a) == len(b) > 250
    assert a["household_id"].tolist() == b["household_id"].tolist()
    np.testing.assert_allclose(a["risk_score"].to_numpy(float), b["risk_score"].to_numpy(float),
                               rtol=0, atol=1e-12)
    for col in ["risk_tier", "rank", "reason_1", "reason_2", "reason_3", "reason_text_zh",
                "measures_zh", "rule_triggers", "not_scored_reason"]:
        pd.testing.assert_series_equal(a[col], b[col], check_names=True)


def test_spark_and_pandas_quarantine_the_same_rows(runs):
    pandas_run, spark_run = runs
    a = pd.read_parquet(pandas_run.folder / "quarantine.parquet")
    b = pd.read_parquet(spark_run.folder / "quarantine.parquet")
    assert len(a) >= 3
    pd.testing.assert_frame_equal(a[["source_row", "household_id", "rule", "column", "value"]],
                                  b[["source_row", "household_id", "rule", "column", "value"]])


def test_spark_and_pandas_reconcile_the_same(runs):
    pandas_run, spark_run = runs
    a = json.loads((pandas_run.folder / "summary.json").read_text(encoding="utf-8"))
    b = json.loads((spark_run.folder / "summary.json").read_text(encoding="utf-8"))
    assert a["reconciliation"]["quarantined"] >= 3
    for key in ["reconciliation", "ledger", "tiers", "watchlist", "by_township", "by_cause"]:
        assert a[key] == b[key], key
    assert a["drift"]["psi"] == pytest.approx(b["drift"]["psi"], abs=1e-12)


def test_an_optional_count_left_empty_reads_as_absent_on_both_engines(tmp_path):
    # A county that never records migrant workers: the model is trained without the column.
    _save_model(generate_ledger(households=400, months=24, seed=21)
                .drop(columns=["migrant_workers"]), tmp_path / "model", 30)
    # Its export has the header, never filled.
    raw = generate_ledger(households=200, months=20, start="2022-01", seed=5)
    raw["migrant_workers"] = pd.Series(pd.NA, index=raw.index, dtype="string")
    raw.to_parquet(tmp_path / "ledger.parquet", row_group_size=1000)
    common = {"month": MONTH, "model_uri": str(tmp_path / "model"),
              "tracking_uri": f"sqlite:///{tmp_path / 'mlruns.db'}"}
    pandas_run = score_month(tmp_path / "ledger.parquet", tmp_path / "pandas", **common)
    spark_run = score_month(tmp_path / "ledger.parquet", tmp_path / "spark", engine="spark",
                            **common)
    a = pd.read_parquet(pandas_run.folder / "scores.parquet")
    b = pd.read_parquet(spark_run.folder / "scores.parquet")
    assert len(a) == 200 and a["risk_score"].notna().sum() > 150
    np.testing.assert_allclose(a["risk_score"].to_numpy(float), b["risk_score"].to_numpy(float),
                               rtol=0, atol=1e-12)
    for run in (pandas_run, spark_run):
        assert run.summary["reconciliation"]["quarantined"] == 0
        assert run.summary["ledger"]["unfilled_optional_columns"] == ["migrant_workers"]
