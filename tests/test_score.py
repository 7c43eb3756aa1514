import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from threadpoolctl import threadpool_limits

from riskmodel import load_config, score_month, validate_ledger
from riskmodel.config import DEFAULT_CONFIG
from riskmodel.errors import LedgerError, ModelNotFoundError, OutputExistsError
from riskmodel.ledger import OutputLock
from riskmodel.model import (
    ModelRef,
    RiskModel,
    add_counts,
    build_features,
    make_labels,
    poverty_status,
    save_model,
)
from riskmodel.scoring import CHANGES, SCORE_SCHEMA, finalize_scores, score_frame
from riskmodel.synthetic import generate_ledger

MONTH = "2023-08"
HOUSEHOLDS = 150
CONTRACT = ["household_id", "month", "risk_score", "risk_tier", "rank", "reason_1",
            "reason_1_weight", "reason_2", "reason_2_weight", "reason_3", "reason_3_weight",
            "reason_text_zh", "measures_zh", "rule_triggers", "model_version"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Several test runs share this small machine; OpenMP threads waiting on each other make
    # tree prediction orders of magnitude slower than one thread.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def model(config):
    valid = validate_ledger(generate_ledger(households=400, months=24, seed=11)).valid
    features = build_features(valid, config)
    target = make_labels(valid, config)["target"].to_numpy()
    train = ~np.isnan(target)
    return RiskModel.from_config(
        config, features=list(features.columns), max_iter=40, min_samples_leaf=20,
        validation_months=2, calibration_months=3,
    ).fit(features[train], target[train], months=valid["month"].to_numpy()[train])


@pytest.fixture(scope="module")
def work(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("score")
    save_model(model, root / "model")
    raw = generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01", seed=7)
    raw.to_parquet(root / "ledger.parquet")
    return root


@pytest.fixture(scope="module")
def valid():
    return validate_ledger(generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01",
                                           seed=7)).valid


@pytest.fixture(scope="module")
def tracking(work):
    return f"sqlite:///{work / 'mlruns.db'}"


@pytest.fixture(scope="module")
def reference_run(work, tracking):
    return score_month(work / "ledger.parquet", work / "reference", model_uri=str(work / "model"),
                       tracking_uri=tracking)


def _config_file(folder: Path, **scoring) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["scoring"].update(scoring)
    path = folder / f"config-{'-'.join(f'{k}{v}' for k, v in scoring.items())}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _score(work, out, tracking, **kwargs):
    return score_month(work / kwargs.pop("ledger", "ledger.parquet"), out,
                       model_uri=str(work / "model"), tracking_uri=tracking, **kwargs)


# --- the pure core ------------------------------------------------------------------------------

def test_score_frame_is_the_same_whatever_the_partition(valid, model, config):
    whole = score_frame(valid, model, config, MONTH, model_version="v1")
    households = valid["household_id"].unique()
    parts, counts = [], None
    for piece in np.array_split(households, 3):
        part = score_frame(valid[valid["household_id"].isin(piece)], model, config, MONTH,
                           model_version="v1")
        parts.append(part.scores)
        counts = add_counts(counts, part.drift_counts)
    pd.testing.assert_frame_equal(finalize_scores(pd.concat(parts)), whole.scores)
    for name, observed in whole.drift_counts["features"].items():
        np.testing.assert_array_equal(counts["features"][name], observed)
    np.testing.assert_array_equal(counts["score"], whole.drift_counts["score"])


def test_finalize_scores_orders_by_risk_then_id_as_python_compares_them(valid, model, config):
    """Scored first by decreasing risk, ties and the unscored by id in Python's string order
    (code points: digits < ASCII letters < Chinese), whatever order the rows come in."""
    frame = score_frame(valid, model, config, MONTH, model_version="v1").scores
    ids = ["户2", "户10", "B7", "a3", "户1", "Z", "户", "10", "9"]
    risks = [0.5, 0.5, 0.5, np.nan, 0.5, 0.25, np.nan, 0.5, np.nan]
    rows = frame.iloc[np.arange(len(ids)) % len(frame)].reset_index(drop=True)
    rows["household_id"] = pd.array(ids, dtype="string")
    rows["risk_score"] = risks
    out = finalize_scores(rows.sample(frac=1.0, random_state=3))
    expected = sorted(zip(risks, ids, strict=True),
                      key=lambda r: (np.isnan(r[0]), -(0.0 if np.isnan(r[0]) else r[0]), r[1]))
    assert out["household_id"].tolist() == [i for _, i in expected]
    assert out["rank"].tolist()[:6] == [1, 2, 3, 4, 5, 6]
    assert out["rank"].isna().tolist()[6:] == [True, True, True]


def test_score_frame_never_reads_later_months(valid, model, config):
    cut = valid[valid["month"] <= MONTH]
    later = valid[valid["month"] > MONTH].copy()
    rng = np.random.default_rng(0)
    later["inc_wage"] = rng.uniform(0, 50000, len(later))
    later["exp_medical_oop"] = rng.uniform(0, 50000, len(later))
    with_future = pd.concat([cut, later]).sort_values(["household_id", "month"])
    a = score_frame(cut, model, config, MONTH).scores
    b = score_frame(with_future, model, config, MONTH).scores
    pd.testing.assert_frame_equal(a, b)


def test_scores_follow_the_contract(valid, model, config):
    scores = score_frame(valid, model, config, MONTH, model_version="return-to-poverty/7").scores
    assert list(scores.columns) == list(SCORE_SCHEMA)
    assert set(CONTRACT) <= set(scores.columns)
    assert len(scores) == int((valid["month"] == MONTH).sum())
    assert (scores["month"] == MONTH).all() and scores["household_id"].is_unique
    assert (scores["model_version"] == "return-to-poverty/7").all()
    scored = scores[scores["risk_score"].notna()]
    assert scored["rank"].tolist() == list(range(1, len(scored) + 1))
    assert scored["risk_score"].is_monotonic_decreasing
    tiers = np.select([scored["risk_score"] >= config.tiers.high,
                       scored["risk_score"] >= config.tiers.medium], ["high", "medium"], "low")
    assert (scored["risk_tier"].to_numpy() == tiers).all()
    codes = {c.code for c in config.causes}
    assert set(scored["reason_1"].dropna()) <= codes
    high = scored[scored["risk_tier"] == "high"]
    assert len(high) > 0 and high["reason_1"].notna().mean() > 0.9


def test_households_without_a_score_say_why(valid, model, config):
    scores = score_frame(valid, model, config, MONTH).scores.set_index("household_id")
    status = poverty_status(valid, config)
    status = status[status["month"] == MONTH].set_index("household_id")["poor"]
    expected = np.where(status.isna(), "insufficient_history",
                        np.where(status.fillna(False), "poor_now", None))
    got = scores.loc[status.index, "not_scored_reason"].to_numpy(dtype=object)
    assert [None if pd.isna(g) else g for g in got] == list(expected)
    unscored = scores[scores["not_scored_reason"].notna()]
    assert unscored["risk_score"].isna().all() and unscored["rank"].isna().all()
    assert unscored["reason_1"].isna().all()
    poor = scores[scores["not_scored_reason"] == "poor_now"]
    assert len(poor) > 0
    assert poor["on_watchlist"].all()
    assert poor["rule_triggers"].str.contains("income_below_line").all()


def test_a_hard_trigger_lists_a_low_risk_household(valid, model, config):
    scores = score_frame(valid, model, config, MONTH).scores
    calm = scores[(scores["risk_tier"] == "low") & (scores["rule_triggers"] == "")]
    target = calm["household_id"].iloc[0]
    changed = valid.copy()
    at = (changed["household_id"] == target) & (changed["month"] == MONTH)
    changed.loc[at, "housing_safe"] = False
    row = score_frame(changed, model, config, MONTH).scores.set_index("household_id").loc[target]
    assert row["rule_triggers"] == "housing_unsafe"
    assert bool(row["on_watchlist"]) and row["risk_tier"] == "low"
    assert not row["elimination_candidate"]


# --- the job --------------------------------------------------------------------------------------

def test_a_month_is_written_whole_and_reconciles(reference_run, work):
    folder = reference_run.folder
    assert folder == work / "reference" / "2023-08"
    assert sorted(p.name for p in folder.iterdir()) == [
        "bulletin.html", "quarantine.parquet", "quarantine.xlsx", "scores.parquet",
        "summary.json", "watchlist.csv", "watchlist.xlsx"]
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    scores = pd.read_parquet(folder / "scores.parquet")
    quarantine = pd.read_parquet(folder / "quarantine.parquet")
    r = summary["reconciliation"]
    assert r["rows_in"] == HOUSEHOLDS == r["scored"] + r["not_eligible"] + r["quarantined"]
    assert len(scores) + len(quarantine) == r["rows_in"]
    assert r["scored"] == int(scores["risk_score"].notna().sum())
    assert summary["tiers"] == scores["risk_tier"].value_counts().reindex(
        ["high", "medium", "low"], fill_value=0).to_dict()
    watch = pd.read_csv(folder / "watchlist.csv", encoding="utf-8-sig")
    assert len(watch) == int(scores["on_watchlist"].sum()) == summary["watchlist"]["households"]
    assert sum(t["rows"] for t in summary["by_township"]) == len(scores)
    assert summary["drift"]["score_psi"] is not None
    assert summary["model"]["label"] == str(work / "model")
    assert (scores["model_version"] == str(work / "model")).all()
    assert summary["lifecycle"]["changes"] is None


def test_the_scoring_run_is_tracked_without_identifiers(reference_run, tracking, valid):
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=tracking).get_run(reference_run.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["month"] == MONTH
    assert run.data.metrics["rows_in"] == HOUSEHOLDS
    assert "psi_score" in run.data.metrics
    assert run.data.metrics["scored"] == reference_run.summary["reconciliation"]["scored"]
    text = json.dumps([run.data.params, run.data.metrics, run.data.tags], ensure_ascii=False)
    assert not any(h in text for h in valid["household_id"].unique())


def test_a_rerun_gives_identical_scores_whatever_the_chunk_size(reference_run, work, tracking,
                                                                valid, caplog):
    expected = (reference_run.folder / "scores.parquet").read_bytes()
    result = _score(work, work / "reference", tracking, force=True)
    assert (result.folder / "scores.parquet").read_bytes() == expected
    # Chunks of 55 households in one process, then in two (110 shared by two workers).
    for households, workers in [(55, 1), (110, 2)]:
        small = _config_file(work, chunk_households=households, workers=workers)
        caplog.clear()
        with caplog.at_level("INFO", logger="riskmodel.scoring._job"):
            result = _score(work, work / f"chunked-{workers}", tracking, config_path=small)
        assert result.summary["reconciliation"] == reference_run.summary["reconciliation"]
        assert (result.folder / "scores.parquet").read_bytes() == expected
        assert (result.folder / "watchlist.xlsx").read_bytes() == \
            (reference_run.folder / "watchlist.xlsx").read_bytes()
        # Not a terminal: one plain line per chunk, and no household named in the log.
        assert [m for m in caplog.messages if " chunk " in m] == [
            m for m in caplog.messages if re.search(r" chunk [123]/3: \d+ rows", m)]
        assert len([m for m in caplog.messages if " chunk " in m]) == 3
        assert not any(h in caplog.text for h in valid["household_id"].unique())


def test_an_existing_month_is_refused_without_force(reference_run, work, tracking):
    before = (reference_run.folder / "summary.json").read_bytes()
    with pytest.raises(OutputExistsError, match="--force") as err:
        _score(work, work / "reference", tracking, month=MONTH)
    assert err.value.exit_code == 4
    assert (reference_run.folder / "summary.json").read_bytes() == before


def test_a_concurrent_run_is_refused(work, tracking):
    with OutputLock(work / "busy"), pytest.raises(OutputExistsError, match="another run"):
        _score(work, work / "busy", tracking)
    assert not (work / "busy" / MONTH).exists()


def test_a_killed_run_leaves_no_partial_month_and_the_rerun_completes(reference_run, work,
                                                                       tracking):
    out = work / "killed"
    marker = work / "killed.marker"
    script = textwrap.dedent(f"""
        import pathlib, time
        import riskmodel.scoring._job as job
        real = job.write_watchlist_file
        def stall(table, folder, kind):
            path = real(table, folder, kind)
            pathlib.Path({str(marker)!r}).write_text(str(folder))
            time.sleep(600)
            return path
        job.write_watchlist_file = stall
        job.score_month({str(work / "ledger.parquet")!r}, {str(out)!r},
                        model_uri={str(work / "model")!r}, tracking_uri={tracking!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ,
                                                                  "OMP_NUM_THREADS": "1"})
    try:
        # The watch list is written by a forked process (which stalls here) while the job
        # writes the rest and then waits for it: killed there, with its own files staged.
        deadline = time.monotonic() + 120

        def staged() -> bool:
            return marker.exists() and (Path(marker.read_text()) / "summary.json").is_file()

        while not staged() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert staged(), "the run never reached writing its outputs"
        staging = Path(marker.read_text())
        assert (staging / "scores.parquet").is_file()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not (out / MONTH).exists()
    result = _score(work, out, tracking)
    assert not staging.exists()
    assert sorted(p.name for p in out.iterdir()) == [".riskmodel.lock", MONTH]
    assert (result.folder / "scores.parquet").read_bytes() == \
        (reference_run.folder / "scores.parquet").read_bytes()


def _corrupt(raw: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """The ledger as text with a share of the rows broken in assorted ways."""
    rng = np.random.default_rng(seed)
    text = raw.astype("string")
    rows = rng.choice(len(text), int(share * len(text)), replace=False)
    breakers = [
        ("members", "0"), ("inc_wage", "abc"), ("month", "2023-13"), ("labor_full", "99"),
        ("household_type", "unknown"), ("dropouts", "1.5"), ("household_id", ""),
        ("exp_medical_oop", "-5"),
    ]
    for i, row in enumerate(rows):
        column, value = breakers[i % len(breakers)]
        text.iloc[row, text.columns.get_loc(column)] = value
    return text


@pytest.mark.parametrize("seed", [1, 2])
def test_rows_reconcile_under_random_corruption(work, tracking, seed):
    raw = generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01", seed=7)
    broken = _corrupt(raw, 0.03, seed)
    path = work / f"broken-{seed}.csv"
    broken.to_csv(path, index=False, encoding="utf-8-sig")
    lenient = _config_file(work, max_quarantine_share=0.5)
    result = _score(work, work / f"broken-{seed}", tracking, ledger=path.name,
                    config_path=lenient)
    r = result.summary["reconciliation"]
    month_rows = int((broken["month"] == MONTH).sum() + (broken["month"] == "2023-13").sum())
    assert r["rows_in"] == month_rows
    assert r["rows_in"] == r["scored"] + r["not_eligible"] + r["quarantined"]
    scores = pd.read_parquet(result.folder / "scores.parquet")
    quarantine = pd.read_parquet(result.folder / "quarantine.parquet")
    assert len(scores) + len(quarantine) == month_rows
    assert r["quarantined"] > 0 and quarantine["rule"].notna().all()
    ledger = result.summary["ledger"]
    assert ledger["rows"] == len(raw) == ledger["valid"] + ledger["quarantined"]
    # Quarantine points at the rows of the file.
    assert (quarantine["month"].isin([MONTH, "2023-13"])).all()
    assert set(quarantine["source_row"]) <= set(np.flatnonzero(
        broken["month"].isin([MONTH, "2023-13"]).to_numpy()))


def test_too_much_quarantine_fails_naming_the_rules(work, tracking):
    from mlflow import MlflowClient

    raw = generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01", seed=7)
    raw = raw.astype("string")
    month_rows = np.flatnonzero((raw["month"] == MONTH).to_numpy())
    raw.iloc[month_rows[:12], raw.columns.get_loc("members")] = "0"
    path = work / "too-broken.csv"
    raw.to_csv(path, index=False)
    out = work / "too-broken"
    with pytest.raises(LedgerError, match="members_below_1") as err:
        _score(work, out, tracking, ledger=path.name)
    assert err.value.exit_code == 2
    assert "8.0%" in str(err.value) and "5.0%" in str(err.value)
    # The failed first run leaves no folder behind, not even its lock file.
    assert not out.exists()
    runs = MlflowClient(tracking_uri=tracking).search_runs(
        [MlflowClient(tracking_uri=tracking).get_experiment_by_name(
            "riskmodel-scoring").experiment_id], order_by=["attributes.start_time DESC"],
        max_results=1)
    assert runs[0].info.status == "FAILED"


def test_the_spark_engine_refuses_a_csv_ledger_before_writing_anything(work, tracking):
    path = work / "for-spark.csv"
    generate_ledger(households=20, months=14, start="2022-01", seed=7).to_csv(path, index=False)
    out = work / "spark-csv"
    with pytest.raises(LedgerError, match="spark engine reads a Parquet ledger") as err:
        _score(work, out, tracking, ledger=path.name, engine="spark")
    assert err.value.exit_code == 2
    assert not out.exists()


def test_changes_since_last_month_are_written(work, tracking):
    out = work / "monthly"
    _score(work, out, tracking, month="2023-07")
    result = _score(work, out, tracking, month=MONTH)
    changes = pd.read_parquet(result.folder / "changes.parquet")
    assert set(changes["change"]) <= set(CHANGES)
    summary = result.summary["lifecycle"]
    assert summary["previous_month"] == "2023-07"
    assert sum(summary["changes"].values()) == len(changes)
    previous = pd.read_parquet(out / "2023-07" / "scores.parquet").set_index("household_id")
    now = pd.read_parquet(result.folder / "scores.parquet").set_index("household_id")
    newly = changes.loc[changes["change"] == "newly_high", "household_id"]
    assert (now.loc[newly, "risk_tier"] == "high").all()
    assert (previous.loc[newly, "risk_tier"] != "high").all()


def test_a_missing_model_is_exit_code_3(work, tracking):
    with pytest.raises(ModelNotFoundError) as err:
        score_month(work / "ledger.parquet", work / "nomodel", model_uri=str(work / "absent"),
                    tracking_uri=tracking)
    assert err.value.exit_code == 3


def test_a_model_that_needs_unknown_features_is_refused(work, tracking, monkeypatch, model):
    odd = RiskModel(max_iter=5, min_samples_leaf=5, validation_months=1, calibration_months=1)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"not_a_feature": rng.normal(size=400)})
    odd.fit(frame, rng.integers(0, 2, 400), months=np.repeat(np.arange(4), 100))
    monkeypatch.setattr("riskmodel.scoring._job.load_model",
                        lambda uri, tracking_uri=None: (odd, ModelRef(uri, None, None, None)))
    with pytest.raises(ModelNotFoundError, match="not_a_feature"):
        _score(work, work / "odd", tracking)


def test_a_ledger_lacking_a_column_the_model_needs_is_refused(work, tracking, model):
    raw = generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01", seed=7)
    used = set(model.feature_names_in_)
    dropped = next(c for c in ("serious_ill", "disabled", "migrant_workers") if c in used)
    raw.drop(columns=[dropped]).to_parquet(work / "narrow.parquet")
    with pytest.raises(ModelNotFoundError, match="incompatible") as err:
        _score(work, work / "narrow", tracking, ledger="narrow.parquet")
    assert err.value.exit_code == 3
    assert not (work / "narrow" / MONTH).exists()


def test_a_bad_month_is_bad_input(work, tracking):
    with pytest.raises(LedgerError, match="2031-01"):
        _score(work, work / "badmonth", tracking, month="2031-01")


def test_the_champion_alias_is_resolved_to_its_version(work, tracking):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    client.create_registered_model("return-to-poverty")
    version = client.create_model_version("return-to-poverty", source=str(work / "model")).version
    client.set_registered_model_alias("return-to-poverty", "champion", version)
    result = score_month(work / "ledger.parquet", work / "champion", tracking_uri=tracking)
    label = f"return-to-poverty/{version}"
    assert result.model_version == label and result.model.version == str(version)
    scores = pd.read_parquet(result.folder / "scores.parquet")
    assert (scores["model_version"] == label).all()
    assert result.summary["model"]["label"] == label
    assert client.get_run(result.run_id).data.params["model_version"] == str(version)


def test_the_command_line_exit_codes(work, tracking, reference_run):
    from riskmodel.cli import main

    args = ["score", "--ledger", str(work / "ledger.parquet"), "--model", str(work / "model"),
            "--out", str(work / "reference"), "--tracking-uri", tracking]
    assert main(args) == 4
    assert main([*args[:-4], "--out", str(work / "cli"), "--tracking-uri", tracking]) == 0
    assert (work / "cli" / MONTH / "scores.parquet").read_bytes() == \
        (reference_run.folder / "scores.parquet").read_bytes()


# --- a month that cannot be scored ------------------------------------------------------------

INCOME = ["inc_wage", "inc_business", "inc_property", "inc_transfer"]


def _last_run_status(tracking):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("riskmodel-scoring").experiment_id
    return client.search_runs([experiment], order_by=["attributes.start_time DESC"],
                              max_results=1)[0].info.status


@pytest.fixture(scope="module")
def no_income(work):
    """The ledger with every income cell empty, as a county export whose income feed failed."""
    raw = generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01", seed=7)
    raw[INCOME] = np.nan
    raw.to_parquet(work / "no-income.parquet")
    return "no-income.parquet"


def test_a_month_nobody_can_be_scored_publishes_nothing_and_says_why(work, tracking, no_income,
                                                                     capsys):
    from riskmodel.cli import main
    from riskmodel.errors import TooFewScoredError

    out = work / "no-income"
    with pytest.raises(TooFewScoredError) as err:
        _score(work, out, tracking, ledger=no_income, month=MONTH)
    message = str(err.value)
    assert err.value.exit_code == 6 and "\n" not in message
    assert message.startswith(f"0 of {HOUSEHOLDS} valid households of {MONTH} could be scored: "
                              f"{HOUSEHOLDS} too little income history (insufficient_history; "
                              "income recorded in fewer than 6 of the last 12 months: "
                              f"{HOUSEHOLDS} with none)")
    assert "present but empty in every row: " + ", ".join(INCOME) in message
    assert "Nothing was published" in message and "--allow-unscored" in message
    assert not out.exists()
    assert _last_run_status(tracking) == "FAILED"
    args = ["score", "--ledger", str(work / no_income), "--model", str(work / "model"),
            "--out", str(out), "--month", MONTH, "--tracking-uri", tracking]
    assert main(args) == 6
    assert f"riskmodel score: {message}\n" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("case", ["one_month", "third_month"])
def test_a_month_without_income_history_is_refused(work, tracking, case):
    from riskmodel.errors import TooFewScoredError

    raw = generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01", seed=7)
    month = MONTH if case == "one_month" else "2022-03"
    if case == "one_month":
        raw = raw[raw["month"] == MONTH]
    raw.to_parquet(work / f"{case}.parquet")
    out = work / case
    with pytest.raises(TooFewScoredError, match=f"^0 of {HOUSEHOLDS} valid households of "
                                                f"{month} could be scored: {HOUSEHOLDS} too "
                                                "little income history") as err:
        _score(work, out, tracking, ledger=f"{case}.parquet", month=month)
    assert err.value.exit_code == 6
    assert not out.exists()


def test_allow_unscored_publishes_with_the_reasons_and_empty_columns_as_warnings(
        work, tracking, no_income):
    from riskmodel.cli import main

    out = work / "no-income-allowed"
    assert main(["score", "--ledger", str(work / no_income), "--model", str(work / "model"),
                 "--out", str(out), "--month", MONTH, "--tracking-uri", tracking,
                 "--allow-unscored"]) == 0
    summary = json.loads((out / MONTH / "summary.json").read_text(encoding="utf-8"))
    warnings = summary["warnings"]
    assert warnings[0].startswith(f"0 of {HOUSEHOLDS} valid households of {MONTH} could be "
                                  "scored")
    assert warnings[0].endswith("published because --allow-unscored was given")
    assert ("ledger columns present but empty in every row (read as unknown): "
            + ", ".join(INCOME)) in warnings
    assert summary["ledger"]["empty_columns"] == INCOME
    r = summary["reconciliation"]
    assert r["scored"] == 0 and r["not_eligible"] == HOUSEHOLDS
    assert r["not_eligible_by_reason"] == {"poor_now": 0, "insufficient_history": HOUSEHOLDS}
    assert r["insufficient_history_by_months_recorded"] == {"0": HOUSEHOLDS}
    assert summary["coverage"] == {"valid_households": HOUSEHOLDS, "scored": 0, "share": 0.0,
                                   "min_scored_share": 0.3, "published_below_min": True}


def test_a_month_scored_under_the_configured_share_is_refused(work, tracking, reference_run):
    from riskmodel.errors import TooFewScoredError

    r = reference_run.summary["reconciliation"]
    share = r["scored"] / (r["scored"] + r["not_eligible"])
    assert 0.3 < share < 0.95
    strict = _config_file(work, min_scored_share=0.95)
    with pytest.raises(TooFewScoredError, match=rf"^{r['scored']} of "
                       rf"{r['scored'] + r['not_eligible']} valid households \({share:.1%}\) "
                       rf"of {MONTH} could be scored: .*under scoring.min_scored_share "
                       r"\(95%\)\. Nothing was published") as err:
        _score(work, work / "strict", tracking, config_path=strict)
    assert err.value.exit_code == 6
    assert not (work / "strict").exists()


def test_every_reason_for_no_score_is_counted_in_the_summary(reference_run):
    scores = pd.read_parquet(reference_run.folder / "scores.parquet")
    r = reference_run.summary["reconciliation"]
    by_reason = r["not_eligible_by_reason"]
    assert by_reason == scores["not_scored_reason"].value_counts().reindex(
        list(by_reason), fill_value=0).to_dict()
    assert sum(by_reason.values()) == r["not_eligible"] == scores["risk_score"].isna().sum()
    assert sum(r["insufficient_history_by_months_recorded"].values()) == \
        by_reason["insufficient_history"]
    assert all(int(k) < 6 for k in r["insufficient_history_by_months_recorded"])
    assert reference_run.summary["coverage"]["published_below_min"] is False


def test_a_column_left_empty_in_every_row_is_a_warning_of_the_run(work, tracking):
    raw = generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01", seed=7)
    raw["inc_property"] = None
    raw.to_parquet(work / "no-property.parquet")
    result = _score(work, work / "no-property", tracking, ledger="no-property.parquet")
    expected = "ledger columns present but empty in every row (read as unknown): inc_property"
    assert expected in result.summary["warnings"]
    assert f"warning: {expected}" in result.describe()
    assert result.summary["ledger"]["empty_columns"] == ["inc_property"]
# --- input a county really sends -----------------------------------------------------------------

def _county_file(work: Path, kind: str) -> tuple[Path, str, int]:
    """The test ledger as a county sends it: Chinese headers, a title line, full-width member
    counts in the scored month, and one row of it with no number; as a workbook whose first
    sheet is 填报说明, or as a GBK CSV. Returns the path, the broken row's household and the
    row number the county's spreadsheet shows for it."""
    from riskmodel.config import load_aliases

    zh = {}
    for header, column in load_aliases().items():
        zh.setdefault(column, header)
    raw = generate_ledger(households=HOUSEHOLDS, months=20, start="2022-01", seed=7)
    raw = raw.astype({"members": object, "labor_full": object})
    rows = np.flatnonzero((raw["month"] == MONTH).to_numpy())
    wide = str.maketrans("0123456789", "０１２３４５６７８９")
    raw.loc[rows[:40], "members"] = raw.loc[rows[:40], "members"].astype(str).str.translate(wide)
    raw.loc[rows[40:80], "labor_full"] = "\u3000" + raw.loc[rows[40:80], "labor_full"].astype(
        str).str.translate(wide)
    broken = rows[100]
    raw.loc[broken, "members"] = "四"
    raw = raw.rename(columns=zh)
    if kind == "xlsx":
        path = work / "county.xlsx"
        with pd.ExcelWriter(path) as writer:
            pd.DataFrame({"填报说明": ["人数填整数", "金额单位：元"]}).to_excel(
                writer, sheet_name="填报说明", index=False)
            raw.to_excel(writer, sheet_name="监测台账", index=False, startrow=1)
            writer.sheets["监测台账"].cell(row=1, column=1).value = "青岚县防止返贫动态监测台账"
    else:
        path = work / "county-gbk.csv"
        path.write_bytes(("青岚县防止返贫动态监测台账\n" + raw.to_csv(index=False)).encode("gbk"))
    # Title line, header, then the records from 0.
    return path, str(raw.loc[broken, zh["household_id"]]), int(broken) + 3


@pytest.mark.parametrize("kind", ["xlsx", "gbk"])
def test_a_county_file_is_scored_and_its_quarantine_written_for_excel(work, tracking, kind):
    from openpyxl import load_workbook

    path, household, file_row = _county_file(work, kind)
    result = _score(work, work / f"county-{kind}", tracking, ledger=path.name)
    r = result.summary["reconciliation"]
    # Full-width counts are numbers: only the row without one is quarantined.
    assert r["quarantined"] == 1 and r["quarantined_by_rule"] == {"not_a_number": 1}
    assert r["rows_in"] == HOUSEHOLDS == r["scored"] + r["not_eligible"] + r["quarantined"]
    ledger = result.summary["ledger"]
    assert (ledger["sheet"], ledger["encoding"]) == (
        ("监测台账", None) if kind == "xlsx" else (None, "gb18030"))
    on_disk = json.loads((result.folder / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["ledger"]["sheet"] == ledger["sheet"]
    sheet = load_workbook(result.folder / "quarantine.xlsx", read_only=True).active
    header, *rows = sheet.iter_rows(values_only=True)
    row = dict(zip(header, rows[0], strict=True))
    assert len(rows) == 1
    assert (row["户编号"], row["月份"], row["原表行号"]) == (household, MONTH, file_row)
    assert row["问题说明"] == "“家庭人口数”应填数字" and row["填写内容"] == "四"
    assert row["乡镇"] and row["县"]


def test_money_flags_read_separators_and_full_width_digits(tmp_path, capsys):
    from riskmodel.cli import build_parser, main

    parser = build_parser()
    args = parser.parse_args(["plan", "--ledger", "l.csv", "--out", "o", "--budget", "30,000",
                              "--grant", "１，５００．５"])
    assert (args.budget, args.grant) == (30000.0, 1500.5)
    for garbage in ("三万", "30000元", "", "nan"):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(["plan", "--ledger", "l.csv", "--out", "o", "--budget", garbage])
        assert info.value.code == 2
        assert f"argument --budget: got {garbage!r}, expected an amount in yuan" in \
            capsys.readouterr().err
    for command in ("validate", "train", "score", "explain", "plan"):
        flags = {"score": ["--out", "o"], "explain": ["--household", "H1"],
                 "plan": ["--out", "o", "--budget", "1"]}.get(command, [])
        args = parser.parse_args([command, "--ledger", "l.xlsx", "--sheet", "台账", *flags])
        assert args.sheet == "台账"
    # --sheet reaches the reader: a workbook read from its instructions sheet has no ledger.
    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"填报说明": ["人数填整数"]}).to_excel(writer, sheet_name="填报说明",
                                                       index=False)
        generate_ledger(households=3, months=2, seed=1).to_excel(writer, sheet_name="台账",
                                                                 index=False)
    assert main(["validate", "--ledger", str(book)]) == 0
    assert "6 rows read, 6 valid, 0 quarantined" in capsys.readouterr().out
    assert main(["validate", "--ledger", str(book), "--sheet", "填报说明"]) == 2
    assert "(sheet 填报说明): required column" in capsys.readouterr().err
