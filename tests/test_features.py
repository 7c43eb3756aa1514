from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_ledger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import riskmodel.model._features as features_module
from riskmodel import load_config, validate_ledger
from riskmodel.config import CAUSE_CODES
from riskmodel.errors import ConfigError, LedgerError
from riskmodel.ledger import EVENTS, INCOME, KEY
from riskmodel.model import (
    FEATURE_NAMES,
    LOOKBACK,
    LedgerFeatures,
    build_features,
    feature_causes,
    feature_monotonic,
    make_labels,
)
from riskmodel.synthetic import generate_ledger

CONFIG = load_config()
LAST = "2025-02"


def valid(raw: pd.DataFrame) -> pd.DataFrame:
    result = validate_ledger(raw)
    assert result.quarantine.empty, result.quarantine["reasons"].tolist()
    return result.valid


def steady(households: int = 1, months: int = 14, start: str = "2024-01") -> pd.DataFrame:
    """Households with the same income every month: 3,650 earned, 100 on schooling."""
    raw = tiny_ledger(households, months, start)
    raw["inc_wage"], raw["inc_business"] = 3000.0, 500.0
    return raw


def at(frame: pd.DataFrame, ledger: pd.DataFrame, household: str, month: str) -> pd.Series:
    row = ledger.index[(ledger["household_id"] == household) & (ledger["month"] == month)]
    return frame.loc[row[0]]


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return valid(generate_ledger(households=300, months=24, seed=5))


# --- configuration ---------------------------------------------------------------------------

def test_config_maps_exactly_the_features_to_known_causes():
    assert list(CONFIG.features) == FEATURE_NAMES
    causes = feature_causes(CONFIG)
    assert list(causes) == FEATURE_NAMES
    assert set(causes.values()) <= set(CAUSE_CODES)
    assert set(feature_monotonic(CONFIG).values()) <= {-1, 0, 1}
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


@pytest.mark.parametrize(("feature", "cause"), [
    ("income_margin_12m", "income"), ("wage_change_3v12", "employment"),
    ("ev_job_loss_3m", "employment"), ("business_pc_3m", "business"),
    ("ev_business_loss_12m", "business"), ("medical_pc_12m", "illness"),
    ("serious_ill", "illness"), ("students_noncompulsory", "education"),
    ("dropouts", "education"), ("ev_disaster_3m", "disaster"), ("disabled", "disability"),
    ("months_since_ev_accident", "accident"), ("labor_ratio", "labor_shortage"),
    ("housing_safe", "housing"), ("water_safe", "water"), ("dibao", "income"),
])
def test_evidence_belongs_to_its_cause(feature, cause):
    assert feature_causes(CONFIG)[feature] == cause


def test_income_margin_never_raises_risk():
    mono = feature_monotonic(CONFIG)
    assert all(mono[f"income_{k}_{w}m"] == -1 for k in ("ratio", "margin") for w in (3, 6, 12))


def test_a_config_missing_a_feature_is_an_error():
    partial = CONFIG.model_copy(update={"features": dict(list(CONFIG.features.items())[1:])})
    with pytest.raises(ConfigError, match="misses 1 feature"):
        feature_causes(partial)


# --- shape and types -------------------------------------------------------------------------

def test_one_float_row_per_ledger_row_in_ledger_order(synthetic):
    out = build_features(synthetic, CONFIG)
    assert out.index.equals(synthetic.index)
    assert list(out.columns) == FEATURE_NAMES
    assert (out.dtypes == "float64").all()


def test_months_selects_rows_and_keeps_their_values(synthetic):
    full = build_features(synthetic, CONFIG)
    months = sorted(synthetic["month"].unique())[-3::2]
    some = build_features(synthetic, CONFIG, months=months)
    assert some.index.equals(synthetic.index[synthetic["month"].isin(months)])
    pd.testing.assert_frame_equal(some, full.loc[some.index], check_exact=True)
    assert build_features(synthetic, CONFIG, months=["1999-01"]).shape == (0, len(FEATURE_NAMES))


def test_household_type_is_one_hot():
    ledger = valid(tiny_ledger(3, 2))
    out = build_features(ledger, CONFIG)
    types = out[["type_exited", "type_monitored", "type_general"]]
    assert (types.sum(axis=1) == 1).all()
    expected = (ledger["household_type"] == "monitored").astype(float)
    np.testing.assert_array_equal(out["type_monitored"], expected)


def test_missing_column_is_named():
    with pytest.raises(LedgerError, match="inc_wage"):
        build_features(valid(tiny_ledger()).drop(columns="inc_wage"), CONFIG)
    with pytest.raises(TypeError, match="DataFrame"):
        build_features(np.zeros((3, 3)), CONFIG)


# --- values on hand-built households ---------------------------------------------------------

def test_steady_household_in_numbers():
    raw = steady()
    raw.loc[raw["month"] == "2025-01", "exp_medical_oop"] = 1200.0
    raw.loc[raw["month"] == "2024-06", "ev_illness"] = True
    raw.loc[raw["month"] == "2025-01", "ev_illness"] = True
    ledger = valid(raw)
    row = at(build_features(ledger, CONFIG), ledger, "H0000", LAST)
    members, line = 4, 8700.0  # 云南省, 2025
    monthly = 3000 + 500 + 50 + 100 - 100
    income_pc = (12 * monthly - 1200) / members
    assert row["income_margin_12m"] == pytest.approx(income_pc - line)
    assert row["income_ratio_12m"] == pytest.approx(income_pc / line)
    assert row["income_margin_3m"] == pytest.approx((3 * monthly - 1200) * 4 / members - line)
    assert row["wage_pc_12m"] == pytest.approx(3000 * 12 / members)
    assert row["medical_pc_12m"] == pytest.approx(1200 / members)
    assert row["medical_pc_3m"] == pytest.approx(1200 * 4 / members)
    assert row["medical_change_3v12"] == pytest.approx(1200 * 3 / members)
    assert row["wage_change_3v12"] == 0
    assert row["wage_change_rel_3v12"] == 0
    assert row["wage_volatility_12m"] == 0
    assert row["wage_slope_12m"] == pytest.approx(0)
    assert row["education_share_12m"] == pytest.approx(100 / 3650)
    assert row["medical_share_12m"] == pytest.approx(1200 / (12 * 3650))
    illness = row[["ev_illness_3m", "ev_illness_12m", "months_since_ev_illness"]]
    assert illness.tolist() == [1, 2, 1]
    assert row["months_since_ev_disaster"] == LOOKBACK
    assert row["observed_months_12m"] == 12
    assert row["months_since_observed"] == 0
    assert row["labor_ratio"] == 0.5
    assert row["dependant_ratio"] == 0.5
    assert row["no_labor"] == 0


def test_lines_ahead_over_the_horizon():
    raw = steady(months=24, start="2023-01")
    raw["province"] = "贵州省"  # national lines: 6,900 in 2023, 7,200 in 2024
    late = steady(months=12, start="2025-11")
    late["household_id"], late["province"] = "H0001", "贵州省"
    ledger = valid(pd.concat([raw, late], ignore_index=True))
    out = build_features(ledger, CONFIG)
    ratio = pd.Series(out["line_ahead_ratio"].to_numpy(), index=ledger[KEY].agg(" ".join, axis=1))
    assert ratio["H0000 2023-06"] == 1.0                      # (t, t+6] ends 2023-12
    assert ratio["H0000 2023-07"] == pytest.approx(7200 / 6900)
    assert ratio["H0000 2024-02"] == 1.0
    assert ratio["H0001 2025-11"] == pytest.approx(7800 / 7500)
    assert ratio["H0001 2026-10"] == 1.0                      # 2027 has no line: keeps 2026's
    row = at(out, ledger, "H0000", "2023-12")
    assert row["income_ratio_ahead_12m"] == pytest.approx((row["income_margin_12m"] + 6900) / 7200)


def test_per_source_figures_add_up_to_the_margin(synthetic):
    out = build_features(synthetic, CONFIG)
    line = make_labels(synthetic, CONFIG)["line"].to_numpy()
    for w in (3, 6, 12):
        parts = (out[f"wage_pc_{w}m"] + out[f"business_pc_{w}m"] + out[f"property_pc_{w}m"]
                 + out[f"transfer_pc_{w}m"] - out[f"medical_pc_{w}m"]
                 - out[f"education_pc_{w}m"])
        np.testing.assert_allclose(parts - line, out[f"income_margin_{w}m"], rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(parts / line, out[f"income_ratio_{w}m"], rtol=1e-9)
        assert out[f"income_margin_{w}m"].notna().mean() > 0.5


def test_margin_agrees_with_the_label(synthetic):
    out = build_features(synthetic, CONFIG)
    labels = make_labels(synthetic, CONFIG)
    np.testing.assert_allclose(out["income_margin_12m"] + labels["line"].to_numpy(),
                               labels["income_pc"], rtol=1e-12, atol=1e-6)
    poor = labels["poor"].to_numpy(dtype=float, na_value=np.nan)
    known = ~np.isnan(poor)
    assert known.sum() > 1000
    np.testing.assert_array_equal(out["income_margin_12m"].to_numpy()[known] < 0, poor[known] == 1)


def test_missing_and_unvisited_months_are_annualised_not_zero_filled():
    raw = steady()
    raw = raw[~raw["month"].isin(["2024-05", "2024-09"])].reset_index(drop=True)
    raw.loc[raw["month"] == "2024-11", INCOME] = np.nan          # visited, nothing recorded
    raw.loc[raw["month"] == "2024-12", INCOME[1:]] = np.nan      # only the wage recorded
    ledger = valid(raw)
    row = at(build_features(ledger, CONFIG), ledger, "H0000", LAST)
    observed = 12 - 3
    total = 8 * 3550 + (3000 - 100)
    assert row["observed_months_12m"] == observed
    assert row["income_margin_12m"] == pytest.approx(total * 12 / observed / 4 - 8700)
    assert row["wage_pc_12m"] == pytest.approx(3000 * 12 / 4)
    assert row["business_pc_12m"] == pytest.approx(500 * 8 * 12 / observed / 4)


def test_extremes_read_the_lowest_and_highest_observed_month():
    raw = steady()
    raw.loc[raw["month"] == "2024-12", "inc_wage"] = 0.0          # a month without wages
    raw.loc[raw["month"] == "2024-10", "exp_medical_oop"] = 2400.0  # one large bill
    raw.loc[raw["month"] == "2025-01", INCOME] = np.nan            # visited, nothing recorded
    ledger = valid(raw)
    row = at(build_features(ledger, CONFIG), ledger, "H0000", LAST)
    members, line, monthly = 4, 8700.0, 3550.0
    # The window of 3 is 2024-12 (no wage), 2025-01 (unobserved) and 2025-02: the unobserved
    # month is not read as a month of zero.
    assert row["wage_pc_min_3m"] == 0
    assert row["wage_pc_max_3m"] == pytest.approx(3000 * 12 / members)
    assert row["income_ratio_min_3m"] == pytest.approx((monthly - 3000) * 12 / members / line)
    assert row["income_ratio_max_3m"] == pytest.approx(monthly * 12 / members / line)
    assert row["medical_pc_max_3m"] == 0
    assert row["medical_pc_max_6m"] == pytest.approx(2400 * 12 / members)
    assert row["medical_pc_min_6m"] == 0
    assert row["business_pc_min_12m"] == row["business_pc_max_12m"] == pytest.approx(
        500 * 12 / members)
    # Steady months: the extremes are the window's own per-capita figure.
    plain = valid(steady())
    steady_row = at(build_features(plain, CONFIG), plain, "H0000", LAST)
    for w in (3, 6, 12):
        assert steady_row[f"wage_pc_min_{w}m"] == pytest.approx(steady_row[f"wage_pc_{w}m"])
        assert steady_row[f"income_ratio_max_{w}m"] == pytest.approx(
            steady_row[f"income_ratio_{w}m"])


@pytest.mark.parametrize(("observed", "known"), [(5, False), (6, True)])
def test_twelve_month_figures_need_min_observed_months(observed, known):
    raw = steady(months=12)
    raw.loc[observed:, INCOME] = np.nan
    ledger = valid(raw)
    row = build_features(ledger, CONFIG, months=["2024-12"]).iloc[0]
    assert row["observed_months_12m"] == observed
    assert row["months_since_observed"] == 12 - observed
    for name in ("income_margin_12m", "wage_pc_12m", "income_volatility_12m",
                 "transfer_share_12m", "wage_pc_min_12m", "income_ratio_max_12m"):
        assert np.isnan(row[name]) != known, name
    assert np.isnan(row["income_margin_3m"]) and np.isnan(row["medical_pc_max_3m"])


def test_stale_household_is_capped_and_unknown():
    raw = steady(months=30, start="2023-01")
    raw.loc[1:, INCOME] = np.nan
    ledger = valid(raw)
    row = build_features(ledger, CONFIG, months=["2025-06"]).iloc[0]
    assert row["months_since_observed"] == LOOKBACK
    assert np.isnan(row["income_margin_12m"]) and np.isnan(row["wage_pc_3m"])


def test_absent_optional_columns_are_unknown_not_zero():
    raw = steady().drop(columns=["temp_assistance", "dibao", "elderly", "insured_all"])
    ledger = valid(raw)
    row = at(build_features(ledger, CONFIG), ledger, "H0000", LAST)
    for name in ("temp_assistance_pc_12m", "dibao_months_12m", "dibao", "elderly_ratio",
                 "dependant_ratio", "insured_all"):
        assert np.isnan(row[name]), name
    assert row["income_margin_12m"] == pytest.approx(3550 * 3 - 8700)


def test_assistance_counts_recorded_months():
    raw = steady()
    raw.loc[raw["month"] >= "2024-10", "dibao"] = True
    raw.loc[raw["month"] == "2025-01", "temp_assistance"] = 2000.0
    ledger = valid(raw)
    row = at(build_features(ledger, CONFIG), ledger, "H0000", LAST)
    assert row["dibao_months_12m"] == 5
    assert row["dibao"] == 1
    assert row["temp_assistance_pc_12m"] == 500


def test_a_household_is_not_affected_by_another():
    raw = steady(households=2)
    second = raw["household_id"] == "H0001"
    base = build_features(valid(raw), CONFIG)
    raw.loc[second, "inc_wage"] = 0.0
    raw.loc[second, "ev_job_loss"] = True
    changed = build_features(valid(raw), CONFIG)
    first = ~second.to_numpy()
    pd.testing.assert_frame_equal(base[first], changed[first], check_exact=True)
    assert (changed.loc[second.to_numpy(), "ev_job_loss_12m"] > 0).all()


def test_row_order_subsets_and_chunking_change_nothing(synthetic, monkeypatch):
    base = build_features(synthetic, CONFIG)
    shuffled = synthetic.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(build_features(shuffled, CONFIG), base.loc[shuffled.index],
                                  check_exact=True)
    some = synthetic[synthetic["household_id"].isin(synthetic["household_id"].unique()[::3])]
    pd.testing.assert_frame_equal(build_features(some, CONFIG), base.loc[some.index],
                                  check_exact=True)
    monkeypatch.setattr(features_module, "CHUNK_HOUSEHOLDS", 7)
    pd.testing.assert_frame_equal(build_features(synthetic, CONFIG), base, check_exact=True)


# --- point in time ---------------------------------------------------------------------------

def _history(seed: int, households: int, months: int, gaps: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    raw = tiny_ledger(households, months, "2023-07")
    n = len(raw)
    raw["members"] = np.repeat(rng.integers(2, 6, households), months)
    raw["inc_wage"] = np.round(rng.gamma(2.0, 1500.0, n))
    raw["inc_business"] = np.round(rng.normal(300, 900, n))
    raw["exp_medical_oop"] = np.round(rng.exponential(400, n) * (rng.random(n) < 0.3))
    for col in [*INCOME, "exp_medical_oop", "temp_assistance"]:
        raw.loc[rng.random(n) < gaps, col] = np.nan
    for ev in EVENTS:
        raw[ev] = rng.random(n) < 0.08
    raw["dibao"] = pd.array(rng.random(n) < 0.3, dtype="boolean")
    raw.loc[rng.random(n) < gaps, "dibao"] = pd.NA
    # Incomes as recorded: annual figures that change at some months and repeat in between,
    # the month their run began, and migrant wages.
    changes = (rng.random(n) < 0.2) | (raw["household_id"] != raw["household_id"].shift())
    run = np.cumsum(changes)
    raw["annual_income_pc"] = rng.integers(2000, 15000, run.max() + 1).astype(float)[run]
    raw.loc[rng.random(n) < gaps, "annual_income_pc"] = np.nan
    raw["annual_inc_wage"] = raw["annual_income_pc"] * 3
    raw["annual_recorded_month"] = raw["month"].where(changes).ffill().astype("string")
    raw["wage_migrant"] = np.where(rng.random(n) < gaps, np.nan, rng.integers(0, 4000, n))
    return valid(raw[rng.random(n) >= gaps].reset_index(drop=True))


money = st.one_of(st.just(np.nan), st.floats(0, 1e7, allow_nan=False),
                  st.sampled_from([0.0, 1e-9, 123456.789]))


@st.composite
def later_months(draw, past: pd.DataFrame, cut: str) -> pd.DataFrame:
    """Rows after ``cut``: for known households and a new one, with arbitrary values."""
    n_later = draw(st.integers(1, 8))
    households = [*past["household_id"].unique(), "NEW"]
    rows = []
    for _ in range(n_later):
        row = tiny_ledger(1, 1).iloc[0].to_dict()
        members = draw(st.integers(1, 9))
        row.update({
            "household_id": draw(st.sampled_from(households)),
            "month": str(pd.Period(cut, "M") + draw(st.integers(1, 12))),
            "household_type": draw(st.sampled_from(["exited", "monitored", "general"])),
            "members": members,
            "labor_full": draw(st.integers(0, members)),
            "labor_partial": 0,
            "elderly": 0, "children": 0, "students_compulsory": 0, "migrant_workers": 0,
            **{c: draw(money) for c in [*INCOME, "exp_medical_oop", "exp_education"]},
            **{ev: draw(st.booleans()) for ev in EVENTS},
            "dibao": draw(st.booleans()),
            "housing_safe": draw(st.booleans()),
            "annual_income_pc": draw(money),
            "annual_inc_wage": draw(money),
            "annual_recorded_month": str(pd.Period(cut, "M") + draw(st.integers(-30, 12))),
            "wage_migrant": draw(money),
        })
        rows.append(row)
    later = pd.DataFrame(rows).drop_duplicates(KEY)
    return valid(later)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), households=st.integers(1, 4), months=st.integers(1, 20),
       gaps=st.sampled_from([0.0, 0.15, 0.4]), cut_at=st.integers(0, 19), data=st.data())
def test_features_at_t_ignore_everything_after_t(seed, households, months, gaps, cut_at, data):
    ledger = _history(seed, households, months, gaps)
    if ledger.empty:
        return
    month_list = sorted(ledger["month"].unique())
    cut = month_list[min(cut_at, len(month_list) - 1)]
    past = ledger[ledger["month"] <= cut]
    later = data.draw(later_months(past, cut))
    later.index = later.index + 10_000
    extended = pd.concat([past, later]).sort_values(KEY, kind="stable")

    alone = build_features(past, CONFIG)
    with_future = build_features(extended, CONFIG)
    pd.testing.assert_frame_equal(with_future.loc[past.index], alone, check_exact=True)
    pd.testing.assert_frame_equal(build_features(extended, CONFIG, months=[cut]),
                                  build_features(past, CONFIG, months=[cut]), check_exact=True)


# --- the transformer -------------------------------------------------------------------------

ARRAY_CHECKS = (
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_complex_data",
    "check_dtype_object", "check_estimators_empty_data_messages", "check_pipeline_consistency",
    "check_estimator_sparse_tag", "check_estimator_sparse_array",
    "check_estimator_sparse_matrix", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array",
    "check_transformer_general", "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in", "check_fit1d",
    "check_fit2d_predict1d",
)
WHY = ("feeds a numeric array; LedgerFeatures takes a validated ledger, a DataFrame of named "
       "contract columns (the same property is tested on ledgers below where it applies)")


@parametrize_with_checks([LedgerFeatures()], xfail_strict=True,
                         expected_failed_checks=lambda est: dict.fromkeys(ARRAY_CHECKS, WHY))
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_transformer_matches_build_features_and_names_its_output(synthetic):
    est = LedgerFeatures(config=CONFIG)
    assert est.fit(synthetic) is est
    assert est.n_features_in_ == synthetic.shape[1]
    assert list(est.feature_names_in_) == list(synthetic.columns)
    assert list(est.get_feature_names_out()) == FEATURE_NAMES
    out = est.transform(synthetic)
    pd.testing.assert_frame_equal(out, build_features(synthetic, CONFIG), check_exact=True)
    pd.testing.assert_frame_equal(est.fit(synthetic).transform(synthetic), out, check_exact=True)


def test_transformer_output_settings_and_months(synthetic):
    last = synthetic["month"].max()
    est = LedgerFeatures(months=[last]).set_output(transform="pandas")
    out = est.fit_transform(synthetic)
    assert list(out.columns) == FEATURE_NAMES
    assert out.index.equals(synthetic.index[synthetic["month"] == last])
    assert isinstance(LedgerFeatures().set_output(transform="default").fit_transform(synthetic),
                      pd.DataFrame)


def test_transformer_is_unfitted_clonable_and_picklable(synthetic):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LedgerFeatures().transform(synthetic)
    est = LedgerFeatures(config=CONFIG, months=["2023-06"]).fit(synthetic)
    assert clone(est).get_params()["months"] == ["2023-06"]
    again = pickle.loads(pickle.dumps(est))
    pd.testing.assert_frame_equal(again.transform(synthetic), est.transform(synthetic))
    with pytest.raises(TypeError, match="DataFrame"):
        LedgerFeatures().fit(synthetic.to_numpy())


def test_transformer_in_a_pipeline(synthetic):
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(LedgerFeatures(config=CONFIG), StandardScaler()).set_output(
        transform="pandas")
    out = pipe.fit_transform(synthetic)
    assert list(out.columns) == FEATURE_NAMES
    assert list(pipe.get_feature_names_out()) == FEATURE_NAMES
