"""Model selection: training backtests the model block and the candidates its cost budget
allows, decided before any run, under a wall-time cap, and fits the best."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from threadpoolctl import threadpool_limits

from riskmodel import load_config, validate_ledger
from riskmodel.cli import main
from riskmodel.config import Config
from riskmodel.errors import ConfigError
from riskmodel.model import (
    MACHINE_TAG,
    candidate_configs,
    candidate_cost,
    feature_causes,
    select_model,
    selection_plan,
    train,
    training_data,
)
from riskmodel.synthetic import generate_ledger

# What the households earn and lose: without these features the trees see little of a fall.
BLIND_CAUSES = ("income", "employment", "business")


def _config(candidates: list[dict], *, budget: float = 600.0, enabled: bool = True,
            metric: str = "ap", max_cost: float = 1e9, **model) -> Config:
    """A small, fast model whose selection block lists ``candidates``."""
    raw = load_config().model_dump(mode="json")
    raw["model"].update({"max_iter": 30, "min_samples_leaf": 20, "validation_months": 2,
                         "calibration_months": 2, "min_positive_labels": 20,
                         "scorecard_features": 6, **model})
    raw["model"]["selection"] = {"enabled": enabled, "time_budget_s": budget, "metric": metric,
                                 "max_cost": max_cost, "candidates": candidates}
    raw["backtest"].update({"origins": 2, "bootstrap": 5, "min_group_rows": 50})
    return Config.model_validate(raw)


def _blind(config: Config | None = None) -> list[str]:
    causes = feature_causes(config or load_config())
    return [f for f, c in causes.items() if c in BLIND_CAUSES]


@pytest.fixture(scope="module")
def ledger():
    return validate_ledger(generate_ledger(households=400, months=26, seed=7)).valid


@pytest.fixture(scope="module")
def chosen(ledger, tmp_path_factory):
    """A model block that cannot see incomes, a candidate that can, one the same as the block
    and one blinder still; tracked in a real SQLite store."""
    config = _config(
        [{"name": "same", "max_iter": 30},
         {"name": "sees_income", "exclude_features": []},
         {"name": "blinder", "exclude_causes": [*BLIND_CAUSES, "illness", "education"]}],
        exclude_features=_blind())
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlruns.db'}"
    with threadpool_limits(1):
        result = train(ledger, config, tracking_uri=uri)
    return result, uri


def test_selection_chooses_the_clearly_better_candidate(chosen):
    result, _ = chosen
    table = result.selection.table.set_index("candidate")
    assert list(table.index) == ["base", "same", "sees_income", "blinder"]
    assert result.selection.chosen == "sees_income"
    assert table["status"].tolist() == ["run", "run", "chosen", "run"]
    # Seeing incomes is clearly better on average, and at every origin.
    origins = [c for c in table.columns if c.startswith("at_")]
    assert len(origins) == 2
    assert table.loc["sees_income", "mean"] > table.loc["base", "mean"] + 0.08
    assert (table.loc["sees_income", origins] > table.loc["base", origins]).all()
    assert table.loc["blinder", "mean"] < table.loc["base", "mean"]
    assert table.loc["sees_income", "mean"] == pytest.approx(
        table.loc["sees_income", origins].mean())
    # The final model is the chosen one, fitted on the whole ledger with its config.
    assert "income_ratio_3m" in result.model.feature_names_in_
    assert result.model.config_["model"]["exclude_features"] == []
    assert result.backtest is result.selection.backtests["sees_income"]
    assert result.model.summary_["model_ap"] == pytest.approx(table.loc["sees_income", "ap"])


def test_a_tie_goes_to_the_earlier_candidate(chosen):
    table = chosen[0].selection.table.set_index("candidate")
    # "same" sets the model block's own max_iter: the same backtest, figure for figure.
    assert table.loc["same", "mean"] == table.loc["base", "mean"]
    assert table.loc["same", "status"] == "run"


def test_exclude_causes_leaves_out_the_features_of_those_causes():
    config = _config([{"name": "no_water", "exclude_causes": ["water"],
                       "exclude_features": ["members"]}])
    _, over, cand = candidate_configs(config)[1]
    water = [f for f, c in feature_causes(config).items() if c == "water"]
    assert set(cand.model.exclude_features) == {"members", *water}
    assert over == {"exclude_causes": ["water"], "exclude_features": ["members"]}


def test_the_run_holds_every_candidate_figures_and_the_table(chosen, tmp_path):
    from mlflow.artifacts import download_artifacts

    result, uri = chosen
    run = _client(uri).get_run(result.run.run_id)
    metrics, params = run.data.metrics, run.data.params
    assert params["selected_candidate"] == "sees_income"
    # Params describe the registered model: the chosen candidate's model block.
    assert params["model.exclude_features"] == "[]"
    table = result.selection.table.set_index("candidate")
    for name in ("base", "same", "sees_income", "blinder"):
        assert metrics[f"selection.{name}.mean_ap"] == pytest.approx(table.loc[name, "mean"])
        assert metrics[f"selection.{name}.seconds"] > 0
        for key in ("auc", "ap", "recall_at_5pct", "ece"):
            assert metrics[f"selection.{name}.{key}"] == pytest.approx(table.loc[name, key])
    assert metrics["selection.candidates_run"] == 4
    assert metrics["selection.candidates_capped"] == 0
    assert metrics["selection.max_cost"] == 1e9
    assert metrics["selection.planned_cost"] == pytest.approx(table["cost"].sum())
    assert metrics["selection.sees_income.cost"] == pytest.approx(table.loc["sees_income", "cost"])
    # The time cap did not fire: the choice did not depend on the machine; the registered
    # version says so too.
    assert run.data.tags[MACHINE_TAG] == "false"
    client = _client(uri)
    (version,) = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert version.tags[MACHINE_TAG] == "false"
    assert metrics["model_ap"] == pytest.approx(table.loc["sees_income", "ap"])
    path = download_artifacts(run_id=run.info.run_id, artifact_path="tables/selection.csv",
                              tracking_uri=uri, dst_path=str(tmp_path))
    logged = pd.read_csv(path, encoding="utf-8-sig")
    assert logged["candidate"].tolist() == ["base", "same", "sees_income", "blinder"]
    assert logged["status"].tolist() == ["run", "run", "chosen", "run"]
    assert np.allclose(logged["mean"], table["mean"].to_numpy())


def test_the_time_cap_stops_candidates_whose_estimate_does_not_fit(ledger, caplog):
    # A clock one second further on at every reading: each backtest takes one second. The
    # cost budget allows every candidate; the 10-second cap does not.
    ticks = itertools.count()
    config = _config([{"name": "slow", "max_iter": 1000, "learning_rate": 0.01},
                      {"name": "quick", "max_iter": 5}], budget=10.0, max_iter=40)
    data = training_data(ledger, config)
    costs = [candidate_cost(c, len(data.target)) for _, _, c in candidate_configs(config)]
    assert costs[1] / costs[0] == pytest.approx(25)
    assert costs[2] / costs[0] == pytest.approx(0.125)
    checked = []

    def check(model, origin):
        checked.append((origin, model.max_iter))
        return {"households": 1}

    assert [p for _, _, p in selection_plan(config, len(data.target))] == [True] * 3
    with threadpool_limits(1), caplog.at_level("WARNING", logger="riskmodel.model"):
        sel = select_model(data.features, data.target, data.months, config,
                           clock=lambda: float(next(ticks)), origin_check=check)
    table = sel.table.set_index("candidate")
    # base: 1 s. slow: 25 s estimated at second 3, past the 10 s cap. quick: ⅛ s at 4.
    assert table["status"].tolist() == ["chosen" if sel.chosen == "base" else "run",
                                        "skipped: time cap",
                                        "chosen" if sel.chosen == "quick" else "run"]
    # The cap fired: a warning, and the selection says its choice depended on the machine.
    assert sel.capped == ["slow"] and sel.machine_dependent
    assert sel.tags() == {MACHINE_TAG: "true"}
    assert sel.metrics()["selection.candidates_capped"] == 1
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "slow stopped by the time cap" in warning.getMessage()
    assert "depends on this machine" in warning.getMessage()
    assert table.loc["slow", "estimated_seconds"] == pytest.approx(25)
    assert np.isnan(table.loc["slow", "mean"]) and np.isnan(table.loc["slow", "seconds"])
    assert table.loc["quick", "estimated_seconds"] == pytest.approx(0.125)
    assert table.loc["base", "seconds"] == table.loc["quick", "seconds"] == 1
    assert set(sel.backtests) == {"base", "quick"}
    assert sel.seconds == 7
    # The reasons are checked once per origin, on the chosen candidate's fold models only.
    trees = 40 if sel.chosen == "base" else 5
    assert checked == [("2023-07", trees), ("2023-08", trees)]
    assert sel.backtest.agreement.to_dict("records") == [
        {"origin": "2023-07", "households": 1}, {"origin": "2023-08", "households": 1}]
    assert all(r.agreement is None for n, r in sel.backtests.items() if n != sel.chosen)
    assert "stopped by the 10 s time cap: slow" in sel.line()


def test_the_budget_keeps_room_for_the_chosen_candidates_final_fit(ledger):
    # Each backtest takes one second of this clock. base: 1 s; "five" costs 5 times as much
    # (200 trees at most against 40): 5 s of backtest would fit the 10 s budget at second 3,
    # but with its final fit were it chosen (one origin's share of 2: 2.5 s) it would not.
    ticks = itertools.count()
    config = _config([{"name": "five", "max_iter": 1000}, {"name": "four", "max_iter": 160}],
                     budget=10.0, max_iter=40)
    data = training_data(ledger, config)
    costs = [candidate_cost(c, len(data.target)) for _, _, c in candidate_configs(config)]
    assert costs[1] / costs[0] == pytest.approx(5)
    assert costs[2] / costs[0] == pytest.approx(4)
    with threadpool_limits(1):
        sel = select_model(data.features, data.target, data.months, config,
                           clock=lambda: float(next(ticks)))
    status = sel.table.set_index("candidate")["status"]
    assert status["five"] == "skipped: time cap"
    # At second 4, "four": 4 s of backtest and 2 s of final fit end at second 10.
    assert status["four"] in {"run", "chosen"}


def test_a_tiny_time_cap_runs_the_model_block_alone_and_says_so(ledger, tmp_path, capsys):
    config = _config([{"name": "longer", "max_iter": 300, "learning_rate": 0.05},
                      {"name": "sees_less", "exclude_causes": ["income"]}], budget=0.001)
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True),
                    encoding="utf-8")
    ledger.to_parquet(tmp_path / "ledger.parquet")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with threadpool_limits(1):
        code = main(["train", "--ledger", str(tmp_path / "ledger.parquet"), "--config",
                     str(path), "--tracking-uri", uri])
    out = capsys.readouterr().out
    assert code == 0
    assert "Model selection" in out and "skipped: time cap" in out
    client = _client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("return-to-poverty")
                                 .experiment_id])
    assert run.data.params["selected_candidate"] == "base"
    assert run.data.metrics["selection.candidates_run"] == 1
    assert run.data.metrics["selection.candidates_capped"] == 2
    # The choice depended on this machine's speed: the run and its registered version say so.
    assert run.data.tags[MACHINE_TAG] == "true"
    (version,) = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert version.tags[MACHINE_TAG] == "true"
    assert "selection.base.mean_ap" in run.data.metrics
    assert not [k for k in run.data.metrics if k.startswith(("selection.longer.mean",
                                                             "selection.sees_less.mean"))]
    assert run.data.metrics["selection.longer.estimated_seconds"] > 0


def _same_but_time(a, b) -> None:
    """Two selections alike in everything but the seconds they took."""
    assert a.chosen == b.chosen and a.config == b.config and a.capped == b.capped == []
    timing = ["seconds", "estimated_seconds"]
    pd.testing.assert_frame_equal(a.table.drop(columns=timing), b.table.drop(columns=timing))
    for name, result in a.backtests.items():
        pd.testing.assert_frame_equal(result.metrics, b.backtests[name].metrics)


def test_the_same_ledger_and_config_choose_the_same_model_at_any_clock_speed(ledger):
    # Two machines, one fifty times slower than the other (each backtest: 1 s against 50 s).
    # The cost budget leaves out "slow" before anything runs; the 1,000 s cap never fires.
    config = _config([{"name": "slow", "max_iter": 1000, "learning_rate": 0.01},
                      {"name": "sees_income", "exclude_features": []}],
                     budget=1000.0, max_iter=40, exclude_features=_blind())
    data = training_data(ledger, config)
    costs = [candidate_cost(c, len(data.target)) for _, _, c in candidate_configs(config)]
    # base and sees_income fit in the cost budget; slow (25 times base) does not.
    config = config.model_copy(update={"model": config.model.model_copy(update={
        "selection": config.model.selection.model_copy(
            update={"max_cost": costs[0] * 2.2})})})
    assert [p for _, _, p in selection_plan(config, len(data.target))] == [True, False, True]
    selections = []
    for speed in (1.0, 50.0):
        ticks = itertools.count()
        with threadpool_limits(1):
            selections.append(select_model(data.features, data.target, data.months, config,
                                           clock=lambda s=speed, t=ticks: s * next(t)))
    fast, slow = selections
    _same_but_time(fast, slow)
    assert fast.chosen == "sees_income"
    assert fast.table["status"].tolist() == ["run", "skipped: cost", "chosen"]
    assert fast.table["seconds"].dropna().tolist() == [1, 1]
    assert slow.table["seconds"].dropna().tolist() == [50, 50]
    assert not fast.machine_dependent and fast.tags() == {MACHINE_TAG: "false"}
    assert "left out by the cost budget" in fast.line() and "slow" in fast.line()
    # The same selection on the real clock.
    with threadpool_limits(1):
        real = select_model(data.features, data.target, data.months, config)
    _same_but_time(fast, real)


def test_the_cost_plan_is_decided_from_the_config_and_the_rows_alone():
    config = load_config()
    # The default on 20,000 households × 54 months (717,592 training rows): wider is left
    # out, coarser (cheaper) still fits; on a small ledger every candidate runs.
    plan = selection_plan(config, 717_592)
    assert [(n, p) for n, _, p in plan] == [("base", True), ("longer", True),
                                           ("wider", False), ("coarser", True)]
    assert sum(c for _, c, p in plan if p) <= config.model.selection.max_cost
    assert all(p for _, _, p in selection_plan(config, 30_000))
    # Nothing to spend: the model block alone, and base runs even past the budget.
    none = config.model_copy(update={"model": config.model.model_copy(update={
        "selection": config.model.selection.model_copy(update={"max_cost": 0.0})})})
    assert [p for _, _, p in selection_plan(none, 717_592)] == [True, False, False, False]


def test_disabled_selection_trains_the_model_block_as_before(ledger, tmp_path):
    config = _config([{"name": "sees_income", "exclude_features": []}], enabled=False,
                     exclude_features=_blind())
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with threadpool_limits(1):
        result = train(ledger, config, tracking_uri=uri)
    assert result.selection.table["candidate"].tolist() == ["base"]
    assert result.selection.chosen == "base"
    assert "income_ratio_3m" not in result.model.feature_names_in_
    run = _client(uri).get_run(result.run.run_id)
    assert "selected_candidate" not in run.data.params
    assert not [k for k in run.data.metrics if k.startswith("selection.")]
    artifacts = {a.path for a in _client(uri).list_artifacts(
        run.info.run_id, "tables")}
    assert "tables/selection.csv" not in artifacts and "tables/backtest_metrics.csv" in artifacts


@pytest.mark.parametrize(("candidate", "metric", "says"), [
    ({"name": "x", "exclude_features": ["no_such_feature"]}, "ap", "no_such_feature"),
    ({"name": "x", "exclude_causes": ["weather"]}, "ap", "weather"),
    ({"name": "x"}, "recall_at_7pct", "recall_at_7pct"),
])
def test_a_selection_it_cannot_run_is_refused_before_training(ledger, candidate, metric, says):
    config = _config([candidate], metric=metric)
    with pytest.raises(ConfigError, match=says):
        train(ledger.iloc[:0], config, track=False)


def test_a_candidate_that_sees_nothing_is_refused(ledger):
    config = _config([{"name": "nothing", "exclude_causes": [c.code for c in
                                                              load_config().causes]}])
    with pytest.raises(ConfigError, match="'nothing' leaves out every feature"):
        train(ledger.iloc[:0], config, track=False)


@pytest.mark.parametrize(("candidates", "says"), [
    ([{"name": "base", "max_iter": 5}], "named 'base'"),
    ([{"name": "a"}, {"name": "a", "max_iter": 5}], "'a' is named twice"),
    ([{"name": "a", "max_iters": 5}], "unknown key 'model.selection.candidates.0.max_iters'"),
    ([{"name": "a", "max_iter": None}], "sets 'max_iter' to null"),
    ([{"name": "a b"}], "name"),
])
def test_the_selection_block_is_checked_when_the_config_loads(tmp_path, candidates, says):
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump({"model": {"selection": {"candidates": candidates}}}),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=says):
        load_config(path)


def test_a_candidate_reads_back_as_written(tmp_path):
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump({"model": {"selection": {"candidates": [
        {"name": "all_rows", "max_train_rows": None}]}}}), encoding="utf-8")
    config = load_config(path)
    (cand,) = config.model.selection.candidates
    assert cand.overrides() == {"max_train_rows": None}
    again = Path(tmp_path / "again.yaml")
    again.write_text(yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True),
                     encoding="utf-8")
    assert load_config(again).model.selection == config.model.selection
    assert candidate_configs(config)[1][2].model.max_train_rows is None


def _client(uri: str):
    """An MLflow client of the test's own store, for both its runs and its registry."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)
