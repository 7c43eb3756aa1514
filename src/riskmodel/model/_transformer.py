"""The point-in-time ledger features as a scikit-learn transformer (:class:`LedgerFeatures`),
for pipelines; the features themselves are :func:`riskmodel.model.build_features`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..config import Config, load_config
from ._features import FEATURE_NAMES, _require_columns, build_features


class LedgerFeatures(TransformerMixin, BaseEstimator):
    """Point-in-time ledger features as a scikit-learn transformer.

    Stateless: ``fit`` only checks the ledger and records its columns; ``transform`` calls
    :func:`build_features`. It takes a validated ledger — a DataFrame of named contract
    columns — not an arbitrary numeric array.

    Parameters
    ----------
    config : Config, optional
        Run configuration; the packaged default when ``None``.
    months : sequence of str, optional
        ``YYYY-MM`` months to build rows for; all months when ``None``.

    Attributes
    ----------
    config_ : Config
        The configuration used.
    feature_names_in_ : ndarray of str
        Columns of the ledger seen in ``fit``.
    n_features_in_ : int
        Number of those columns.
    feature_names_out_ : ndarray of str
        :data:`FEATURE_NAMES`.

    Examples
    --------
    >>> from riskmodel import validate_ledger
    >>> from riskmodel.synthetic import generate_ledger
    >>> ledger = validate_ledger(generate_ledger(households=20, months=3, seed=1)).valid
    >>> features = LedgerFeatures().fit_transform(ledger)
    >>> features.shape == (len(ledger), len(FEATURE_NAMES))
    True
    """

    def __init__(self, config: Config | None = None, months: Sequence[str] | None = None):
        self.config = config
        self.months = months

    def fit(self, X: pd.DataFrame, y: object = None) -> LedgerFeatures:
        """Check the ledger's columns and record them.

        Parameters
        ----------
        X : DataFrame
            A validated ledger.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        _require_columns(X)
        self.config_ = load_config() if self.config is None else self.config
        if not isinstance(self.config_, Config):
            raise TypeError(
                f"Got config of type {type(self.config_).__name__}, expected riskmodel.Config."
            )
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.feature_names_out_ = np.asarray(FEATURE_NAMES, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Build the features of a validated ledger.

        Parameters
        ----------
        X : DataFrame
            A validated ledger; extra columns are ignored.

        Returns
        -------
        DataFrame
            See :func:`build_features`.
        """
        check_is_fitted(self)
        return build_features(X, self.config_, self.months)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the output columns, :data:`FEATURE_NAMES`."""
        check_is_fitted(self)
        return self.feature_names_out_.copy()
