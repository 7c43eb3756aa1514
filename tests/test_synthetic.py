"""The synthetic ledger: valid, deterministic, plausible, and its truth consistent."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, load_ledger, validate_ledger
from riskmodel.cli import main
from riskmodel.errors import ArgumentError, ConfigError
from riskmodel.ledger import INCOME, LEDGER_COLUMNS, SPENDING
from riskmodel.synthetic import (
    CAUSES,
    Draws,
    Params,
    base_rates,
    draw,
    generate,
    generate_ledger,
    paths,
    populate,
    step,
    write,
)

CONFIG = load_config()
HORIZON = CONFIG.label.horizon_months


@pytest.fixture(scope="module")
def data():
    return generate(households=600, months=24, seed=4, replicas=40,
                    truth_months=["2022-12", "2023-06"])


@pytest.fixture(scope="module")
def big_ledger():
    return generate_ledger(households=2000, months=30, seed=3)


def test_same_arguments_same_ledger_and_files(tmp_path):
    a = generate(households=120, months=14, seed=7, replicas=10)
    b = generate(households=120, months=14, seed=7, replicas=10)
    pd.testing.assert_frame_equal(a.ledger, b.ledger)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.ledger, generate_ledger(households=120, months=14, seed=7))
    write(a, tmp_path / "a.parquet", tmp_path / "a_truth.parquet")
    write(b, tmp_path / "b.parquet", tmp_path / "b_truth.parquet")
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    assert digest["a.parquet"] == digest["b.parquet"]
    assert digest["a_truth.parquet"] == digest["b_truth.parquet"]
    back = pd.read_parquet(tmp_path / "a.parquet")
    assert validate_ledger(back).quarantine.empty


def test_seed_changes_the_ledger_and_longer_ledger_extends_shorter():
    short = generate_ledger(households=50, months=6, seed=1)
    other = generate_ledger(households=50, months=6, seed=2)
    long = generate_ledger(households=50, months=9, seed=1)
    assert not short["inc_wage"].equals(other["inc_wage"])
    head = long[long["month"] <= "2022-06"].reset_index(drop=True)
    pd.testing.assert_frame_equal(head, short)


@pytest.mark.parametrize(("households", "months", "start", "seed"),
                         [(20, 3, "2022-01", 1), (300, 13, "2023-07", 9), (1, 1, "2024-12", 0)])
def test_every_ledger_passes_validation(households, months, start, seed):
    ledger = generate_ledger(households=households, months=months, start=start, seed=seed)
    assert list(ledger.columns) == LEDGER_COLUMNS
    assert len(ledger) == households * months
    result = validate_ledger(ledger)
    assert result.quarantine.empty
    assert not result.missing_optional
    pd.testing.assert_frame_equal(
        result.valid[["household_id", "month"]].astype(str),
        ledger[["household_id", "month"]].astype(str))


def test_unvisited_months_empty_money_only(big_ledger):
    money = big_ledger[INCOME + SPENDING]
    unvisited = money.isna().all(axis=1)
    assert 0.08 <= unvisited.mean() <= 0.16
    assert (money.isna().any(axis=1) == unvisited).all()
    others = big_ledger.drop(columns=INCOME + SPENDING)
    assert not others.isna().any().any()


def test_places_make_a_yunnan_county_area(big_ledger):
    assert set(big_ledger["province"]) == {"云南省"}
    assert 2 <= big_ledger["county"].nunique() <= 4
    towns = big_ledger.groupby("county", observed=True)["township"].nunique()
    assert towns.between(4, 6).all()
    villages = big_ledger.groupby("township", observed=True)["village"].nunique()
    assert villages.median() >= 6
    one_place = big_ledger.groupby("household_id")[["village", "county"]].nunique()
    assert (one_place == 1).all().all()


def test_disasters_strike_whole_villages_at_once(big_ledger):
    share = big_ledger.groupby(["village", "month"], observed=True)["ev_disaster"].mean()
    assert share.isin([0.0, 1.0]).all()
    assert share.sum() > 0


def test_base_rates_are_plausible(big_ledger):
    rates = base_rates(big_ledger, CONFIG)
    assert 0.10 <= rates["poor_share"] <= 0.20
    # Months whose horizon crosses a new line are excluded: a new line is a fall of its own.
    assert 0.02 <= rates["fall_rate_same_line"] <= 0.06
    assert 0.08 <= rates["unvisited_share"] <= 0.16


def _twins(months: int, t0: int = 2023 * 12 + 2, n: int = 2000, **forced):
    """Each household twice, fed the same draws but for ``forced`` ones in the first month.

    ``forced`` maps a draw name to (value for the first twin, value for the second); a name
    starting with ``v_`` is a village draw.
    """
    p = Params()
    static, state = populate(n, np.random.default_rng(0), p)
    pth = paths(static, 2, 120, p.counties)
    st = {k: np.tile(v, 2) if k in ("epidemic", "price") else np.repeat(v, 2, axis=-1)
          for k, v in state.items()}
    first = np.arange(2 * n) % 2 == 0
    rng = np.random.default_rng(1)
    out = []
    for k in range(months):
        d = draw(rng, n, 120, p.counties)
        d = Draws({a: np.repeat(b, 2) for a, b in d.u.items()},
                  {a: np.repeat(b, 2) for a, b in d.n.items()},
                  {a: np.tile(b, 2) for a, b in d.v.items()},
                  {a: np.tile(b, 2) for a, b in d.c.items()})
        if k == 0:
            for name, (one, two) in forced.items():
                if name.startswith("v_"):
                    d.v[name[2:]] = np.repeat(np.float32([one, two]), 120)
                else:
                    d.u[name] = np.where(first, np.float32(one), np.float32(two))
        out.append(step(pth, st, t0 + k, d, p))
    flows = {name: np.stack([f[name] for f in out]) for name in out[0]}
    return ({k: v[..., first] for k, v in flows.items()},
            {k: v[..., ~first] for k, v in flows.items()}, st, first)


def test_illness_brings_medical_bills_spread_over_months():
    ill, well, _, _ = _twins(6, ill=(0, 1))
    assert ill["ev_illness"][0].all() and not well["ev_illness"][0].any()
    extra = ill["exp_medical_oop"] - well["exp_medical_oop"]
    assert (extra[0] > 0).mean() > 0.95
    assert extra[0].mean() > 3000
    assert extra[2:].sum(0).mean() > 2000
    assert (extra >= -1).all()


def test_illness_of_a_laborer_costs_wages_for_a_while():
    ill, well, _, _ = _twins(3, ill=(0, 1), ill_who=(0, 1))
    lost = well["inc_wage"][0] - ill["inc_wage"][0]
    assert (lost >= -1).all() and lost.mean() > 300
    assert ill["loss_illness"][0].mean() > well["loss_illness"][0].mean() + 300


def test_job_loss_cuts_wages():
    lost, kept, _, _ = _twins(2, job_loss=(0, 1), rehire=(1, 1))
    hit = lost["ev_job_loss"][0]
    assert hit.sum() > 200 and not kept["ev_job_loss"][0].any()
    assert (lost["inc_wage"][0][hit] < kept["inc_wage"][0][hit]).all()
    assert (lost["loss_employment"][0][hit] > 0).all()


def test_accident_disability_takes_a_laborer_for_good():
    hurt, safe, st, first = _twins(8, acc=(0, 1), acc_who=(0, 1), acc_dis=(0, 1), acc_sev=(0, 1))
    assert hurt["ev_accident"][0].all() and hurt["ev_disability"][0].any()
    disabled = st["dis_sev_adults"][first] - st["dis_sev_adults"][~first]
    assert (disabled >= 0).all() and disabled.sum() > 500
    assert (hurt["loss_disability"][-1] >= safe["loss_disability"][-1] - 1).all()
    assert hurt["loss_disability"][-1].mean() > safe["loss_disability"][-1].mean() + 300


def test_disaster_ruins_harvests_and_houses_village_wide():
    hit, spared, st, first = _twins(10, t0=2023 * 12 + 6, v_disaster=(0, 1))
    assert hit["ev_disaster"][0].all() and not spared["ev_disaster"][0].any()
    lost = spared["inc_business"].sum(0) - hit["inc_business"].sum(0)
    assert (lost >= -1).all() and lost.mean() > 1000
    assert (~st["housing_safe"][first]).sum() > (~st["housing_safe"][~first]).sum() + 50


def test_business_collapse_cuts_business_income():
    failed, fine, _, _ = _twins(6, biz=(1, 0.5))
    hit = failed["ev_business_loss"][0]
    assert hit.sum() > 500
    lost = fine["inc_business"].sum(0) - failed["inc_business"].sum(0)
    assert (lost[hit] >= -1).all() and lost[hit].mean() > 1000


def test_entering_senior_high_brings_fees(big_ledger):
    ledger = big_ledger.sort_values(["household_id", "month"])
    entered = ledger.loc[ledger["ev_education"] & (ledger["month"] == "2022-09"), "household_id"]
    assert len(entered) > 10
    fees = ledger[ledger["month"].between("2022-09", "2023-06")].groupby("household_id")[
        "exp_education"].sum()
    assert fees[entered].mean() > fees.drop(entered).mean() + 1500
    students = ledger[ledger["month"] == "2022-09"].set_index("household_id")
    assert (students.loc[entered, "students_noncompulsory"] > 0).all()


def _by_hand(truth: pd.DataFrame, members: pd.Series, line_for) -> pd.DataFrame:
    """poor and target from the DESIGN.md definition, one household-month at a time."""
    rows = []
    for hid, grp in truth.groupby("household_id", sort=False):
        net = grp["net_income_complete"].to_numpy()
        months = grp["month"].to_list()
        size = members.loc[hid]
        poor = []
        for k, month in enumerate(months):
            window = net[max(0, k - 11): k + 1]
            if len(window) < CONFIG.label.min_observed_months:
                poor.append(None)
                continue
            income_pc = window.sum() * 12 / len(window) / size
            poor.append(bool(income_pc < line_for(int(month[:4]))))
        for k, month in enumerate(months):
            target = np.nan
            if poor[k] is False and k + HORIZON < len(months):
                target = float(any(poor[j] is True for j in range(k + 1, k + HORIZON + 1)))
            rows.append((hid, month, poor[k], target))
    return pd.DataFrame(rows, columns=["household_id", "month", "poor", "target"])


def test_truth_label_matches_the_definition(data):
    truth = data.truth
    members = data.ledger.groupby("household_id")["members"].first()
    sample = truth[truth["household_id"].isin(members.index[:60])]
    expected = _by_hand(sample, members, lambda y: CONFIG.line_for(y, province="云南省"))
    got = sample.reset_index(drop=True)
    known = expected["poor"].notna()
    assert (got.loc[known, "poor_complete"].astype(bool) == expected.loc[known, "poor"]).all()
    assert got.loc[~known, "poor_complete"].isna().all()
    np.testing.assert_array_equal(got["target_complete"].to_numpy(), expected["target"].to_numpy())


def test_truth_rows_line_up_with_the_ledger(data):
    truth, ledger = data.truth, data.ledger
    assert len(truth) == len(ledger)
    assert (truth["household_id"].to_numpy() == ledger["household_id"].to_numpy()).all()
    assert (truth["month"].to_numpy() == ledger["month"].to_numpy()).all()
    at = truth["month"].isin(["2022-12", "2023-06"])
    risk_columns = [c for c in truth if c.startswith("true_risk")]
    assert len(risk_columns) == 1 + len(CAUSES) + 1 + len(CONFIG.measures)
    assert truth.loc[~at, risk_columns].isna().all().all()
    assert truth.loc[~at, "true_cause"].isna().all()
    assert truth.loc[at, "true_risk"].between(0, 1).all()
    assert set(truth.loc[at, "true_cause"]) <= {*CAUSES, "structural"}


def test_shock_flags_cover_three_months(data):
    truth, ledger = data.truth, data.ledger
    recent = (ledger.groupby("household_id")["ev_illness"]
              .rolling(3, min_periods=1).max().reset_index(drop=True).astype(bool))
    assert (truth["shock_illness_3m"].to_numpy() == recent.to_numpy()).all()


def test_true_risk_is_calibrated_against_the_complete_label():
    data = generate(households=2500, months=20, seed=8, replicas=40, truth_months=["2022-10"])
    at = data.truth[(data.truth["month"] == "2022-10") & data.truth["target_complete"].notna()]
    assert len(at) > 1500
    gap = at["true_risk"].mean() - at["target_complete"].mean()
    assert abs(gap) < 3 * np.sqrt(at["target_complete"].mean() / len(at)) + 0.005
    high = at["true_risk"] >= 0.5
    assert at.loc[high, "target_complete"].mean() > 4 * at.loc[~high, "target_complete"].mean()


def test_truth_seed_gives_the_same_ledger_and_an_independent_estimate():
    kwargs = dict(households=400, months=14, seed=3, replicas=50)
    a, b = generate(**kwargs), generate(**kwargs, truth_seed=99)
    pd.testing.assert_frame_equal(a.ledger, b.ledger)
    first, second = (d.truth["true_risk"].to_numpy() for d in (a, b))
    known = ~np.isnan(first)
    assert known.sum() == 400 and np.array_equal(known, ~np.isnan(second))
    differ = first[known] != second[known]
    assert differ.mean() > 0.02                    # other futures, not a copy
    # Both estimate the same risk: no household is further apart than sampling allows.
    assert np.abs(first[known] - second[known]).max() < 6 * 0.5 / np.sqrt(50) * np.sqrt(2)
    assert abs(first[known].mean() - second[known].mean()) < 0.01
    pd.testing.assert_frame_equal(generate(**kwargs, truth_seed=3).truth, a.truth)


def test_taking_a_cause_away_never_raises_the_risk(data):
    at = data.truth.dropna(subset=["true_risk"])
    for cause in CAUSES:
        rise = at[f"true_risk_without_{cause}"] - at["true_risk"]
        assert rise.max() <= 0.05, cause
    assert (at[[f"true_risk_without_{c}" for c in CAUSES]].min(axis=1) < at["true_risk"]).any()


def test_help_never_raises_the_risk_and_blanks_where_it_does_not_apply(data):
    at = data.truth.dropna(subset=["true_risk"])
    ledger = data.ledger.loc[at.index]
    for name in ["true_risk_grant_1500", *[f"true_risk_{m.code}" for m in CONFIG.measures]]:
        values = at[name].dropna()
        assert (values <= at.loc[values.index, "true_risk"] + 1e-12).all(), name
    no_labor = (ledger["labor_full"] + ledger["labor_partial"]) == 0
    assert at.loc[no_labor, "true_risk_welfare_job"].isna().all()
    assert at.loc[~no_labor, "true_risk_welfare_job"].notna().all()
    no_students = (ledger["students_compulsory"] + ledger["students_noncompulsory"]) == 0
    assert at.loc[no_students, "true_risk_education_subsidy"].isna().all()
    assert (at["true_risk_grant_1500"] < at["true_risk"]).any()


def test_true_cause_follows_its_definition(data):
    at = data.truth.dropna(subset=["true_risk"])
    drops = pd.DataFrame({c: at["true_risk"] - at[f"true_risk_without_{c}"] for c in CAUSES})
    strong = (at["true_risk"] > 0) & (drops.max(axis=1) >= 0.5 * at["true_risk"])
    assert (at.loc[~strong, "true_cause"] == "structural").all()
    assert (at.loc[strong, "true_cause"] == drops[strong].idxmax(axis=1)).all()


def test_grant_amounts_name_their_columns():
    data = generate(households=40, months=10, seed=1, replicas=8, grant_amounts=(500, 3000))
    at = data.truth.dropna(subset=["true_risk"])
    assert (at["true_risk_grant_3000"] <= at["true_risk_grant_500"]).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"households": 0, "months": 3}, "households=0"),
    ({"households": 5, "months": 2.5}, "months=2.5"),
    ({"households": 5, "months": 3, "start": "2022-13"}, "start='2022-13'"),
    ({"households": 5, "months": 3, "seed": -1}, "seed=-1, expected an integer ≥ 0"),
    ({"households": 5, "months": 3, "seed": 2.5}, "seed=2.5"),
])
def test_bad_arguments_say_what_was_given(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_ledger(**kwargs)
    with pytest.raises(ArgumentError, match=message):
        generate(**kwargs, with_truth=False)


def test_years_without_a_line_are_refused_before_the_simulation(monkeypatch):
    import riskmodel.synthetic._generate as synthetic

    monkeypatch.setattr(synthetic, "_simulate", lambda *a, **k: pytest.fail("simulated"))
    with pytest.raises(ConfigError, match="2026-06 to 2028-05: No poverty line for year 2027"):
        generate(households=5, months=24, start="2026-06")


def test_truth_months_outside_the_ledger_are_refused():
    with pytest.raises(ValueError, match="truth_months"):
        generate(households=5, months=8, truth_months=["2021-12"])
    with pytest.raises(ValueError, match="replicas"):
        generate(households=5, months=8, replicas=0)


def test_without_truth_gives_the_ledger_alone(tmp_path):
    data = generate(households=60, months=8, seed=3, with_truth=False)
    assert data.truth is None
    pd.testing.assert_frame_equal(data.ledger, generate_ledger(households=60, months=8, seed=3))
    with pytest.raises(ValueError, match="no truth"):
        write(data, tmp_path / "l.parquet", tmp_path / "t.parquet")
    lines = data.describe()
    assert lines[0].startswith("ledger: 60 households × 8 months (2022-01 … 2022-08)")
    assert not any(line.startswith("truth") for line in lines)


def test_describe_reports_the_truth(data):
    lines = data.describe()
    truth_line = next(line for line in lines if line.startswith("truth at 2022-12, 2023-06"))
    assert "structural" in truth_line


def test_describe_says_unknown_where_a_short_ledger_has_no_figure():
    data = generate(households=10, months=1, seed=1, replicas=4)
    rates = base_rates(data.ledger, truth=data.truth)
    assert np.isnan(rates["poor_share"]) and np.isnan(rates["poor_share_complete"])
    lines = data.describe()
    assert lines[0].startswith("ledger: 10 households × 1 month (2022-01 … 2022-01)")
    assert lines[1].startswith("poor: unknown, no household-month has the 6 observed months")
    assert lines[2].startswith("fall below the line within the horizon: unknown")


def _generate(*args: str) -> int:
    return main(["generate", "--households", "20", "--months", "8", *args])


def _left(tmp_path) -> list[str]:
    """Everything under tmp_path, hidden files included."""
    return sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "2017-01"], "No poverty line for year 2017"),
    (["--seed", "-1"], "seed=-1, expected an integer ≥ 0"),
    (["--truth", "{tmp}/t.parquet", "--truth-months", "2021-12"],
     "truth_months=['2021-12'], expected months within the ledger"),
    (["--truth", "{tmp}/t.parquet", "--truth-months", "2022-03,2022-1x"],
     "truth_months='2022-1x', expected a month as 'YYYY-MM'"),
    (["--truth-months", "2022-03"], "--truth-months without --truth"),
    (["--truth", "{tmp}/ledger.parquet"], "for both the ledger and the truth"),
    (["--truth", "{tmp}/t.xlsx"], "t.xlsx, expected a file name ending in .parquet or .csv"),
])
def test_generate_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys, args,
                                                                    message):
    args = [a.format(tmp=tmp_path) for a in args]
    assert _generate("--out", str(tmp_path / "ledger.parquet"), *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("riskmodel generate: ") and err.count("\n") == 1
    assert message in err
    assert _left(tmp_path) == []


@pytest.mark.parametrize("name", ["ledger.xlsx", "ledger", "ledger.parquet.bak"])
def test_generate_refuses_a_name_it_cannot_write(tmp_path, capsys, name):
    assert _generate("--out", str(tmp_path / name)) == 2
    assert "expected a file name ending in .parquet or .csv" in capsys.readouterr().err
    assert _left(tmp_path) == []


def test_generate_refuses_a_folder_as_out_and_leaves_nothing_behind(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    assert _generate("--out", str(tmp_path / "folder")) == 2
    assert "an existing folder" in capsys.readouterr().err
    assert _left(tmp_path) == ["folder"]


def test_a_failed_write_leaves_no_file_and_no_folder_behind(tmp_path, monkeypatch, capsys):
    import riskmodel.synthetic._generate as synthetic

    real = synthetic._write_frame

    def full_disk(frame, path, suffix):
        if "true_risk" in frame:
            raise OSError(28, "No space left on device")
        real(frame, path, suffix)

    monkeypatch.setattr(synthetic, "_write_frame", full_disk)
    assert _generate("--out", str(tmp_path / "new" / "ledger.parquet"),
                     "--truth", str(tmp_path / "new" / "deeper" / "truth.parquet")) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert _left(tmp_path) == []


def test_generate_writes_a_one_month_ledger(tmp_path, capsys):
    out = tmp_path / "ledger.parquet"
    assert main(["generate", "--households", "20", "--months", "1", "--out", str(out)]) == 0
    assert "poor: unknown" in capsys.readouterr().out
    assert validate_ledger(pd.read_parquet(out)).quarantine.empty


def test_generate_writes_csv_the_ledger_reader_reads_back(tmp_path):
    args = ["--seed", "5", "--truth-months", "2022-03"]
    assert _generate("--out", str(tmp_path / "l.csv"),
                     "--truth", str(tmp_path / "t.csv"), *args) == 0
    assert _generate("--out", str(tmp_path / "l.parquet"),
                     "--truth", str(tmp_path / "t.parquet"), *args) == 0
    raw = (tmp_path / "l.csv").read_bytes()
    assert raw.startswith("\ufeffhousehold_id,month,".encode())
    assert "云南省" in raw.decode("utf-8-sig")
    assert _left(tmp_path) == ["l.csv", "l.parquet", "t.csv", "t.parquet"]
    from_csv, from_parquet = load_ledger(tmp_path / "l.csv"), load_ledger(tmp_path / "l.parquet")
    assert from_csv.quarantine.empty and len(from_csv.valid) == 160
    pd.testing.assert_frame_equal(from_csv.valid.reset_index(drop=True),
                                  from_parquet.valid.reset_index(drop=True))
    truth_csv = pd.read_csv(tmp_path / "t.csv", encoding="utf-8-sig")
    truth = pd.read_parquet(tmp_path / "t.parquet")
    assert list(truth_csv.columns) == list(truth.columns)
    assert np.allclose(truth_csv["true_risk"], truth["true_risk"], equal_nan=True, rtol=0,
                       atol=0)
