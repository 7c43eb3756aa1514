"""Model selection: training backtests the model block and its candidates, within a time
budget, and fits the best."""

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
    candidate_configs,
    candidate_cost,
    feature_causes,
    select_model,
    train,
    training_data,
)
from riskmodel.synthetic import generate_ledger

# What the households earn and lose: without these features the trees see little of a fall.
BLIND_CAUSES = ("income", "employment", "business")


def _config(candidates: list[dict], *, budget: float = 600.0, enabled: bool = True,
            metric: str = "ap", **model) -> Config:
    """A small, fast model whose selection block lists ``candidates``."""
    raw = load_config().model_dump(mode="json")
    raw["model"].update({"max_iter": 30, "min_samples_leaf": 20, "validation_months": 2,
                         "calibration_months": 2, "min_positive_labels": 20,
                         "scorecard_features": 6, **model})
    raw["model"]["selection"] = {"enabled": enabled, "time_budget_s": budget, "metric": metric,
                                 "candidates": candidates}
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
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    result, uri = chosen
    run = MlflowClient(tracking_uri=uri).get_run(result.run.run_id)
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
    assert metrics["model_ap"] == pytest.approx(table.loc["sees_income", "ap"])
    path = download_artifacts(run_id=run.info.run_id, artifact_path="tables/selection.csv",
                              tracking_uri=uri, dst_path=str(tmp_path))
    logged = pd.read_csv(path, encoding="utf-8-sig")
    assert logged["candidate"].tolist() == ["base", "same", "sees_income", "blinder"]
    assert logged["status"].tolist() == ["run", "run", "chosen", "run"]
    assert np.allclose(logged["mean"], table["mean"].to_numpy())


def test_the_budget_skips_candidates_whose_estimate_does_not_fit(ledger):
    # A clock one second further on at every reading: each backtest takes one second.
    ticks = itertools.count()
    config = _config([{"name": "slow", "max_iter": 1000, "learning_rate": 0.01},
                      {"name": "quick", "max_iter": 5}], budget=10.0, max_iter=40)
    data = training_data(ledger, config)
    costs = [candidate_cost(c, len(data.target)) for _, _, c in candidate_configs(config)]
    assert costs[1] / costs[0] == 25 and costs[2] / costs[0] == 0.125
    checked = []

    def check(model, origin):
        checked.append((origin, model.max_iter))
        return {"households": 1}

    with threadpool_limits(1):
        sel = select_model(data.features, data.target, data.months, config,
                           clock=lambda: float(next(ticks)), origin_check=check)
    table = sel.table.set_index("candidate")
    # base: 1 s. slow: 25 s estimated at second 3, past the 10 s budget. quick: ⅛ s at 4.
    assert table["status"].tolist() == ["chosen" if sel.chosen == "base" else "run",
                                        "skipped: budget",
                                        "chosen" if sel.chosen == "quick" else "run"]
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
    assert "skipped for the 10 s budget: slow" in sel.line()


def test_the_budget_keeps_room_for_the_chosen_candidates_final_fit(ledger):
    # Each backtest takes one second of this clock. base: 1 s; "five" costs 5 times as much
    # (200 trees at most against 40): 5 s of backtest would fit the 10 s budget at second 3,
    # but with its final fit were it chosen (one origin's share of 2: 2.5 s) it would not.
    ticks = itertools.count()
    config = _config([{"name": "five", "max_iter": 1000}, {"name": "four", "max_iter": 160}],
                     budget=10.0, max_iter=40)
    data = training_data(ledger, config)
    costs = [candidate_cost(c, len(data.target)) for _, _, c in candidate_configs(config)]
    assert costs[1] / costs[0] == 5 and costs[2] / costs[0] == 4
    with threadpool_limits(1):
        sel = select_model(data.features, data.target, data.months, config,
                           clock=lambda: float(next(ticks)))
    status = sel.table.set_index("candidate")["status"]
    assert status["five"] == "skipped: budget"
    # At second 4, "four": 4 s of backtest and 2 s of final fit end at second 10.
    assert status["four"] in {"run", "chosen"}


def test_a_tiny_budget_runs_the_model_block_alone(ledger, tmp_path, capsys):
    from mlflow import MlflowClient

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
    assert "Model selection" in out and "skipped: budget" in out
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("return-to-poverty")
                                 .experiment_id])
    assert run.data.params["selected_candidate"] == "base"
    assert run.data.metrics["selection.candidates_run"] == 1
    assert "selection.base.mean_ap" in run.data.metrics
    assert not [k for k in run.data.metrics if k.startswith(("selection.longer.mean",
                                                             "selection.sees_less.mean"))]
    assert run.data.metrics["selection.longer.estimated_seconds"] > 0


def test_disabled_selection_trains_the_model_block_as_before(ledger, tmp_path):
    from mlflow import MlflowClient

    config = _config([{"name": "sees_income", "exclude_features": []}], enabled=False,
                     exclude_features=_blind())
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with threadpool_limits(1):
        result = train(ledger, config, tracking_uri=uri)
    assert result.selection.table["candidate"].tolist() == ["base"]
    assert result.selection.chosen == "base"
    assert "income_ratio_3m" not in result.model.feature_names_in_
    run = MlflowClient(tracking_uri=uri).get_run(result.run.run_id)
    assert "selected_candidate" not in run.data.params
    assert not [k for k in run.data.metrics if k.startswith("selection.")]
    artifacts = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(
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
