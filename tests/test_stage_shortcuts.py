"""The shortcuts the scoring stages take on a chunk as a monthly ledger holds it give the values
of the general path.

A chunk in which every household has a row in every month, in order, is its own household ×
month grid: the features read it without laying it out. Validation lets the schema check only
the rows that may break one of its checks. Both must give exactly what the general path gives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_features_grid import _observed

from riskmodel import load_config, validate_ledger
from riskmodel.model import build_features
from riskmodel.synthetic import generate_ledger

CONFIG = load_config()


def test_a_full_grid_gives_the_features_of_a_grid_with_a_gap():
    ledger = validate_ledger(_observed(generate_ledger(households=90, months=30, seed=7),
                                       "string")).valid
    last = ledger["month"].max()
    full = build_features(ledger, CONFIG, months=[last])
    # One household loses an old month: the chunk is no longer a full grid.
    first = ledger["household_id"].iloc[0]
    gap = ledger.drop(index=ledger.index[(ledger["household_id"] == first)
                                         & (ledger["month"] == "2023-01")])
    general = build_features(gap, CONFIG, months=[last])
    others = full.index[ledger.loc[full.index, "household_id"] != first]
    pd.testing.assert_frame_equal(full.loc[others], general.loc[others], check_exact=True)
    # And the month built among all months (every row a target) agrees as well.
    every = build_features(ledger, CONFIG)
    pd.testing.assert_frame_equal(full, every.loc[full.index], check_exact=True)


def test_validation_quarantines_the_same_rows_whatever_rows_break_the_schema():
    raw = generate_ledger(households=40, months=6, seed=2)
    result = validate_ledger(raw)
    assert result.quarantine.empty
    broken = raw.copy()
    broken["household_type"] = broken["household_type"].astype(object)
    broken.loc[3, "members"] = 0
    broken.loc[7, "labor_full"] = 9
    broken.loc[7, "inc_wage"] = -1.0
    broken.loc[11, "disabled_severe"] = 4
    broken.loc[11, "disabled"] = 1
    broken.loc[20, "household_type"] = "other"
    broken.loc[25, "inc_business"] = -50.0  # allowed: a business may lose money
    bad = validate_ledger(broken)
    rows = bad.quarantine.set_index("source_row")
    assert rows.index.tolist() == [3, 7, 11, 20]
    assert rows.loc[3, "rule"] == "members_below_1"
    assert rows.loc[7, "reasons"] == "amount_negative(inc_wage); labor_full_exceeds_members(" \
        "labor_full); labor_exceeds_members(labor_partial)"
    assert rows.loc[11, "rule"] == "disabled_severe_exceeds_disabled"
    assert rows.loc[20, "rule"] == "household_type_unknown"
    assert len(bad.valid) == len(raw) - 4
    assert np.isin(bad.valid.index, range(len(raw))).all()


def test_scores_are_the_same_whether_each_households_rows_are_together_or_apart():
    from threadpoolctl import threadpool_limits

    from riskmodel.model import RiskModel, make_labels
    from riskmodel.scoring import finalize_scores, score_frame

    with threadpool_limits(limits=1):
        train = validate_ledger(generate_ledger(households=300, months=24, seed=11)).valid
        features = build_features(train, CONFIG)
        target = make_labels(train, CONFIG)["target"].to_numpy()
        keep = ~np.isnan(target)
        model = RiskModel.from_config(
            CONFIG, features=list(features.columns), max_iter=20, min_samples_leaf=20,
            validation_months=2, calibration_months=3,
        ).fit(features[keep], target[keep], months=train["month"].to_numpy()[keep])
        valid = validate_ledger(generate_ledger(households=80, months=20, start="2022-01",
                                                seed=7)).valid
        month = "2023-08"
        together = score_frame(valid, model, CONFIG, month, model_version="v1")
        # The same rows with the households interleaved: every shortcut for rows kept together
        # gives way to the general path.
        apart = valid.sample(frac=1.0, random_state=3)
        shuffled = score_frame(apart, model, CONFIG, month, model_version="v1")
    pd.testing.assert_frame_equal(finalize_scores(shuffled.scores), together.scores,
                                  check_exact=True)
    assert together.scores["elimination_candidate"].any() or \
        together.scores["months_above_line"].gt(0).any()
