"""The family of processes: each knob changes what it says, and the default stays as it was."""

from __future__ import annotations

import hashlib
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.cli import main
from riskmodel.errors import ConfigError
from riskmodel.ledger import INCOME, SPENDING
from riskmodel.model import poverty_lines
from riskmodel.months import month_index
from riskmodel.synthetic import (
    PROCESSES,
    Knobs,
    Params,
    Process,
    draw,
    generate,
    generate_ledger,
    load_process,
    paths,
    populate,
    step,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "synthetic.md"
HOUSEHOLDS, MONTHS = 1000, 24


def _ledger(households: int = HOUSEHOLDS, months: int = MONTHS, seed: int = 0,
            params: Params | None = None, **knobs) -> pd.DataFrame:
    process = Process("test", "a process of the tests", params=params or Params(),
                      knobs=Knobs(**knobs))
    return generate_ledger(households, months, seed=seed, process=process)


def _wide(ledger: pd.DataFrame, column: str) -> np.ndarray:
    """A column as months × households."""
    n = ledger["household_id"].nunique()
    return ledger[column].to_numpy(dtype="float64").reshape(n, -1).T


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype="float64").tobytes()).hexdigest()[:20]


def test_the_default_process_is_the_process_as_it_was():
    # Digests of the ledger and truth generated before process specifications existed.
    data = generate(households=150, months=16, seed=11, replicas=10, process="default")
    assert _digest(data.ledger[[*INCOME, *SPENDING]].to_numpy("float64")) == \
        "e2f58128d60b526092aa"
    assert _digest(data.truth["true_risk"].to_numpy("float64")) == "6aae7c4b918ba279b72a"
    plain = generate(households=150, months=16, seed=11, replicas=10)
    pd.testing.assert_frame_equal(plain.ledger, data.ledger)
    pd.testing.assert_frame_equal(plain.truth, data.truth)
    # A specification that sets every knob to its default is the default process too.
    same = Process("copy", "every knob at its default", params=Params(), knobs=Knobs())
    assert same.is_default
    pd.testing.assert_frame_equal(generate_ledger(150, 16, seed=11, process=same), data.ledger)


def test_packaged_processes_load_generate_and_carry_their_truth():
    assert PROCESSES[0] == "default" and len(PROCESSES) >= 6
    held_out = {name for name in PROCESSES if load_process(name).held_out}
    assert held_out == {"village-shocks", "sparse-visits"}
    config = load_config()
    for name in PROCESSES:
        process = load_process(name)
        assert process.name == name and process.description
        assert process.is_default == (name == "default")
        data = generate(households=80, months=14, seed=3, replicas=5, process=name)
        assert data.process == process
        assert validate_ledger(data.ledger).quarantine.empty
        at = data.truth.dropna(subset=["true_risk"])
        assert len(at) == 80 and at["true_cause"].notna().all()
        for column in ["true_risk", *[f"true_risk_{m.code}" for m in config.measures]]:
            assert column in at
        assert at["true_risk"].between(0, 1).all()
    other = generate_ledger(80, 14, seed=3, process="volatile-wages")
    assert not other["inc_wage"].equals(generate_ledger(80, 14, seed=3)["inc_wage"])


@pytest.mark.parametrize(("text", "key"), [
    ("name: x\ndescription: y\nbills:\n  duration: 3\n", "bills.duration"),
    ("name: x\ndescription: y\nweather: rainy\n", "weather"),
    ("name: x\ndescription: y\nparams:\n  illness_rates: 0.1\n", "params.illness_rates"),
])
def test_an_unknown_key_is_refused_by_name(tmp_path, text, key):
    path = tmp_path / "process.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"unknown key '{key}'"):
        load_process(path)


def test_bad_specifications_are_refused(tmp_path):
    path = tmp_path / "process.yaml"
    path.write_text("name: x\ndescription: y\nbills:\n  sick_recovery: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bills.sick_recovery"):
        load_process(path)
    path.write_text("name: x\ndescription: y\nvillages:\n  disaster_months: [9, 3]\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="shortest ≤ longest"):
        load_process(path)
    with pytest.raises(ConfigError, match="expected one of default"):
        load_process("no-such-process")
    with pytest.raises(ConfigError, match="cannot read"):
        load_process(tmp_path / "missing.yaml")


def test_a_specification_file_sets_params_and_knobs(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndescription: mine\nparams:\n  illness_rate: 0.01\n"
                    "wages:\n  seasonality: 2\nvisits:\n  month_odds: [1,1,1,1,1,1,1,1,1,1,1,3]\n",
                    encoding="utf-8")
    process = load_process(path)
    assert process.params.illness_rate == 0.01 and process.knobs.seasonality == 2
    assert process.knobs.visit_month_odds[11] == 3 and not process.held_out
    assert generate_ledger(50, 3, process=path).shape == (150, 40)


def test_every_knob_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    assert "## Processes" in text
    for f in fields(Knobs):
        name = f.name.removeprefix("visit_")
        assert f"`{name}`" in text, f.name
    for name in PROCESSES:
        assert f"`{name}`" in text, name


def test_slower_recovery_keeps_laborers_off_work_longer():
    def off(ledger):
        labor = _wide(ledger, "labor_full")
        return float((labor.max(0) - labor).mean())
    assert off(_ledger(sick_recovery=0.03, injury_recovery=0.03)) > \
        1.5 * off(_ledger(sick_recovery=0.5, injury_recovery=0.5))


def test_slower_payment_spreads_a_bill_over_more_months():
    def first_share(ledger):
        medical = _wide(ledger, "exp_medical_oop")
        medical = np.nan_to_num(medical)
        ill = _wide(ledger, "ev_illness").astype(bool)
        firsts, totals = [], []
        for t in range(MONTHS - 12):
            hit = ill[t]
            firsts.append(medical[t:t + 2, hit].sum())
            totals.append(medical[t:t + 12, hit].sum())
        return sum(firsts) / sum(totals)
    slow = _ledger(params=replace(Params(), bill_payment_share=0.1))
    assert first_share(slow) < 0.7 * first_share(_ledger())


def test_seasonality_raises_the_month_of_year_variance_of_wages():
    def spread(ledger):
        months = month_index(ledger["month"]) % 12
        by_month = ledger.groupby(months)["inc_wage"].mean()
        return float(by_month.var() / by_month.mean() ** 2)
    assert spread(_ledger(seasonality=2.5)) > 2.5 * spread(_ledger())


def test_volatile_wages_move_more_and_unevenly_between_households():
    def moves(ledger):
        wage = _wide(ledger, "inc_wage")
        steps = np.abs(np.diff(np.log(np.where(wage > 0, wage, np.nan)), axis=0))
        steps = steps[:, np.isfinite(steps[6:10]).all(0)]
        # July to November: no seasonal step in either wage profile between them.
        return np.nanmedian(steps[6:10], axis=0)
    def uneven(steps):
        return np.nanpercentile(steps, 90) / np.nanpercentile(steps, 10)
    calm = moves(_ledger())
    even = moves(_ledger(volatility=0.25))
    volatile = moves(_ledger(volatility=0.25, volatility_spread=0.8))
    assert np.nanmedian(even) > 3 * np.nanmedian(calm)
    assert uneven(volatile) > 1.5 * uneven(even)


def test_village_job_waves_correlate_job_losses_within_villages():
    def village_spread(ledger):
        by_village_month = ledger.groupby(["village", "month"], observed=True)["ev_job_loss"]
        return float(by_village_month.mean().var())
    base = _ledger()
    waves = _ledger(job_wave_rate=0.03, job_wave_loss=0.8)
    assert waves["ev_job_loss"].mean() > base["ev_job_loss"].mean()
    assert village_spread(waves) > 3 * village_spread(base)


def test_harvest_shocks_and_disaster_illness():
    base = _ledger()
    shocked = _ledger(harvest_shock_rate=0.02, disaster_illness=8.0)
    assert shocked["ev_disaster"].mean() > 1.5 * base["ev_disaster"].mean()

    def ill_given_disaster(ledger):
        return ledger.loc[ledger["ev_disaster"], "ev_illness"].mean()
    assert ill_given_disaster(shocked) > 3 * ill_given_disaster(base)


def test_illness_sends_a_migrant_home():
    def loss_after_illness(ledger):
        hit = ledger["ev_illness"] & (ledger["migrant_workers"] > 0)
        return ledger.loc[ledger["ev_illness"], "ev_job_loss"].mean(), hit.sum()
    base, _ = loss_after_illness(_ledger())
    correlated, n = loss_after_illness(_ledger(illness_job_loss=1.0))
    assert n > 20 and correlated > base + 0.2


def test_return_migration_brings_migrants_home_for_good():
    def migrants_at_end(ledger):
        return _wide(ledger, "migrant_workers")[-1].mean()
    assert migrants_at_end(_ledger(return_rate=0.5)) < 0.9 * migrants_at_end(_ledger())


def test_business_cycle_moves_job_losses_with_the_county_cycle():
    ledger = _ledger(households=2000, months=36, cycle_amplitude=0.9, cycle_months=24)
    county = ledger["county"].cat.codes.to_numpy()
    t = month_index(ledger["month"])
    phase = np.sin(2 * np.pi * t / 24 + 2.0 * county)
    loss = ledger["ev_job_loss"].to_numpy()
    assert loss[phase > 0.5].mean() > 2 * loss[phase < -0.5].mean()


def test_households_lose_members_and_stay_valid():
    ledger = _ledger(elderly_death_rate=0.02, departure_rate=0.01)
    members = _wide(ledger, "members")
    assert (members[-1] <= members[0]).all() and (members[-1] < members[0]).mean() > 0.2
    assert members.min() >= 1
    assert validate_ledger(ledger).quarantine.empty
    assert (np.diff(_wide(_ledger(), "members"), axis=0) == 0).all()


def test_visits_missed_in_the_named_months_villages_and_absent_households():
    odds = (1.0,) * 3 + (6.0,) + (1.0,) * 8
    base, busy = _ledger(), _ledger(visit_month_odds=odds)

    def unvisited(ledger):
        gone = ledger[INCOME].isna().all(axis=1)
        return gone.groupby(month_index(ledger["month"]) % 12).mean()
    assert unvisited(busy)[3] > 2.5 * unvisited(base)[3]
    assert unvisited(busy).drop(3).sub(unvisited(base).drop(3)).abs().max() < 0.03

    def away_share(ledger):
        gone = ledger[INCOME].isna().all(axis=1)
        away = (ledger["migrant_workers"] >= ledger["labor_full"]) & (ledger["labor_full"] > 0)
        return gone[away].mean() / gone[~away].mean()
    assert away_share(_ledger(visit_migrant_odds=5.0)) > 2 * away_share(base)

    def village_spread(ledger):
        gone = ledger[INCOME].isna().all(axis=1)
        return gone.groupby(ledger["village"], observed=True).mean().std()
    assert village_spread(_ledger(visit_village_sd=1.5)) > 2 * village_spread(base)


def test_a_line_change_reaches_the_cadres_and_the_truth(tmp_path):
    path = tmp_path / "higher.yaml"
    path.write_text("name: higher\ndescription: a higher line\nlines:\n  2023: 9000\n",
                    encoding="utf-8")
    process = load_process(path)
    config = process.apply_lines(load_config())
    assert config.line_for(2023, province="云南省") == 9000
    assert config.line_for(2022, province="云南省") == load_config().line_for(2022,
                                                                              province="云南省")
    data = generate(households=HOUSEHOLDS, months=MONTHS, seed=0, process=process,
                    with_truth=False)
    base = generate_ledger(HOUSEHOLDS, MONTHS, seed=0)
    year = month_index(base["month"]) // 12
    lines = poverty_lines(data.config, year, base["province"], base["county"])
    before = poverty_lines(load_config(), year, base["province"], base["county"])
    assert (lines[year == 2023] == 9000).all() and (before[year == 2023] == 6900).all()
    assert (lines[year != 2023] == before[year != 2023]).all()
    # The cadres act on the higher line: more 低保 in 2023, the same before it.
    assert data.ledger["dibao"][year == 2023].mean() > base["dibao"][year == 2023].mean()
    pd.testing.assert_series_equal(data.ledger["dibao"][year == 2022],
                                   base["dibao"][year == 2022])


def test_the_monte_carlo_runs_the_ledger_s_process():
    # Disasters in every month, ten times as often: the futures drawn from the latent state at
    # the truth month must meet them. The same state run forward under the default process
    # (common random numbers: these knobs draw nothing of their own) meets fewer.
    from riskmodel.synthetic._generate import _simulate
    from riskmodel.synthetic._truth import monte_carlo
    knobs = Knobs(disaster_season=(30.0,) * 12)
    data = generate(households=800, months=12, seed=5, replicas=40, truth_months=["2022-06"],
                    process=Process("disasters", "disasters all year", knobs=knobs))
    t = 2022 * 12 + 5
    run = _simulate(800, 12, 2022 * 12, 5, Params(), snapshot_at=(t,), keep_losses=True,
                    knobs=knobs)
    at = data.truth[data.truth["month"] == "2022-06"]
    risk = at["true_risk"].to_numpy()
    again = monte_carlo(run, t, data.config, (1500.0,), 40, 5, Params(), knobs)["true_risk"]
    np.testing.assert_array_equal(risk, again)
    as_default = monte_carlo(run, t, data.config, (1500.0,), 40, 5, Params(),
                             Knobs())["true_risk"]
    not_poor = (at["poor_complete"] == False).to_numpy()  # noqa: E712
    assert (risk[not_poor] >= as_default[not_poor] - 1 / 40).all()
    assert risk[not_poor].mean() > 1.1 * as_default[not_poor].mean()


SHRINKING = Process("shrinking", "members leave", knobs=Knobs(elderly_death_rate=0.01,
                                                            departure_rate=0.01))


@pytest.mark.parametrize("process", [SHRINKING, "volatile-wages", "village-shocks"],
                         ids=lambda p: getattr(p, "name", p))
def test_the_true_risk_agrees_with_the_falls(process):
    # The mean true risk of the non-poor is the fall rate that happened, within its sampling
    # error (with members changing, each path's line scales with its own members).
    data = generate(households=1500, months=20, seed=2, replicas=30, process=process,
                    truth_months=["2022-12", "2023-03"])
    at = data.truth.dropna(subset=["true_risk"])
    at = at[at["poor_complete"] == False]  # noqa: E712
    risk, fell = at["true_risk"].mean(), at["target_complete"].mean()
    assert abs(risk - fell) < 3 * np.sqrt(fell * (1 - fell) / len(at)) + 0.005


def test_generate_command_takes_a_process(tmp_path, capsys):
    out = tmp_path / "ledger.parquet"
    assert main(["generate", "--households", "30", "--months", "8", "--process",
                 "sparse-visits", "--out", str(out)]) == 0
    assert "process sparse-visits (held out)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(out),
                                  generate_ledger(30, 8, process="sparse-visits"),
                                  check_dtype=False, check_categorical=False)
    assert main(["generate", "--households", "30", "--months", "8", "--process",
                 "nothing", "--out", str(tmp_path / "x.parquet")]) == 2
    assert not (tmp_path / "x.parquet").exists()


def _trend_spread(ledger):
    wage = _wide(ledger, "inc_wage")
    first, last = np.nanmean(wage[:6], axis=0), np.nanmean(wage[-6:], axis=0)
    ok = (first > 0) & (last > 0)
    return float(np.std(np.log(last[ok] / first[ok])))


def _median_step(ledger):
    wage = _wide(ledger, "inc_wage")
    steps = np.abs(np.diff(np.log(np.where(wage > 0, wage, np.nan)), axis=0))[6:10]
    return float(np.nanmedian(steps))


def _county_month_wage_spread(ledger):
    by = ledger.groupby(["county", "month"], observed=True)["inc_wage"].mean()
    return float((by / by.groupby(level="month").transform("mean")).var())


def _after_event(column, event, months=(3, 9)):
    def statistic(ledger):
        values = np.nan_to_num(_wide(ledger, column))
        hit = _wide(ledger, event).astype(bool)
        before, after = [], []
        for t in range(1, MONTHS - months[1]):
            rows = hit[t] & ~hit[:t].any(0)
            before.append(values[max(0, t - 12):t, rows].sum() / max(t - max(0, t - 12), 1))
            after.append(values[t + months[0]:t + months[1], rows].sum()
                         / (months[1] - months[0]))
        return float(sum(before) / max(sum(after), 1.0))
    return statistic


def _wage_in_disaster(ledger):
    wage = np.nan_to_num(_wide(ledger, "inc_wage"))
    hit = _wide(ledger, "ev_disaster").astype(bool)
    return float(wage[:-1][hit[1:] & ~hit[:-1]].mean() / wage[1:][hit[1:] & ~hit[:-1]].mean())


def _rise(column):
    def statistic(ledger):
        values = _wide(ledger, column)
        return float(values[-1].mean() - values[0].mean())
    return statistic


def _fall(column):
    def statistic(ledger):
        values = _wide(ledger, column)
        return float(values[0].mean() - values[-1].mean())
    return statistic


def _bill_spread(ledger):
    ill = ledger["ev_illness"] & ledger["exp_medical_oop"].notna()
    bills = ledger.loc[ill, "exp_medical_oop"]
    return float(np.log(bills[bills > 0]).std())


@pytest.mark.parametrize(("low", "high", "statistic", "factor"), [
    ({}, {"trend_sd": 0.3}, _trend_spread, 1.5),
    ({"volatility": 0.2, "persistence": 0.95}, {"volatility": 0.2, "persistence": 0.0},
     _median_step, 2.0),
    ({}, {"cycle_wage": 0.4, "cycle_months": 12}, _county_month_wage_spread, 1.5),
    ({"disaster_months": (1, 1)}, {"disaster_months": (12, 12)},
     _after_event("inc_business", "ev_disaster"), 1.5),
    ({"business_months": (1, 1)}, {"business_months": (12, 12)},
     _after_event("inc_business", "ev_business_loss"), 2.0),
    ({"disaster_wage_cut": 0.0}, {"disaster_wage_cut": 1.0}, _wage_in_disaster, 1.3),
    ({"chronic_share": 0.0}, {"chronic_share": 1.0}, _rise("chronic_ill"), 2.0),
    ({"serious_recovery": 0.5}, {"serious_recovery": 0.01}, _rise("serious_ill"), 2.0),
    ({"illness_bill_sd": 0.3}, {"illness_bill_sd": 1.5}, _bill_spread, 1.3),
    ({}, {"elderly_death_rate": 0.02}, _fall("elderly"), 5.0),
    ({}, {"departure_rate": 0.02}, _fall("labor_full"), 2.0),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) and v else None)
def test_each_knob_moves_its_own_figure(low, high, statistic, factor):
    lo, hi = statistic(_ledger(**low)), statistic(_ledger(**high))
    assert hi > factor * lo if lo > 0 else hi > lo + abs(lo) * (factor - 1) + 1e-9, (lo, hi)


def test_severity_spread_sets_how_alike_a_village_s_damage_is():
    # Every village struck in the same month: the damage of its households differs only by the
    # household spread around the village's severity.
    def within_village_spread(spread):
        rng = np.random.default_rng(0)
        params = Params()
        static, state = populate(3000, rng, params)
        n_villages = params.counties * params.townships_per_county * params.villages_per_township
        pth = paths(static, 1, n_villages, params.counties)
        d = draw(rng, 3000, n_villages, params.counties)
        d.v["disaster"][:] = 0
        step(pth, state, 2022 * 12 + 6, d, params, Knobs(severity_spread=spread))
        damaged = state["dis_left"] > 0
        frame = pd.DataFrame({"village": static["village"][damaged],
                              "severity": state["dis_sev"][damaged]})
        return float(frame.groupby("village")["severity"].std().mean())
    assert within_village_spread(0.0) < 0.02
    assert within_village_spread(2.0) > 1.5 * within_village_spread(1.0) > 0.05
