"""Exact, fast path-dependent TreeSHAP for scikit-learn's histogram gradient boosting.

The values equal ``shap.TreeExplainer(model).shap_values(X)`` (default
``feature_perturbation="tree_path_dependent"``, ``model_output="raw"``): the SHAP values of the
model's raw output (log-odds for a binary classifier), with node covers taken from the trees'
training ``count``, as shap does.

How it is fast
--------------
For one leaf whose root path tests the distinct features ``P`` (``k`` of them), the path-dependent
value function is ``v(S) = value * prod_{j in S} o_j * prod_{j in P - S} z_j``, where ``o_j`` is 1
when the row satisfies every condition of the path on feature ``j`` and ``z_j`` is the product of
the cover ratios of those conditions. So the leaf's share of a row's SHAP values depends on the
row only through the ``k`` bits ``o``: there are at most ``2**k`` different answers, computed once.
Neighbouring leaves of a tree are merged into groups: a row's state for a group is, per feature,
which of the group's threshold intervals it falls in, and the summed share of all the group's
leaves is tabulated once per state. Thresholds of histogram-binned trees come from at most 255
bin edges per feature, so each input value is turned into an interval code once per chunk of
rows; small per-feature look-up tables map codes to the state indices of several groups at once
(packed into the bit fields of one 64-bit word). Explaining a chunk is then a few numpy gathers
and additions per group, with no loop over rows in Python.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from ._leafshares import _leaf_contributions, _leaf_tables

__all__ = ["TreeShapExplainer", "tree_shap"]

# A group's table holds this many states at most; larger tables mean fewer look-ups per row but
# more memory, and tables stop fitting in the CPU cache.
_MAX_GROUP_STATES = 4096
# Leaves testing more distinct features than this get no table (2**k entries would be too many);
# their share is computed per chunk from the distinct bit patterns that the chunk's rows show.
_MAX_TABLE_BITS = 14
# Group state indices are packed as bit fields of one non-negative int64.
_WORD_BITS = 63
_DEFAULT_CHUNK_ROWS = 32768


@dataclass(frozen=True)
class _Leaf:
    value: float
    features: tuple[int, ...]  # distinct features of the root path, first-appearance order
    zero_fractions: np.ndarray  # product of the path's cover ratios per feature, (k,)
    allowed: tuple[np.ndarray, ...]  # per feature: bool over interval codes, True = on the path
    # the leaf's share of each path feature's value for each pattern of path bits, (k, 2**k);
    # None for a path longer than _MAX_TABLE_BITS
    share: np.ndarray | None = None


@dataclass(frozen=True)
class _GroupTable:
    states: dict[int, np.ndarray]  # feature -> interval code -> state * radix
    n_states: int
    out_features: tuple[int, ...]
    tables: tuple[np.ndarray, ...]  # per output feature: summed share per state, float64


@dataclass(frozen=True)
class _Bundle:
    """Groups whose state indices share one packed word."""

    rows: tuple[int, ...]  # code rows read to build the word
    luts: tuple[np.ndarray, ...]  # per row: interval code -> packed contribution (int64)
    # per group: (shift, mask, ((code row of the output feature, table), ...))
    parts: tuple[tuple[int, int, tuple[tuple[int, np.ndarray], ...]], ...]


@dataclass(frozen=True)
class _DeepLeaf:
    rows: tuple[int, ...]  # code row of each path feature
    allowed: tuple[np.ndarray, ...]  # per path feature: interval code -> 1 on the path, else 0
    zero_fractions: np.ndarray
    value: float


def _with_shares(leaves: list[_Leaf]) -> list[_Leaf]:
    """The leaves with their tables of shares, made together for the leaves of each path length."""
    by_length: dict[int, list[int]] = {}
    for n, leaf in enumerate(leaves):
        if len(leaf.features) <= _MAX_TABLE_BITS:
            by_length.setdefault(len(leaf.features), []).append(n)
    out = list(leaves)
    for which in by_length.values():
        tables = _leaf_tables(np.array([leaves[n].zero_fractions for n in which]),
                              np.array([leaves[n].value for n in which]))
        for n, table in zip(which, tables, strict=True):
            out[n] = replace(leaves[n], share=table)
    return out


def _as_float_array(X, feature_names: np.ndarray | None, n_features: int) -> np.ndarray:
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        columns = [str(c) for c in X.columns]
        if feature_names is not None and columns != [str(c) for c in feature_names]:
            missing = sorted(set(map(str, feature_names)) - set(columns))
            extra = sorted(set(columns) - set(map(str, feature_names)))
            if missing or extra:
                raise ValueError(
                    f"X's columns do not match the model's features: missing {missing}, "
                    f"unexpected {extra}"
                )
            X = X[list(feature_names)]
        X = X.to_numpy(dtype=np.float64, na_value=np.nan)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(
            f"X must be 2-D with {n_features} columns, got shape {X.shape}"
        )
    return X


def _check_model(model) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if not isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        raise TypeError(
            "tree_shap explains HistGradientBoostingClassifier (binary) or "
            f"HistGradientBoostingRegressor models, got {type(model).__name__}"
        )
    predictors = getattr(model, "_predictors", None)
    if not predictors:
        raise ValueError("the model is not fitted")
    if len(predictors[0]) != 1:
        raise ValueError(
            f"only binary classification is supported; the model has {len(predictors[0])} "
            "classes (one tree per class and iteration)"
        )
    for iteration in predictors:
        nodes = iteration[0].nodes
        if np.any(nodes["is_categorical"][nodes["is_leaf"] == 0]):
            raise ValueError(
                "the model splits on native categorical features, which tree_shap does not "
                "support; encode categories as numbers before fitting"
            )
        if np.any(nodes["count"] == 0):
            raise ValueError("a tree node has a zero sample count; its cover ratio is undefined")


def _expected_value(nodes: np.ndarray) -> float:
    """Cover-weighted mean leaf value, computed like shap's ``compute_expectations``."""
    values = nodes["value"].astype(np.float64).copy()
    weight = nodes["count"].astype(np.float64)
    preorder: list[int] = []
    stack = [0]
    while stack:
        i = stack.pop()
        preorder.append(i)
        if not nodes["is_leaf"][i]:
            stack += [int(nodes["right"][i]), int(nodes["left"][i])]
    # Reversed pre-order reaches every child before its parent.
    for i in reversed(preorder):
        if not nodes["is_leaf"][i]:
            left, right = int(nodes["left"][i]), int(nodes["right"][i])
            values[i] = (weight[left] * values[left] + weight[right] * values[right]) / (
                weight[left] + weight[right]
            )
    return float(values[0])


class TreeShapExplainer:
    """Exact path-dependent SHAP values of a histogram gradient-boosting model's raw output.

    Builds the look-up tables once; :meth:`shap_values` can then be called on any number of row
    chunks. The object pickles, so it can also be sent to worker processes.

    Parameters
    ----------
    model : HistGradientBoostingClassifier or HistGradientBoostingRegressor
        A fitted binary classifier (or a regressor) on numeric features. Native categorical
        splits and multiclass models are refused with a ``ValueError``.

    Attributes
    ----------
    expected_value : float
        The base value in raw (log-odds) units, equal to ``shap.TreeExplainer``'s
        ``expected_value``.
    n_features : int
        Number of input features.
    feature_names : ndarray of str or None
        The model's ``feature_names_in_`` when it was fitted on a DataFrame.

    Examples
    --------
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=500) > 0).astype(int)
    >>> model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    >>> explainer = TreeShapExplainer(model)
    >>> values = explainer.shap_values(X, n_jobs=2)
    >>> values.shape
    (500, 3)
    >>> raw = values.sum(axis=1) + explainer.expected_value
    >>> bool(np.allclose(raw, model.decision_function(X)))
    True
    """

    def __init__(self, model) -> None:
        _check_model(model)
        self.n_features = int(model.n_features_in_)
        names = getattr(model, "feature_names_in_", None)
        self.feature_names = None if names is None else np.asarray(names)
        trees = [iteration[0].nodes for iteration in model._predictors]

        used = sorted({
            int(f) for nodes in trees for f in nodes["feature_idx"][nodes["is_leaf"] == 0]
        })
        self._code_features = np.array(used, dtype=np.intp)
        self._row_of_feature = {f: r for r, f in enumerate(used)}
        # Interval edges per used feature: every threshold plus +inf, so that finite values and
        # +inf get codes below len(edges) and NaN, which numpy sorts last, gets len(edges).
        thresholds: dict[int, list[np.ndarray]] = {f: [np.array([np.inf])] for f in used}
        for nodes in trees:
            split = nodes["is_leaf"] == 0
            for f in np.unique(nodes["feature_idx"][split]):
                chosen = split & (nodes["feature_idx"] == f)
                thresholds[int(f)].append(nodes["num_threshold"][chosen])
        self._edges = [np.unique(np.concatenate(thresholds[f])) for f in used]

        base = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
        roots = np.array([_expected_value(nodes) for nodes in trees])
        self.expected_value = float(roots.sum() + base[0])

        groups: list[_GroupTable] = []
        deep: list[_DeepLeaf] = []
        for nodes in trees:
            tree_groups, tree_deep = self._group_tables(self._leaves(nodes))
            groups.extend(tree_groups)
            deep.extend(tree_deep)
        self._bundles = _bundle(groups, self._row_of_feature)
        self._deep = deep

    # -- building --------------------------------------------------------------------------

    def _leaves(self, nodes: np.ndarray) -> list[_Leaf]:
        """Leaves of one tree in depth-first order, each with its path summary and, unless its
        path is too long, its table of shares."""
        count = nodes["count"].astype(np.float64).tolist()
        feature = nodes["feature_idx"].tolist()
        is_leaf, left, right = (nodes[c].tolist() for c in ("is_leaf", "left", "right"))
        goes_left = self._goes_left(nodes)
        out: list[_Leaf] = []
        stack: list[tuple[int, tuple[tuple[int, bool], ...]]] = [(0, ())]
        while stack:
            i, path = stack.pop()
            if is_leaf[i]:
                if path:  # a lone root leaf only moves the expected value
                    out.append(self._leaf(feature, count, goes_left, i, path,
                                          float(nodes["value"][i])))
                continue
            stack.append((right[i], (*path, (i, False))))
            stack.append((left[i], (*path, (i, True))))
        return _with_shares(out)

    def _goes_left(self, nodes: np.ndarray) -> dict[int, np.ndarray]:
        """For each split node, which interval codes of its feature go left (NaN's code last),
        made once per node rather than once per leaf below it."""
        out: dict[int, np.ndarray] = {}
        split = np.flatnonzero(nodes["is_leaf"] == 0)
        for f in np.unique(nodes["feature_idx"][split]):
            mine = split[nodes["feature_idx"][split] == f]
            edges = self._edges[self._row_of_feature[int(f)]]
            at = np.searchsorted(edges, nodes["num_threshold"][mine])
            table = np.arange(len(edges) + 1)[None, :] <= at[:, None]
            table[:, len(edges)] = nodes["missing_go_to_left"][mine].astype(bool)
            out.update(zip(mine.tolist(), table, strict=True))
        return out

    def _leaf(self, feature: list[int], count: list[float], goes_left: dict[int, np.ndarray],
              leaf: int, path, value: float) -> _Leaf:
        features: list[int] = []
        zero: dict[int, float] = {}
        allowed: dict[int, np.ndarray] = {}
        children = [node for node, _ in path[1:]] + [leaf]
        for (node, went_left), child in zip(path, children, strict=True):
            f = feature[node]
            on_path = goes_left[node] if went_left else ~goes_left[node]
            # Same order of products as shap, which multiplies the new ratio by the running one.
            ratio = count[child] / count[node]
            if f in zero:
                zero[f] = ratio * zero[f]
                allowed[f] = allowed[f] & on_path
            else:
                features.append(f)
                zero[f] = ratio
                allowed[f] = on_path
        return _Leaf(
            value=value,
            features=tuple(features),
            zero_fractions=np.array([zero[f] for f in features]),
            allowed=tuple(allowed[f] for f in features),
        )

    def _group_tables(
        self, leaves: Sequence[_Leaf]
    ) -> tuple[list[_GroupTable], list[_DeepLeaf]]:
        """Greedily merge consecutive leaves while the group's state count stays small."""
        groups: list[_GroupTable] = []
        deep: list[_DeepLeaf] = []
        current: list[_Leaf] = []
        states: dict[int, tuple[np.ndarray, int]] = {}
        for leaf in leaves:
            if len(leaf.features) > _MAX_TABLE_BITS:
                deep.append(self._deep_leaf(leaf))
                continue
            trial = _refine(states, leaf)
            if current and _n_states(trial) > _MAX_GROUP_STATES:
                groups.append(_table(current, states))
                current, states = [leaf], _refine({}, leaf)
            else:
                current, states = [*current, leaf], trial
        if current:
            groups.append(_table(current, states))
        return groups, deep

    def _deep_leaf(self, leaf: _Leaf) -> _DeepLeaf:
        return _DeepLeaf(
            rows=tuple(self._row_of_feature[f] for f in leaf.features),
            allowed=tuple(allowed.astype(np.int64) for allowed in leaf.allowed),
            zero_fractions=leaf.zero_fractions,
            value=leaf.value,
        )

    # -- explaining ------------------------------------------------------------------------

    def shap_values(
        self, X, *, n_jobs: int = 1, chunk_rows: int = _DEFAULT_CHUNK_ROWS
    ) -> np.ndarray:
        """SHAP values of the raw output for every row of ``X``.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_rows, n_features)
            Numeric inputs; NaN means missing. A DataFrame's columns are matched to the model's
            feature names by name.
        n_jobs : int, default=1
            Number of threads, each explaining its own row chunks; ``-1`` uses every CPU. The
            numpy kernels release the GIL, so threads scale without copying the tables.
        chunk_rows : int, default=32768
            Rows explained together; small enough for the working arrays to stay in cache,
            large enough to amortise numpy's per-call overhead.

        Returns
        -------
        ndarray of shape (n_rows, n_features), float64
            ``values.sum(axis=1) + expected_value`` equals the model's raw prediction.
        """
        X = _as_float_array(X, self.feature_names, self.n_features)
        n_rows = X.shape[0]
        # Features no tree splits on keep 0.
        out = np.zeros((n_rows, self.n_features))
        if n_rows == 0:
            return out
        n_jobs = _effective_jobs(n_jobs)
        # Every job gets work even when the rows are fewer than n_jobs full chunks.
        chunk_rows = max(1, min(int(chunk_rows), -(-n_rows // n_jobs)))
        starts = range(0, n_rows, chunk_rows)
        n_jobs = min(n_jobs, len(starts))

        def work(start: int) -> None:
            stop = min(start + chunk_rows, n_rows)
            out[start:stop, self._code_features] = self._explain_chunk(X[start:stop]).T

        if n_jobs == 1:
            for start in starts:
                work(start)
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                for future in [pool.submit(work, start) for start in starts]:
                    future.result()
        return out

    def _explain_chunk(self, X: np.ndarray) -> np.ndarray:
        """SHAP values of one chunk for the features the trees split on, transposed: one row
        per code row (n_code_features, n_rows)."""
        n = X.shape[0]
        columns = np.ascontiguousarray(X[:, self._code_features].T)
        codes = np.empty(columns.shape, dtype=np.intp)
        for r, edges in enumerate(self._edges):
            codes[r] = np.searchsorted(edges, columns[r])
        # Only the features the trees split on get values: rows of the others would make the
        # array the loop below reads and writes row by row larger than the CPU cache.
        phi = np.zeros((len(self._edges), n))
        # Row views made once: the loop below runs thousands of times per chunk.
        code_rows, phi_rows = list(codes), list(phi)
        word = np.zeros(n, dtype=np.int64)
        part = np.empty(n, dtype=np.int64)
        index = np.empty(n, dtype=np.intp)
        gathered = np.empty(n)
        # Every index is in range: "wrap" then reads as "clip" would, and numpy checks it faster.
        take, add, right_shift, bitwise_and = np.take, np.add, np.right_shift, np.bitwise_and
        for bundle in self._bundles:
            rows, luts = bundle.rows, bundle.luts
            if rows:
                take(luts[0], code_rows[rows[0]], None, word, "wrap")
                for r, lut in zip(rows[1:], luts[1:], strict=True):
                    take(lut, code_rows[r], None, part, "wrap")
                    add(word, part, word)
            else:
                word.fill(0)
            for shift, mask, pairs in bundle.parts:
                if shift:
                    right_shift(word, shift, index)
                    bitwise_and(index, mask, index)
                else:
                    bitwise_and(word, mask, index)
                for f, table in pairs:
                    take(table, index, None, gathered, "wrap")
                    row = phi_rows[f]
                    add(row, gathered, row)
        for leaf in self._deep:
            _add_deep_leaf(leaf, codes, phi)
        return phi


def _effective_jobs(n_jobs: int | None) -> int:
    if not n_jobs:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return int(n_jobs)


def _refine(
    states: dict[int, tuple[np.ndarray, int]], leaf: _Leaf
) -> dict[int, tuple[np.ndarray, int]]:
    """Split each feature's interval states so that the leaf's path bit is constant on each."""
    out = dict(states)
    for f, allowed in zip(leaf.features, leaf.allowed, strict=True):
        previous = out.get(f)
        if previous is None:
            key, bound = allowed.astype(np.intp), 2
        else:
            key, bound = previous[0] * 2 + allowed, previous[1] * 2
        # Keys run below twice the states so far: no need to look for the largest.
        present = np.zeros(bound, dtype=bool)
        present[key] = True
        relabel = present.cumsum() - 1
        out[f] = (relabel[key], int(relabel[-1]) + 1)
    return out


def _n_states(states: dict[int, tuple[np.ndarray, int]]) -> int:
    return math.prod(size for _, size in states.values())


def _table(leaves: Sequence[_Leaf], states: dict[int, tuple[np.ndarray, int]]) -> _GroupTable:
    """Sum the shares of a group's leaves for every combination of the group's feature states."""
    features = sorted(states)
    n_states = _n_states(states)
    entry = np.arange(n_states)
    radix: dict[int, int] = {}
    entry_state: dict[int, np.ndarray] = {}
    representative: dict[int, np.ndarray] = {}
    step = 1
    for f in features:
        labels, size = states[f]
        radix[f] = step
        entry_state[f] = (entry // step) % size
        # Any code of a state stands for it: all its codes give every leaf the same bit, so
        # whichever code the assignment leaves in a state's slot will do.
        representative[f] = np.empty(size, dtype=np.intp)
        representative[f][labels] = np.arange(len(labels))
        step *= size

    tables = {f: np.zeros(n_states) for f in features}
    for leaf in leaves:
        pattern = np.zeros(n_states, dtype=np.intp)
        for j, (f, allowed) in enumerate(zip(leaf.features, leaf.allowed, strict=True)):
            bit = allowed[representative[f]].astype(np.intp)
            pattern |= bit[entry_state[f]] << j
        for j, f in enumerate(leaf.features):
            tables[f] += leaf.share[j].take(pattern)
    return _GroupTable(
        states={f: states[f][0] * radix[f] for f in features if states[f][1] > 1},
        n_states=n_states,
        out_features=tuple(features),
        tables=tuple(tables[f] for f in features),
    )


def _bundle(groups: Sequence[_GroupTable], row_of_feature: dict[int, int]) -> list[_Bundle]:
    """Pack consecutive groups' state indices into the bit fields of one int64 word each."""
    bundles: list[_Bundle] = []
    current: list[tuple[int, _GroupTable]] = []
    used_bits = 0
    for group in [*groups, None]:
        bits = 0 if group is None else (group.n_states - 1).bit_length()
        if current and (group is None or used_bits + bits > _WORD_BITS):
            luts: dict[int, np.ndarray] = {}
            parts = []
            for shift, member in current:
                for f, contribution in member.states.items():
                    lut = luts.setdefault(row_of_feature[f], np.zeros(len(contribution), np.int64))
                    lut += contribution.astype(np.int64) << shift
                mask = (1 << (member.n_states - 1).bit_length()) - 1
                pairs = tuple((row_of_feature[f], table) for f, table
                              in zip(member.out_features, member.tables, strict=True))
                parts.append((shift, mask, pairs))
            bundles.append(
                _Bundle(rows=tuple(luts), luts=tuple(luts.values()), parts=tuple(parts))
            )
            current, used_bits = [], 0
        if group is not None:
            current.append((used_bits, group))
            used_bits += bits
    return bundles


def _add_deep_leaf(leaf: _DeepLeaf, codes: np.ndarray, phi: np.ndarray) -> None:
    """Add a long-path leaf's share, computed once per distinct bit pattern in the chunk."""
    n = codes.shape[1]
    k = len(leaf.rows)
    if k <= _WORD_BITS:
        key = np.zeros(n, dtype=np.int64)
        for j, (r, allowed) in enumerate(zip(leaf.rows, leaf.allowed, strict=True)):
            key += allowed[codes[r]] << j
        patterns, inverse = np.unique(key, return_inverse=True)
        ones = ((patterns[:, None] >> np.arange(k)) & 1).astype(np.float64)
    else:
        bits = np.empty((n, k), dtype=np.uint8)
        for j, (r, allowed) in enumerate(zip(leaf.rows, leaf.allowed, strict=True)):
            bits[:, j] = allowed[codes[r]]
        patterns, inverse = np.unique(bits, axis=0, return_inverse=True)
        ones = patterns.astype(np.float64)
    share = _leaf_contributions(ones, leaf.zero_fractions, leaf.value)
    inverse = inverse.ravel()
    for j, r in enumerate(leaf.rows):
        phi[r] += share[inverse, j]


def tree_shap(
    model, X, *, n_jobs: int = 1, chunk_rows: int = _DEFAULT_CHUNK_ROWS
) -> tuple[np.ndarray, float]:
    """Exact path-dependent SHAP values of a histogram gradient-boosting model's raw output.

    Equal to ``shap.TreeExplainer(model).shap_values(X)`` and its ``expected_value``.

    Parameters
    ----------
    model : HistGradientBoostingClassifier or HistGradientBoostingRegressor
        Fitted binary classifier (or regressor) on numeric features.
    X : array-like or pandas.DataFrame of shape (n_rows, n_features)
        Rows to explain; NaN means missing.
    n_jobs : int, default=1
        Worker threads over row chunks; ``-1`` uses every CPU.
    chunk_rows : int, default=32768
        Rows explained together.

    Returns
    -------
    values : ndarray of shape (n_rows, n_features), float64
        SHAP values in raw (log-odds) units.
    expected_value : float
        The base value: ``values.sum(axis=1) + expected_value`` is the raw prediction.

    Raises
    ------
    TypeError
        If the model is not a histogram gradient-boosting model.
    ValueError
        If the model is multiclass, unfitted or uses native categorical splits, or X has the
        wrong shape or columns.
    """
    explainer = TreeShapExplainer(model)
    return explainer.shap_values(X, n_jobs=n_jobs, chunk_rows=chunk_rows), explainer.expected_value
