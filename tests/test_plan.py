"""Budget and visit plans: within budget, only useful measures, deterministic, point-in-time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel import (
    LedgerError,
    ModelNotFoundError,
    OutputExistsError,
    load_config,
    validate_ledger,
)
from riskmodel.model import ModelRef, RiskModel, build_features, make_labels, save_model
from riskmodel.plan import (
    PLAN_COLUMNS,
    PlanInputError,
    compare_rules,
    fit_margin_model,
    plan_frame,
    plan_month,
)
from riskmodel.synthetic import generate_ledger

MONTHS = 30


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def ledger():
    return validate_ledger(generate_ledger(households=600, months=MONTHS, seed=5)).valid


@pytest.fixture(scope="module")
def month(ledger):
    return str(ledger["month"].max())


@pytest.fixture(scope="module")
def model(ledger, config):
    labels = make_labels(ledger, config)
    rows = labels["target"].notna().to_numpy()
    features = build_features(ledger, config).loc[rows]
    specs = config.features
    return RiskModel(
        max_iter=40, min_samples_leaf=20, validation_months=2, calibration_months=3,
        calibration="sigmoid",
        monotonic={n: s.monotonic for n, s in specs.items() if s.monotonic},
    ).fit(features, labels["target"].to_numpy()[rows],
          months=labels["month"].to_numpy(dtype=object)[rows])


@pytest.fixture(scope="module")
def margin_model(ledger, model, config, month):
    return fit_margin_model(ledger, config, month, model, max_iter=40, min_samples_leaf=40)


@pytest.fixture(scope="module")
def measures_plan(ledger, model, config, month, margin_model):
    return plan_frame(ledger, model, config, month, budget=60_000.0, margin_model=margin_model)


def test_plan_within_budget_and_only_useful_measures(measures_plan, config):
    plan, effects = measures_plan.plan, measures_plan.effects
    assert len(plan) > 0
    assert plan["cost"].sum() <= 60_000.0
    assert (plan["falls_prevented"] > 0).all()
    assert plan["household_id"].is_unique
    assert np.allclose(plan["falls_prevented"], plan["risk_before"] - plan["risk_after"])
    assert np.allclose(plan["cumulative_cost"], plan["cost"].cumsum())
    assert set(plan["measure"]) <= {m.code for m in config.measures}
    # Each chosen option is one the what-if priced for that household.
    merged = plan.merge(effects, on=["household_id", "measure"], suffixes=("", "_e"))
    assert len(merged) == len(plan)
    assert np.allclose(merged["falls_prevented"], merged["falls_prevented_e"])
    # Only eligible households (not poor now, history known) are planned for.
    eligible = set(measures_plan.households.loc[measures_plan.households["eligible"],
                                                "household_id"])
    assert set(plan["household_id"]) <= eligible
    assert set(effects["household_id"]) <= eligible


def test_measures_respect_their_requirements(measures_plan, ledger, month):
    rows = ledger[ledger["month"] == month].set_index("household_id")
    jobs = measures_plan.effects.loc[measures_plan.effects["measure"] == "welfare_job",
                                     "household_id"]
    laborers = rows.loc[jobs.astype(str), ["labor_full", "labor_partial"]].sum(axis=1)
    assert (laborers > 0).all()


@pytest.mark.parametrize("estimate", ["margin", "response"])
def test_grant_plan_and_the_rules_at_the_same_budget(ledger, model, config, month, margin_model,
                                                     estimate):
    frames = plan_frame(ledger, model, config, month, budget=30_000.0, grant=1500.0,
                        estimate=estimate, margin_model=margin_model)
    plan, effects, comparison = frames.plan, frames.effects, frames.comparison
    assert set(plan["measure"]) == {"grant_1500"}
    assert (plan["cost"] == 1500.0).all()
    assert len(plan) <= 20
    # With one price the plan is the households the grant helps most, by the model.
    best = effects["falls_prevented"].nlargest(len(plan)).sum()
    assert plan["falls_prevented"].sum() == pytest.approx(best)
    assert comparison.loc["plan", "falls_prevented"] >= comparison.loc["income_cutoff",
                                                                       "falls_prevented"]
    assert comparison.loc["plan", "falls_prevented"] >= comparison.loc["risk_ranking",
                                                                       "falls_prevented"]
    for rule in ("income_cutoff", "risk_ranking"):
        assert comparison.loc[rule, "spent"] <= 30_000.0
    summary = frames.summary
    assert summary["budget"] == 30_000.0
    assert summary["households"] == len(plan)
    assert summary["rules"]["measure"] == "grant_1500"
    assert summary["effect_estimate"] == estimate


def test_rules_follow_their_order():
    effects = pd.DataFrame({"household_id": list("ABCD"), "measure": "grant", "cost": 1000.0,
                            "falls_prevented": [0.1, 0.2, 0.3, 0.4]})
    households = pd.DataFrame({"household_id": list("ABCD"),
                               "income_pc": [9000.0, 8000.0, 9000.0, 20000.0],
                               "risk_score": [0.5, 0.1, 0.5, 0.9]})
    table = compare_rules(effects, households, 2500.0, "grant")
    # Poorest first: B then A (A before C on the tie, by household_id).
    assert table.loc["income_cutoff", "falls_prevented"] == pytest.approx(0.3)
    # Highest risk first: D then A.
    assert table.loc["risk_ranking", "falls_prevented"] == pytest.approx(0.5)
    assert table["households"].tolist() == [2, 2]
    assert table["spent"].tolist() == [2000.0, 2000.0]


def test_same_inputs_same_plan(ledger, model, config, month, measures_plan, margin_model):
    again = plan_frame(ledger.sample(frac=1.0, random_state=3).sort_index(), model, config,
                       month, budget=60_000.0, margin_model=margin_model)
    pd.testing.assert_frame_equal(measures_plan.plan, again.plan)


def test_plan_for_month_t_reads_nothing_after_t(ledger, model, config):
    month = "2024-01"
    small = config.plan.margin_model.model_copy(update={"min_samples_leaf": 30})
    config = config.model_copy(update={"plan": config.plan.model_copy(
        update={"margin_model": small})})
    cut = ledger[ledger["month"] <= month]
    later = ledger[ledger["month"] > month].copy()
    # Whatever the later months hold must not change the plan for month t.
    later["inc_wage"] = later["inc_wage"] * 0.0 - 5000.0
    later["ev_illness"] = True
    changed = pd.concat([cut, later]).sort_values(["household_id", "month"])
    a = plan_frame(cut, model, config, month, budget=40_000.0)
    b = plan_frame(changed, model, config, month, budget=40_000.0)
    assert a.summary["effect_estimate"] == b.summary["effect_estimate"] == "margin"
    pd.testing.assert_frame_equal(a.plan, b.plan)
    pd.testing.assert_frame_equal(a.effects, b.effects)


def test_no_budget_no_plan(ledger, model, config, month):
    frames = plan_frame(ledger, model, config, month, budget=0.0, grant=1500.0,
                        estimate="response")
    assert frames.plan.empty
    assert frames.summary["spent"] == 0.0
    with pytest.raises(PlanInputError, match="budget"):
        plan_frame(ledger, model, config, month, budget=-5.0)
    with pytest.raises(PlanInputError, match="grant"):
        plan_frame(ledger, model, config, month, budget=5.0, grant=0.0)
    with pytest.raises(PlanInputError, match="one fen"):
        plan_frame(ledger, model, config, month, budget=5.0, grant=0.001)
    # The ledger's second month: no household has the history for a score, so no plan.
    early = sorted(ledger["month"].unique())[1]
    frames = plan_frame(ledger, model, config, early, budget=30_000.0, grant=1500.0,
                        estimate="response")
    assert frames.plan.empty and frames.summary["spent"] == 0.0


def test_plan_month_writes_the_files(tmp_path, ledger, model, month, config):
    ledger_path = tmp_path / "ledger.parquet"
    ledger.to_parquet(ledger_path)
    model_dir = save_model(model, tmp_path / "model")
    towns = ledger["township"].astype(str).unique()
    (tmp_path / "visits.csv").write_text(
        "乡镇,走访户数\n" + "".join(f"{t},5\n" for t in towns), encoding="utf-8-sig")
    result = plan_month(ledger_path, tmp_path / "out", budget=45_000.0, month=month,
                        model_uri=str(model_dir), visits=tmp_path / "visits.csv")
    folder = tmp_path / "out" / month
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["plan.csv", "plan.parquet", "plan_summary.json", "visits.csv"]
    plan = pd.read_parquet(folder / "plan.parquet")
    assert plan["household_id"].tolist() == result.plan["household_id"].tolist()
    assert plan["cost"].sum() <= 45_000.0
    raw = (folder / "plan.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode("utf-8-sig").splitlines()[0].split(",")
    assert header[:2] == [f"{PLAN_COLUMNS['priority']} priority",
                          f"{PLAN_COLUMNS['household_id']} household_id"]
    csv = pd.read_csv(folder / "plan.csv", encoding="utf-8-sig")
    assert len(csv) == len(plan)
    summary = json.loads((folder / "plan_summary.json").read_text(encoding="utf-8"))
    assert summary["households"] == len(plan)
    assert set(summary["rules"]) == {"measure", "income_cutoff", "risk_ranking"}
    assert "household" not in json.dumps(summary["rules"]).replace("households", "")
    reach = summary["visits"]
    assert reach["expected_fallers_visited"] >= reach["rotation_expected_fallers_visited"]
    visits = pd.read_csv(folder / "visits.csv", encoding="utf-8-sig")
    assert len(visits) == min(5 * len(towns), int((ledger["month"] == month).sum()))
    assert f"{len(plan):,} households" in result.describe()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".riskmodel.lock", month]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, ledger, model):
    """The ledger and the model as files, and a visits file naming every township."""
    root = tmp_path_factory.mktemp("plan")
    ledger.to_parquet(root / "ledger.parquet")
    save_model(model, root / "model")
    towns = ledger["township"].astype(str).unique()
    (root / "visits.csv").write_text(
        "乡镇,走访户数\n" + "".join(f"{t},5\n" for t in towns), encoding="utf-8-sig")
    return root


def _plan(saved, out, **kwargs):
    return plan_month(saved / kwargs.pop("ledger", "ledger.parquet"), out,
                      budget=kwargs.pop("budget", 45_000.0), model_uri=str(saved / "model"),
                      **kwargs)


def _contents(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _left_in(out):
    """What a run left in ``out``: no month, staging or spill, at most the lock's file."""
    return {p.name for p in out.iterdir()} if out.exists() else set()


def test_a_rerun_is_refused_without_force_and_replaces_the_whole_month_with_it(
        tmp_path, saved, month):
    from riskmodel.cli import main

    out = tmp_path / "out"
    _plan(saved, out, month=month, visits=saved / "visits.csv")
    first = _contents(out / month)
    assert "visits.csv" in first
    args = ["plan", "--ledger", str(saved / "ledger.parquet"), "--model", str(saved / "model"),
            "--budget", "45000", "--out", str(out)]
    with pytest.raises(OutputExistsError, match="--force") as err:
        _plan(saved, out)
    assert err.value.exit_code == 4
    assert main(args) == 4
    assert _contents(out / month) == first
    # Replaced whole: the plan is the same, and the earlier run's visits are gone with it.
    assert main([*args, "--force"]) == 0
    again = _contents(out / month)
    assert sorted(again) == ["plan.csv", "plan.parquet", "plan_summary.json"]
    assert again["plan.parquet"] == first["plan.parquet"]
    assert again["plan.csv"] == first["plan.csv"]
    assert sorted(p.name for p in out.iterdir()) == [".riskmodel.lock", month]


def test_a_failed_run_leaves_the_previous_plan_or_none(tmp_path, saved, month, monkeypatch):
    import riskmodel.plan._job as job

    out = tmp_path / "out"
    _plan(saved, out)
    first = _contents(out / month)
    staged = []

    def full_disk(data, path):
        staged.append(sorted(p.name for p in path.parent.iterdir()))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(job.PlanSummary, "write", lambda summary, path: full_disk(summary, path))
    with pytest.raises(OSError, match="No space"):
        _plan(saved, tmp_path / "fresh")
    assert staged == [["plan.csv", "plan.parquet"]]
    assert _left_in(tmp_path / "fresh") <= {".riskmodel.lock"}
    # Another budget, another plan: a half-replaced month would mix the two.
    with pytest.raises(OSError, match="No space"):
        _plan(saved, out, budget=20_000.0, force=True)
    assert _contents(out / month) == first
    assert sorted(p.name for p in out.iterdir()) == [".riskmodel.lock", month]


def test_a_killed_run_leaves_nothing_the_next_run_does_not_clear(tmp_path, saved, month):
    out = tmp_path / "out"
    marker = tmp_path / "spilled"
    script = textwrap.dedent(f"""
        import pathlib, time
        import riskmodel.plan._job as job
        real = job._SpilledFeatures.save
        def stall(cls, part, path, start):
            spilled = real(part, path, start)
            pathlib.Path({str(marker)!r}).write_text(str(path.parent))
            time.sleep(600)
            return spilled
        job._SpilledFeatures.save = classmethod(stall)
        job.plan_month({str(saved / "ledger.parquet")!r}, {str(out)!r}, budget=45000.0,
                       model_uri={str(saved / "model")!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script],
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert marker.exists(), "the run never spilled its features"
        spill = Path(marker.read_text())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert spill.is_dir() and list(spill.glob("*.npy"))
    assert not (out / month).exists()
    result = _plan(saved, out)
    assert not spill.exists()
    assert sorted(p.name for p in out.iterdir()) == [".riskmodel.lock", month]
    assert result.folder == out / month


def test_a_plan_never_replaces_a_scoring_run_s_month(tmp_path, saved, month):
    scores = tmp_path / "out" / month / "scores.parquet"
    scores.parent.mkdir(parents=True)
    scores.write_bytes(b"scores")
    with pytest.raises(OutputExistsError, match="scoring run") as err:
        _plan(saved, tmp_path / "out", month=month)
    assert err.value.exit_code == 4
    # Not even with force, which would replace the whole folder, scores and all.
    with pytest.raises(OutputExistsError, match="scoring run"):
        _plan(saved, tmp_path / "out", month=month, force=True)
    assert sorted(p.name for p in scores.parent.iterdir()) == ["scores.parquet"]


def test_too_much_quarantine_is_refused_as_the_scoring_job_refuses_it(tmp_path, saved, ledger,
                                                                     month):
    raw = ledger.astype("string")
    rows = np.flatnonzero((raw["month"] == month).to_numpy())
    raw.iloc[rows[:len(rows) // 5], raw.columns.get_loc("members")] = "0"
    raw.to_csv(tmp_path / "broken.csv", index=False)
    out = tmp_path / "out"
    with pytest.raises(LedgerError, match="max_quarantine_share") as err:
        plan_month(tmp_path / "broken.csv", out, budget=45_000.0,
                   model_uri=str(saved / "model"))
    assert err.value.exit_code == 2
    assert "members_below_1" in str(err.value)
    assert "20.0%" in str(err.value) and "5.0%" in str(err.value)
    assert _left_in(out) <= {".riskmodel.lock"}


def test_a_ledger_lacking_a_column_the_model_needs_is_refused(tmp_path, saved, ledger, model):
    used = set(model.feature_names_in_)
    dropped = next(c for c in ("serious_ill", "disabled", "migrant_workers") if c in used)
    ledger.drop(columns=[dropped]).to_parquet(tmp_path / "narrow.parquet")
    out = tmp_path / "out"
    with pytest.raises(ModelNotFoundError, match="incompatible") as err:
        plan_month(tmp_path / "narrow.parquet", out, budget=45_000.0,
                   model_uri=str(saved / "model"))
    assert err.value.exit_code == 3
    assert dropped in str(err.value)
    assert _left_in(out) <= {".riskmodel.lock"}


def test_a_model_that_needs_unknown_features_is_refused(tmp_path, saved, monkeypatch):
    class Odd:
        feature_names_in_ = np.array(["not_a_feature"])

        def predict_proba(self, X):
            return np.zeros((len(X), 2))

    monkeypatch.setattr("riskmodel.plan._job.load_model",
                        lambda uri, tracking_uri=None: (Odd(), ModelRef(uri, None, None, None)))
    with pytest.raises(ModelNotFoundError, match="not_a_feature") as err:
        _plan(saved, tmp_path / "out")
    assert err.value.exit_code == 3
    assert not (tmp_path / "out").exists()


def test_visits_for_a_township_the_month_lacks_are_refused(tmp_path, saved, ledger, model,
                                                           config, month, margin_model):
    from riskmodel.cli import main

    towns = sorted(ledger["township"].astype(str).unique())
    typo = towns[0][:-1] + "真"
    assert typo not in towns
    (tmp_path / "typo.csv").write_text(f"乡镇,走访户数\n{towns[1]},4\n{typo},3\n",
                                       encoding="utf-8-sig")
    out = tmp_path / "out"
    with pytest.raises(PlanInputError, match=typo) as err:
        _plan(saved, out, visits=tmp_path / "typo.csv")
    assert err.value.exit_code == 2
    assert towns[0] in str(err.value) and "\n" not in str(err.value)
    assert not (out / month).exists()
    with pytest.raises(PlanInputError, match=typo):
        plan_frame(ledger, model, config, month, budget=45_000.0, visits={typo: 3},
                   margin_model=margin_model)
    # A folder given as the visits file: bad input, before anything is read or written.
    args = ["plan", "--ledger", str(saved / "ledger.parquet"), "--model", str(saved / "model"),
            "--budget", "45000", "--out", str(tmp_path / "cli"), "--visits", str(tmp_path)]
    assert main(args) == 2
    assert not (tmp_path / "cli").exists()


def test_plan_month_by_chunks_is_the_plan_of_the_whole_ledger(tmp_path, ledger, model, config,
                                                              month):
    import yaml

    raw = config.model_dump(mode="json")
    raw["scoring"]["chunk_households"] = 170
    raw["plan"]["margin_model"]["min_samples_leaf"] = 40
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True),
                                          encoding="utf-8")
    small = load_config(tmp_path / "config.yaml")
    ledger.to_parquet(tmp_path / "ledger.parquet")
    model_dir = save_model(model, tmp_path / "model")
    chunked = plan_month(tmp_path / "ledger.parquet", tmp_path / "out", budget=50_000.0,
                         model_uri=str(model_dir), config_path=tmp_path / "config.yaml")
    whole = plan_frame(ledger, model, small, month, budget=50_000.0)
    assert chunked.summary["effect_estimate"] == whole.summary["effect_estimate"] == "margin"
    pd.testing.assert_frame_equal(chunked.plan.reset_index(drop=True),
                                  whole.plan.reset_index(drop=True), check_dtype=False)
    assert chunked.summary["ledger"]["rows"] == len(ledger)
    # The chunks' features waited on disk in the staging folder; nothing of them is left.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".riskmodel.lock",
                                                                    chunked.month]
    with pytest.raises(LedgerError, match="no rows for month 2031-01"):
        plan_month(tmp_path / "ledger.parquet", tmp_path / "failed", budget=50_000.0,
                   month="2031-01", model_uri=str(model_dir),
                   config_path=tmp_path / "config.yaml")
    assert not (tmp_path / "failed").exists()


# --- a month that cannot be scored ------------------------------------------------------------

INCOME = ["inc_wage", "inc_business", "inc_property", "inc_transfer"]


def test_a_month_nobody_can_be_scored_is_not_planned(tmp_path, saved, ledger, month, capsys):
    from riskmodel.cli import main
    from riskmodel.errors import TooFewScoredError

    n = int((ledger["month"] == month).sum())
    ledger.assign(**{c: np.nan for c in INCOME}).to_parquet(tmp_path / "no-income.parquet")
    out = tmp_path / "out"
    with pytest.raises(TooFewScoredError) as err:
        _plan(saved, out, ledger=tmp_path / "no-income.parquet")
    message = str(err.value)
    assert err.value.exit_code == 6 and "\n" not in message
    assert message.startswith(f"0 of {n} valid households of {month} could be scored: {n} too "
                              "little income history (insufficient_history; income recorded "
                              f"in fewer than 6 of the last 12 months: {n} with none)")
    assert "present but empty in every row: " + ", ".join(INCOME) in message
    assert "Nothing was published" in message
    assert _left_in(out) <= {".riskmodel.lock"}
    args = ["plan", "--ledger", str(tmp_path / "no-income.parquet"), "--model",
            str(saved / "model"), "--budget", "45000", "--out", str(out)]
    assert main(args) == 6
    assert f"riskmodel plan: {message}\n" in capsys.readouterr().err
    assert _left_in(out) <= {".riskmodel.lock"}
    # Asked for explicitly: published, the reasons and the empty columns in the summary.
    assert main([*args, "--allow-unscored"]) == 0
    summary = json.loads((out / month / "plan_summary.json").read_text(encoding="utf-8"))
    assert summary["households"] == 0 and summary["eligible_households"] == 0
    assert summary["warnings"][0].endswith("published because --allow-unscored was given")
    assert ("ledger columns present but empty in every row (read as unknown): "
            + ", ".join(INCOME)) in summary["warnings"]
    assert summary["not_eligible_by_reason"] == {"poor_now": 0, "insufficient_history": n}
    assert summary["insufficient_history_by_months_recorded"] == {"0": n}
    assert summary["coverage"]["published_below_min"] is True


def test_a_month_without_income_history_is_not_planned(tmp_path, saved, ledger):
    from riskmodel.errors import TooFewScoredError

    third = sorted(ledger["month"].unique())[2]
    n = int((ledger["month"] == third).sum())
    out = tmp_path / "out"
    with pytest.raises(TooFewScoredError, match=f"^0 of {n} valid households of {third} could "
                                                f"be scored: {n} too little income history"):
        _plan(saved, out, month=third)
    assert _left_in(out) <= {".riskmodel.lock"}


def test_a_plan_counts_the_households_it_could_not_score(tmp_path, saved, ledger, month):
    result = _plan(saved, tmp_path / "out", month=month)
    s = result.summary
    by_reason = s["not_eligible_by_reason"]
    assert sum(by_reason.values()) == s["households_in_month"] - s["eligible_households"]
    assert by_reason["poor_now"] > 0
    assert s["coverage"]["scored"] == s["eligible_households"]
    assert s["coverage"]["published_below_min"] is False and s["warnings"] == []
