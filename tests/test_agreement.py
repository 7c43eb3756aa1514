"""The model's reasons checked against the risk types cadres recorded at identification.

The metric on a hand-built case; the backtest's check at each origin with the real
explanations (point-in-time, logged to MLflow without identifiers); the monthly summary's
``reason_agreement`` and the bulletin's line, present with the ledger's columns and absent
without.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import fast_config
from threadpoolctl import threadpool_limits

from riskmodel import render_bulletin, score_month, validate_ledger
from riskmodel.explain import explain_month
from riskmodel.model import (
    AGREEMENT_COUNTS,
    RECORDED_RISKS,
    agreement_metrics,
    agreement_rates,
    reason_agreement,
    recorded_at_identification,
    save_model,
    train,
)
from riskmodel.synthetic import generate_ledger

MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]


def _case_ledger(specs: dict[str, tuple[str | None, dict[str, list[str]]]]) -> pd.DataFrame:
    """Rows 2024-01 … 2024-12 per household: ``identified_month`` from identification on, and
    the recorded types by month from (``{"2024-03": ["illness"], "2024-05": [...]}``: the
    types read from that month on)."""
    rows = []
    for hid, (identified, recorded) in specs.items():
        for month in MONTHS:
            known = identified is not None and month >= identified
            since = [m for m in sorted(recorded) if m <= month]
            types = recorded[since[-1]] if known and since else []
            rows.append({"household_id": hid, "month": month,
                         "identified_month": identified if known else None,
                         **{c: (types[k] if k < len(types) else None)
                            for k, c in enumerate(RECORDED_RISKS)}})
    frame = pd.DataFrame(rows)
    return frame.astype({c: "string" for c in ["identified_month", *RECORDED_RISKS]})


@pytest.fixture
def case():
    # Reasons at t = 2024-02; the horizon is 6 months: identified in (2024-02, 2024-08].
    ledger = _case_ledger({
        "first": ("2024-03", {"2024-03": ["illness", "disability"]}),
        "second": ("2024-04", {"2024-04": ["education"]}),
        "none": ("2024-05", {"2024-05": ["disability"]}),
        "never": (None, {}),
        "earlier": ("2024-02", {"2024-02": ["illness"]}),
        "later": ("2024-09", {"2024-09": ["illness"]}),
        # Recorded "accident" at identification, changed to "illness" two months after.
        "changed": ("2024-04", {"2024-04": ["accident"], "2024-06": ["illness"]}),
        "unscored": ("2024-03", {"2024-03": ["illness"]}),
        "untyped": ("2024-03", {}),
    })
    reasons = pd.DataFrame({
        "household_id": ["first", "second", "none", "never", "earlier", "later", "changed",
                         "unscored", "untyped"],
        "reason_1": ["illness", "illness", "illness", "illness", "illness", "illness",
                     "illness", None, "illness"],
        "reason_2": ["education", "education", "education", None, None, None, None, None,
                     None],
        "reason_3": [None, None, "labor", None, None, None, None, None, None],
    }).astype("string")
    return ledger, reasons


def test_recorded_types_are_read_at_identification(case):
    ledger, _ = case
    found = recorded_at_identification(ledger, "2024-02", "2024-08")
    assert sorted(found.index) == ["changed", "first", "none", "second", "unscored", "untyped"]
    assert found.loc["changed", "recorded_risk_1"] == "accident"
    assert found.loc["first", ["recorded_risk_1", "recorded_risk_2"]].tolist() == [
        "illness", "disability"]
    assert found.loc["untyped", RECORDED_RISKS].isna().all()
    assert found.loc["second", "identified_month"] == "2024-04"


def test_agreement_counts_reason_1_and_reasons_1_to_3(case):
    ledger, reasons = case
    counts = reason_agreement(reasons, ledger, "2024-02", "2024-08")
    # Counted: first (reason_1 agrees), second (reason_2 only), none, changed (the type at
    # identification was accident). Not: never identified, identified before or after the
    # window, without a reason, without a recorded type.
    assert counts == {"households": 4, "reason_1_recorded": 1, "reasons_1_3_recorded": 2,
                      "truth_households": 0, "reason_1_true": 0, "recorded_true": 0}
    rates = agreement_rates(counts)
    assert rates == {"households": 4.0, "reason_1_recorded": 0.25, "reasons_1_3_recorded": 0.5}
    # The household id as the index gives the same counts.
    assert reason_agreement(reasons.set_index("household_id"), ledger, "2024-02",
                            "2024-08") == counts


def test_the_window_decides_who_is_counted(case):
    ledger, reasons = case
    # A window ending before the identifications of 2024-04 and 2024-05 sees first only.
    counts = reason_agreement(reasons, ledger, "2024-02", "2024-03")
    assert (counts["households"], counts["reason_1_recorded"]) == (1, 1)


def test_agreement_with_the_true_cause_is_told_apart(case):
    ledger, reasons = case
    truth = pd.Series({"first": "illness", "second": "education", "changed": "accident",
                       "never": "illness"})
    counts = reason_agreement(reasons, ledger, "2024-02", "2024-08", true_cause=truth)
    # Of first, second and changed (none has no true cause): reason_1 is the true cause of
    # first only; the recorded types include it for all three.
    assert (counts["truth_households"], counts["reason_1_true"], counts["recorded_true"]) == (
        3, 1, 3)
    rates = agreement_rates(counts)
    assert rates["reason_1_true"] == pytest.approx(1 / 3)
    assert rates["recorded_true"] == 1.0


def test_nothing_identified_gives_no_share():
    ledger = _case_ledger({"never": (None, {})})
    reasons = pd.DataFrame({"household_id": ["never"], "reason_1": ["illness"]})
    counts = reason_agreement(reasons, ledger, "2024-02", "2024-08")
    assert counts == dict.fromkeys(AGREEMENT_COUNTS, 0)
    assert np.isnan(agreement_rates(counts)["reason_1_recorded"])


# --- the backtest and the training run ----------------------------------------------------------

def _with_records(raw: pd.DataFrame, picks: dict[str, tuple[str, list[str]]]) -> pd.DataFrame:
    """``raw`` with ``identified_month`` and recorded types from the identification on."""
    out = raw.copy()
    out["identified_month"] = pd.array([None] * len(out), dtype="string")
    for column in RECORDED_RISKS:
        out[column] = pd.array([None] * len(out), dtype="string")
    for hid, (month, types) in picks.items():
        at = (out["household_id"] == hid) & (out["month"].astype(str) >= month)
        out.loc[at, "identified_month"] = month
        for column, value in zip(RECORDED_RISKS, types, strict=False):
            out.loc[at, column] = value
    return out


CAUSES = ["illness", "disability", "education", "labor", "accident", "income"]


@pytest.fixture(scope="module")
def recorded_ledger():
    raw = generate_ledger(households=300, months=24, start="2022-01", seed=5)
    ids = sorted(raw["household_id"].unique())
    rng = np.random.default_rng(1)
    months = pd.period_range("2023-06", "2023-12", freq="M").strftime("%Y-%m")
    picks = {hid: (str(rng.choice(months)), list(rng.choice(CAUSES, 2, replace=False)))
             for hid in ids[::3]}
    return validate_ledger(_with_records(raw, picks)).valid


def test_the_backtest_checks_each_origin_point_in_time_and_logs_without_ids(
        recorded_ledger, tmp_path):
    seen = []

    def reasons(model, ledger, config, month):
        out = explain_month(model, ledger, config, month)
        seen.append((month, ledger["month"].astype(str).max(), ledger, out))
        return out

    config = fast_config()
    config = config.model_copy(update={"backtest": config.backtest.model_copy(
        update={"origins": 2})})
    truth = pd.DataFrame({"household_id": recorded_ledger["household_id"],
                          "month": recorded_ledger["month"], "true_risk": 0.1,
                          "true_cause": "illness"})
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with threadpool_limits(1):
        result = train(recorded_ledger, config, tracking_uri=uri, truth=truth, reasons=reasons)
    by_origin = result.backtest.agreement
    assert by_origin["origin"].tolist() == [s.origin for s in result.backtest.splits]
    assert len(seen) == len(by_origin) == 2
    h = config.label.horizon_months
    for (month, last, rows, out), row in zip(seen, by_origin.itertuples(), strict=True):
        assert last == month  # the explainer saw no row after the origin
        start = pd.Period(month, "M")
        truth_at = truth[truth["month"] == month].set_index("household_id")["true_cause"]
        expected = reason_agreement(out, recorded_ledger, str(start), str(start + h),
                                    true_cause=truth_at)
        assert {k: getattr(row, k) for k in AGREEMENT_COUNTS} == expected
        assert expected["households"] > 0
        # Only households identified in the horizon were explained.
        assert set(rows["household_id"]) == set(recorded_at_identification(
            recorded_ledger, str(start), str(start + h)).index)
    metrics = mlflow.MlflowClient(uri).get_run(result.run.run_id).data.metrics
    pooled = agreement_metrics(by_origin)
    assert pooled["agreement_households"] == by_origin["households"].sum()
    for key in ("agreement_households", "agreement_reason_1_recorded",
                "agreement_reasons_1_3_recorded", "agreement_reason_1_true",
                "agreement_recorded_true"):
        assert metrics[key] == pytest.approx(pooled[key])
    table = mlflow.artifacts.download_artifacts(
        run_id=result.run.run_id, artifact_path="tables/reason_agreement.csv", tracking_uri=uri)
    written = pd.read_csv(table)
    assert "household_id" not in written.columns
    assert not written.astype(str).isin(recorded_ledger["household_id"].unique()).any().any()


def test_without_the_recorded_columns_the_backtest_checks_nothing(recorded_ledger):
    plain = recorded_ledger.drop(columns=["identified_month", *RECORDED_RISKS])
    with threadpool_limits(1):
        result = train(plain, fast_config(), track=False, reasons=explain_month)
    assert result.backtest.agreement is None
    assert agreement_metrics(result.backtest.agreement) == {}


# --- the monthly summary and the bulletin ---------------------------------------------------------

@pytest.fixture(scope="module")
def scored(recorded_ledger, tmp_path_factory):
    """The last month scored on the ledger without the recorded columns; with them, the month
    before and the last month into one folder."""
    root = tmp_path_factory.mktemp("agree")
    plain = recorded_ledger.drop(columns=["identified_month", *RECORDED_RISKS])
    with threadpool_limits(1):
        model = train(plain, fast_config(), track=False).model
        folder = save_model(model, root / "model")
        runs = {}
        for name, frame, months in (("plain", plain, ["2023-12"]),
                                    ("recorded", recorded_ledger, ["2023-11", "2023-12"])):
            frame.to_parquet(root / f"{name}.parquet")
            for month in months:
                runs[name] = score_month(root / f"{name}.parquet", root / name, month=month,
                                         model_uri=str(folder),
                                         tracking_uri=f"sqlite:///{root / 'mlruns.db'}")
    return runs


def _by_hand(scores: pd.DataFrame, rows: pd.DataFrame, identified) -> tuple[int, int]:
    """Households identified in ``identified`` with a reason in ``scores``: how many, and
    how many with reason_1 among the types recorded in ``rows``."""
    mine = scores.set_index("household_id")[["reason_1"]].join(
        rows.set_index("household_id")[["identified_month", *RECORDED_RISKS]], how="inner")
    mine = mine[mine["reason_1"].notna() & mine["identified_month"].isin(identified)]
    types = mine[RECORDED_RISKS].astype(object).to_numpy()
    first = [r in set(t) for r, t in zip(mine["reason_1"], types, strict=True)]
    return len(mine), int(np.sum(first))


def test_the_summary_holds_the_agreement_only_with_the_columns(scored, recorded_ledger):
    plain = json.loads((scored["plain"].folder / "summary.json").read_text(encoding="utf-8"))
    assert "reason_agreement" not in plain
    summary = json.loads((scored["recorded"].folder / "summary.json").read_text(
        encoding="utf-8"))
    part = summary["reason_agreement"]
    assert summary["month"] == "2023-12"
    assert (part["identified_from"], part["identified_to"]) == ("2023-07", "2023-12")
    scores = pd.read_parquet(scored["recorded"].folder / "scores.parquet")
    last = recorded_ledger[recorded_ledger["month"] == "2023-12"]
    # This month's reasons: households identified 2023-07 … 2023-12 and scored.
    window = [f"2023-{m:02d}" for m in range(7, 13)]
    n, first = _by_hand(scores, last, window)
    assert part["households"] == n > 0
    assert part["reason_1_recorded"] == first
    assert part["reason_1_share"] == round(first / n, 4)
    assert part["reasons_1_3_recorded"] >= part["reason_1_recorded"]
    # Before identification: only 2023-11 was scored, so the households identified in
    # 2023-12, with their reasons of 2023-11.
    earlier = pd.read_parquet(scored["recorded"].folder.parent / "2023-11" / "scores.parquet")
    n, first = _by_hand(earlier, last, ["2023-12"])
    assert part["before_households"] == n > 0
    assert part["before_reason_1_recorded"] == first
    assert part["before_reason_1_share"] == round(first / n, 4)
    # The scores themselves are the same with or without the recorded columns.
    before = pd.read_parquet(scored["plain"].folder / "scores.parquet")
    pd.testing.assert_frame_equal(before, scores)


def _line(share: float, households: int) -> str:
    return (f"模型首要原因与干部记录的风险类型一致 <span data-value=\"{share}\">{share:.1%}"
            f"</span>（{households:,} 户）")


def test_the_bulletin_shows_the_line_only_when_the_figure_exists(scored):
    scores = pd.read_parquet(scored["recorded"].folder / "scores.parquet")
    summary = json.loads((scored["recorded"].folder / "summary.json").read_text(
        encoding="utf-8"))
    part = summary["reason_agreement"]
    page = render_bulletin(scores, summary)
    # The reasons from before identification where there are such households.
    assert _line(part["before_reason_1_share"], part["before_households"]) in page
    assert "识别前一个月模型给出的首要风险类型" in page
    # Else this month's.
    now = {**summary, "reason_agreement": {**part, "before_households": 0,
                                           "before_reason_1_share": None}}
    page = render_bulletin(scores, now)
    assert _line(part["reason_1_share"], part["households"]) in page
    assert "本月模型给出的首要风险类型" in page
    without = {k: v for k, v in summary.items() if k != "reason_agreement"}
    bare = render_bulletin(scores, without)
    assert "干部记录" not in bare and 'id="reason-agreement"' not in bare
    # No households compared: no line either.
    empty = {**now, "reason_agreement": {**now["reason_agreement"], "households": 0,
                                         "reason_1_share": None}}
    assert render_bulletin(scores, empty) == bare
