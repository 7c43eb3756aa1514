"""Explanations as ``shap.Explanation`` objects, for shap's own plots.

The values are the project's exact TreeSHAP of the gbm's log-odds
(:func:`riskmodel.explain.feature_contributions`), per feature, or summed per risk cause through
the config's ``features`` block (:func:`riskmodel.explain.sum_by_cause`). A reviewer can hand
them to ``shap.plots.beeswarm``, ``shap.plots.waterfall`` (one household) and
``shap.plots.bar``::

    import shap
    from riskmodel import shap_by_cause, shap_explanation

    features_view = shap_explanation(model, features)
    causes_view = shap_by_cause(features_view)
    shap.plots.beeswarm(features_view)
    shap.plots.waterfall(causes_view[0])
    shap.plots.bar(causes_view)

Per cause, each feature's value goes whole to its cause: the net-income features, which
:func:`riskmodel.explain.cause_contributions` shares out among the causes for a household's
reasons when given its ledger, stay here with 收入偏低 (``income``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..config import Config, load_config
from ._causes import cause_matrix, feature_contributions, sum_by_cause

if TYPE_CHECKING:  # shap is loaded where an explanation is made, not by the jobs
    import shap


def shap_explanation(model, features: pd.DataFrame, n_jobs: int = 1) -> shap.Explanation:
    """Exact TreeSHAP values of the gbm's log-odds per feature, as a ``shap.Explanation``.

    Parameters
    ----------
    model : RiskModel or HistGradientBoostingClassifier
        A fitted model (its ``gbm_`` is explained) or the trees themselves.
    features : DataFrame
        Model features (:func:`riskmodel.model.build_features`), one row per household.
    n_jobs : int, default=1

    Returns
    -------
    shap.Explanation
        ``values`` (rows × the model's features), ``base_values`` (the training population's
        average log-odds, one per row), ``data`` (the feature values explained) and
        ``feature_names``. Row sums of ``values`` plus ``base_values`` equal the gbm's
        log-odds. Row ``i`` is the ``i``-th row of ``features`` (the index, which may hold
        household ids, is not carried).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"medical_pc_12m": rng.exponential(500, 2000),
    ...                   "income_margin_12m": rng.normal(2000, 1500, 2000)})
    >>> y = (X["medical_pc_12m"] - X["income_margin_12m"] > 0).astype(int)
    >>> gbm = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    >>> view = shap_explanation(gbm, X)
    >>> view.values.shape, view.feature_names
    ((2000, 2), ['medical_pc_12m', 'income_margin_12m'])
    >>> bool(np.allclose(view.values.sum(axis=1) + view.base_values, gbm.decision_function(X)))
    True
    """
    import shap  # for shap's own plots only: not loaded by the jobs (about 1 s)

    values, base = feature_contributions(model, features, n_jobs=n_jobs)
    names = [str(c) for c in values.columns]
    return shap.Explanation(
        values=values.to_numpy(dtype="float64"),
        base_values=np.full(len(values), base, dtype="float64"),
        data=features[values.columns].to_numpy(dtype="float64", na_value=np.nan),
        feature_names=names,
    )


def shap_by_cause(explanation: shap.Explanation, config: Config | None = None) -> shap.Explanation:
    """A per-feature explanation summed per risk cause, as a ``shap.Explanation``.

    Parameters
    ----------
    explanation : shap.Explanation
        :func:`shap_explanation` output: all rows, or one row (``view[i]``).
    config : Config, optional
        Its ``features`` block maps each feature to a cause; the packaged default when ``None``.

    Returns
    -------
    shap.Explanation
        ``values`` with one column per cause code of ``config.causes`` (its ``feature_names``),
        each the sum of its features' values, so a row sums to the same total as the features;
        the same ``base_values``. A cause has no single value of its own, so ``data`` is
        ``None``: the beeswarm's points are grey and the waterfall names causes without values.

    Raises
    ------
    ConfigError
        When the config gives no cause for one of the explanation's features.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"medical_pc_12m": rng.exponential(500, 2000),
    ...                   "income_margin_12m": rng.normal(2000, 1500, 2000)})
    >>> y = (X["medical_pc_12m"] - X["income_margin_12m"] > 0).astype(int)
    >>> gbm = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    >>> causes = shap_by_cause(shap_explanation(gbm, X))
    >>> causes.feature_names[:3], causes.values.shape
    (['illness', 'disability', 'accident'], (2000, 11))
    """
    config = load_config() if config is None else config
    if explanation.feature_names is None:
        raise ValueError("Got an explanation without feature_names; expected the output of "
                         "riskmodel.shap_explanation.")
    values = np.asarray(explanation.values, dtype="float64")
    if values.ndim not in (1, 2):
        raise ValueError(f"Got explanation values of {values.ndim} dimensions; expected one row "
                         "(1) or rows × features (2).")
    table = cause_matrix([str(n) for n in explanation.feature_names], config)
    summed = sum_by_cause(np.atleast_2d(values), table.to_numpy())
    base = explanation.base_values
    import shap

    return shap.Explanation(
        values=summed[0] if values.ndim == 1 else summed,
        base_values=float(base) if np.ndim(base) == 0 else np.array(base, dtype="float64"),
        data=None,
        feature_names=[str(c) for c in table.columns],
    )


__all__ = ["shap_by_cause", "shap_explanation"]
