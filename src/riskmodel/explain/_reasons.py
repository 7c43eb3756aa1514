"""From cause contributions to what a cadre reads: reason codes, the national risk-cause list,
reason text built from the household's own figures, and the measures that fit.

Everything here is vectorised over households: causes are ranked with one ``argsort``, text is
rendered per cause over the households that cause names (string columns, never a Python loop
over households), and measure lists are built once per distinct combination of causes.
"""

from __future__ import annotations

import re
import string

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import FACTS, SHARE_FACTS, Config, EvidenceRule
from ._facts import MISSING, printed_figures

_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def rule_holds(rule: EvidenceRule, figures: dict[str, np.ndarray]) -> np.ndarray:
    """Where one evidence rule holds on the figures (False where a figure is unknown)."""
    right = rule.value if rule.other is None else rule.factor * figures[rule.other]
    with np.errstate(invalid="ignore"):
        return _COMPARE[rule.op](figures[rule.figure], right)


def required_rules(config: Config) -> dict[str, list[EvidenceRule]]:
    """Rules a cause must meet besides its evidence: 缺劳动力 with laborers at most
    ``reasons.labor_shortage_max_labor_share`` of the members."""
    share = config.reasons.labor_shortage_max_labor_share
    return {"labor_shortage": [EvidenceRule("laborers", "<=", share, "members", 0.0)]}


def valid_causes(facts: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Which causes the national consistency rules allow for each household.

    A cause with ``evidence`` rules in the config's cause table needs one of them to hold on
    the household's own figures of its months up to the one explained, as the reason text prints
    them (:func:`printed_figures`): 因务工就业不稳 a fall in wages, a job loss or a migrant
    worker come home; 收入偏低 an income under a multiple of the line; 因学 a student beyond
    compulsory school or education costs above a share of income … (see ``docs/explanations.md``).
    缺劳动力 is invalid besides when more than ``reasons.labor_shortage_max_labor_share`` of the
    members are laborers. A cause without rules is always allowed.

    Parameters
    ----------
    facts : DataFrame
        From :func:`household_facts`.
    config : Config

    Returns
    -------
    DataFrame
        Boolean, indexed like ``facts``, one column per cause code of ``config.causes``.
    """
    codes = [c.code for c in config.causes]
    allowed = pd.DataFrame(True, index=facts.index, columns=codes)
    figures = printed_figures(facts)
    for cause in config.causes:
        if cause.evidence:
            held = np.zeros(len(facts), dtype=bool)
            for rule in cause.evidence_rules:
                held |= rule_holds(rule, figures)
            allowed[cause.code] = held
    for code, rules in required_rules(config).items():
        if code in allowed:
            for rule in rules:
                allowed[code] &= rule_holds(rule, figures)
    return allowed


def pass_to_evidence(contributions: pd.DataFrame, allowed: pd.DataFrame) -> pd.DataFrame:
    """Cause contributions with the risk-raising weight of each cause the ledger gives no
    evidence for moved to the household's strongest cause with evidence.

    The strongest cause with evidence is the one with the largest contribution among the
    causes ``allowed`` (the first in column order on a tie), whatever its sign; it takes the
    positive contributions of every cause not allowed, which keep their negative ones. A
    household with no cause allowed keeps its contributions. Row sums do not change, so the
    contributions still add up to the log-odds.

    Parameters
    ----------
    contributions : DataFrame
        Per-cause contributions (:func:`riskmodel.explain.cause_contributions`).
    allowed : DataFrame
        :func:`valid_causes`, with the same index and at least the same columns.

    Returns
    -------
    DataFrame
        Like ``contributions``.

    Examples
    --------
    >>> c = pd.DataFrame({"employment": [0.8], "income": [-0.1], "illness": [0.3]})
    >>> ok = pd.DataFrame({"employment": [False], "income": [True], "illness": [True]})
    >>> pass_to_evidence(c, ok).round(2).to_dict("records")
    [{'employment': 0.0, 'income': -0.1, 'illness': 1.1}]
    """
    values = contributions.to_numpy(dtype="float64", copy=True)
    ok = allowed[contributions.columns].to_numpy(dtype=bool)
    receives = ok.any(axis=1)
    given = np.where(~ok & (values > 0) & receives[:, None], values, 0.0)
    strongest = np.argmax(np.where(ok, values, -np.inf), axis=1)
    values -= given
    values[np.arange(len(values)), strongest] += row_sums(given)
    return pd.DataFrame(values, index=contributions.index, columns=contributions.columns)


def row_sums(values: np.ndarray) -> np.ndarray:
    """Each row's sum, its columns added left to right: the same bits whichever rows are
    summed with it, so that a household's weights do not depend on the chunk it was explained
    in. (numpy's row sum of a column-major array, as a frame's values are, adds column by
    column over many rows but pairwise within a single row.)"""
    total = np.zeros(len(values))
    for column in np.asarray(values, dtype="float64").T:
        total += column
    return total


def rank_causes(
    contributions: pd.DataFrame, allowed: pd.DataFrame, config: Config
) -> tuple[np.ndarray, np.ndarray]:
    """Risk-raising causes of each household, strongest first.

    Returns ``(codes, weights)``, both of shape (n, ``reasons.max_causes``): cause codes as an
    object array (None past the last cause) and their log-odds contributions (NaN there). A
    cause counts when the rules allow it and it raises the log-odds by at least
    ``reasons.min_weight``.
    """
    codes = np.asarray(contributions.columns, dtype=object)
    values = contributions.to_numpy(dtype="float64")
    ok = allowed[contributions.columns].to_numpy(dtype=bool) & (
        values >= max(config.reasons.min_weight, np.finfo(float).tiny)
    )
    score = np.where(ok, values, -np.inf)
    k = min(config.reasons.max_causes, len(codes))
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(score, order, axis=1)
    present = np.isfinite(top)
    return np.where(present, codes[order], None), np.where(present, top, np.nan)


def format_yuan(values: np.ndarray) -> np.ndarray:
    """Whole yuan with thousands separators (``18,400``); ``—`` where unknown.

    Examples
    --------
    >>> format_yuan(np.array([18400, -1234.6, np.nan])).tolist()
    ['18,400', '-1,235', '—']
    """
    v = np.rint(np.asarray(values, dtype="float64")) + 0.0
    known = np.isfinite(v)
    # Amounts repeat across households: format each distinct amount once, then look it up.
    distinct, position = np.unique(np.where(known, v, 0.0), return_inverse=True)
    text = np.array([f"{amount:,.0f}" for amount in distinct], dtype=object)[position]
    text[~known] = MISSING
    return text


def _figure(facts: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """One fact of some households, formatted for text."""
    if name not in facts:
        raise ValueError(f"Reason template names {{{name}}}, expected one of {', '.join(FACTS)}.")
    col = facts[name].iloc[rows]
    if name.endswith("_month"):
        return col.astype("string").fillna(MISSING).to_numpy(dtype=object)
    values = col.to_numpy(dtype="float64")
    if name.endswith("_year"):
        known = np.isfinite(values)
        years = np.where(known, values, 0).astype("int64").astype(str).astype(object)
        years[~known] = MISSING
        return years
    return format_yuan(values * 100 if name in SHARE_FACTS else values)


def render(template: str, facts: pd.DataFrame, rows: np.ndarray,
           figures: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Fill the ``{name}`` fields of one template with the facts of the given rows.

    ``figures`` caches formatted facts of these rows between templates.
    """
    figures = {} if figures is None else figures
    text = np.full(len(rows), "", dtype=object)
    for literal, field, _, _ in string.Formatter().parse(template):
        text = text + literal
        if field is not None:
            if field not in figures:
                figures[field] = _figure(facts, field, rows)
            text = text + figures[field]
    return text


def reason_texts(codes: np.ndarray, facts: pd.DataFrame, config: Config) -> dict[str, pd.Series]:
    """Reason text of each household in Chinese and English: the first ``reasons.text_causes``
    causes, joined.

    Parameters
    ----------
    codes : ndarray of object, shape (n, k)
        Cause codes per household, strongest first (None past the last).
    facts : DataFrame
        From :func:`household_facts`, aligned with ``codes``.
    config : Config

    Returns
    -------
    dict
        ``{"zh": Series, "en": Series}`` of strings, indexed like ``facts``.
    """
    names = {"zh": {c.code: c.name_zh for c in config.causes},
             "en": {c.code: c.name_en for c in config.causes}}
    sep = {"zh": "；", "en": "; "}
    n = len(facts)
    # The text is joined in Arrow: each template's literals and figures are concatenated
    # column-wise, without a Python string operation per household.
    text: dict[str, pa.Array | None] = {lang: None for lang in names}
    figures: dict[str, pa.Array] = {}
    # Where the line in force within the horizon is above the month's, a cause's ``*_ahead``
    # text (where it has one) quotes it.
    ahead = (facts["line_ahead"] > facts["line"]).to_numpy(dtype=bool)
    for j in range(min(config.reasons.text_causes, codes.shape[1])):
        slot = codes[:, j]
        named = pd.notna(slot)
        parts: dict[str, list[pa.Array]] = {lang: [] for lang in names}
        order = []
        for code in pd.unique(slot[named]):
            rows = np.flatnonzero(slot == code)
            order.append(rows)
            spec = config.reasons.text.get(code)
            for lang in names:
                template = getattr(spec, lang) if spec is not None else names[lang][code]
                part = _render_arrow(template, facts, rows, figures)
                alternative = getattr(spec, f"{lang}_ahead") if spec is not None else None
                if alternative is not None and ahead[rows].any():
                    part = pc.if_else(pa.array(ahead[rows]),
                                      _render_arrow(alternative, facts, rows, figures), part)
                parts[lang].append(part)
        if not order:
            continue
        # Each household's part of this slot, null where the slot names no cause.
        position = np.full(n, -1, dtype=np.int64)
        position[np.concatenate(order)] = np.arange(sum(len(rows) for rows in order))
        where = pa.array(position, mask=position < 0)
        for lang in names:
            part = pa.concat_arrays(parts[lang]).take(where)
            if text[lang] is None:
                text[lang] = part
            else:
                joined = pc.binary_join_element_wise(text[lang], part, _LARGE(sep[lang]))
                text[lang] = pc.if_else(pc.is_valid(part), joined, text[lang])
    none = {"zh": "无明显致贫返贫风险因素", "en": "no cause raises the risk"}
    out = {}
    for lang, joined in text.items():
        joined = (pa.nulls(n, pa.large_string()) if joined is None else joined)
        joined = pc.fill_null(joined, _LARGE(none[lang]))
        out[lang] = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([joined])),
                              index=facts.index, copy=False)
    return out


def _LARGE(text: str) -> pa.Scalar:
    """A text as the Arrow scalar the reason text is joined with."""
    return pa.scalar(text, pa.large_string())


def _figure_arrow(facts: pd.DataFrame, name: str) -> pa.Array:
    """One fact of every household formatted for text (as :func:`_figure`), in Arrow."""
    if name not in facts:
        raise ValueError(f"Reason template names {{{name}}}, expected one of {', '.join(FACTS)}.")
    col = facts[name]
    if name.endswith("_month"):
        filled = col.astype("string").fillna(MISSING)
        return pa.array(np.asarray(filled.to_numpy(dtype=object)), pa.large_string()) \
            if not hasattr(filled.array, "__arrow_array__") else \
            pa.chunked_array(pa.array(filled.array)).cast(pa.large_string()).combine_chunks()
    values = col.to_numpy(dtype="float64")
    if name.endswith("_year"):
        known = np.isfinite(values)
        position, distinct = pd.factorize(np.where(known, values, 0))
        words = [str(year) for year in distinct.astype("int64").tolist()]
    else:
        v = np.rint(values * 100 if name in SHARE_FACTS else values) + 0.0
        known = np.isfinite(v)
        # Amounts repeat across households: format each distinct amount once (format_yuan).
        position, distinct = pd.factorize(np.where(known, v, 0.0))
        words = [f"{amount:,.0f}" for amount in distinct.tolist()]
    position = np.where(known, position, len(words))
    return pa.array([*words, MISSING], pa.large_string()).take(position)


def _render_arrow(template: str, facts: pd.DataFrame, rows: np.ndarray,
                  figures: dict[str, pa.Array]) -> pa.Array:
    """:func:`render` in Arrow: the template filled with the facts of the given rows.

    ``figures`` caches each fact of every household, formatted, between templates.
    """
    parts: list[pa.Array | pa.Scalar] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(_LARGE(literal))
        if field is not None:
            if field not in figures:
                figures[field] = _figure_arrow(facts, field)
            parts.append(figures[field].take(rows))
    if not any(isinstance(part, pa.Array) for part in parts):
        return pa.array(["".join(p.as_py() for p in parts)], pa.large_string()).take(
            np.zeros(len(rows), dtype=np.int64))
    return pc.binary_join_element_wise(*parts, _LARGE(""))


_FIGURE = {"month": r"\d{4}-\d{2}|—", "year": r"\d{4}|—", "number": r"-?\d[\d,]*|—"}


def _template_pattern(template: str, slot: int | str) -> tuple[str, list[str]]:
    """A regular expression that reads one template's text back: its fields as named groups
    (``s<slot>_<k>``), in order, and the names of those fields."""
    pattern, fields = "", []
    for literal, field_name, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if field_name is not None:
            kind = next((k for k in ("month", "year") if field_name.endswith(f"_{k}")),
                        "number")
            pattern += f"(?P<s{slot}_{len(fields)}>{_FIGURE[kind]})"
            fields.append(field_name)
    return pattern, fields


def text_contradictions(explained: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Which reasons of each household's Chinese text state something the figures that text
    quotes contradict.

    The text (``reason_text_zh``) is read back with the config's templates, and each reason
    spelt out in it (the first ``reasons.text_causes`` of ``reason_1`` …) is judged on the
    figures it quotes, as printed, by its cause's rules (``causes[].evidence`` and
    :func:`required_rules`): it is contradicted when its text quotes the figures of at least
    one evidence rule and none of those rules holds on them ("因务工就业不稳" beside wages that
    did not fall), or a rule it must meet fails on them (缺劳动力 with half the members
    laborers). Rules whose figures the text does not quote are not judged: the text says
    nothing about them.

    Parameters
    ----------
    explained : DataFrame
        Output of :func:`riskmodel.explain.explain_households` (or the scoring job's rows):
        ``reason_1`` … and ``reason_text_zh``; rows without a text (not scored) are skipped.
    config : Config
        The templates the text was written with, and the rules.

    Returns
    -------
    DataFrame
        Indexed like ``explained``, one nullable boolean column per reason spelt out in the
        text (``reason_1`` …): True where contradicted, NA where the slot names no cause.

    Raises
    ------
    ValueError
        A text does not read back with the templates of its causes.
    """
    k = config.reasons.text_causes
    slots = [f"reason_{j + 1}" for j in range(k)]
    codes = explained[slots].astype("string").fillna("").to_numpy(dtype=object)
    text = explained["reason_text_zh"].astype("string")
    out = pd.DataFrame(pd.NA, index=explained.index, columns=slots, dtype="boolean")
    names = {c.code: c.name_zh for c in config.causes}
    evidence = {c.code: c.evidence_rules for c in config.causes}
    required = required_rules(config)
    keep = (codes[:, 0] != "") & text.notna().to_numpy()
    combos, position = np.unique(codes[keep].astype(str), axis=0, return_inverse=True)
    rows_kept = np.flatnonzero(keep)
    for c, combo in enumerate(combos):
        rows = rows_kept[position.ravel() == c]
        # Each cause's templates (its ``zh`` and, where it has one, ``zh_ahead``), each read
        # back as a named group of its own so the rows each one reads are known.
        parts, fields = [], []
        for j, code in enumerate(combo):
            if code:
                spec = config.reasons.text.get(code)
                templates = [names[code]] if spec is None else [
                    t for t in (spec.zh, spec.zh_ahead) if t is not None]
                alternatives, quoted = [], []
                for v, template in enumerate(templates):
                    one, read_back = _template_pattern(template, f"{j}v{v}")
                    alternatives.append(f"(?P<s{j}v{v}>{one})")
                    quoted.append(read_back)
                parts.append("(?:" + "|".join(alternatives) + ")")
                fields.append(quoted)
        pattern = "；".join(parts)
        unread = ~text.iloc[rows].str.fullmatch(pattern).to_numpy(dtype=bool)
        if unread.any():
            raise ValueError(f"Got reason text {text.iloc[rows[unread.argmax()]]!r}, which "
                             f"does not read back with the templates of "
                             f"{', '.join(c for c in combo if c)}.")
        read = text.iloc[rows].str.extract(f"^(?:{pattern})$")
        for j, variants in enumerate(fields):
            wrong = np.zeros(len(rows), dtype=bool)
            for v, quoted in enumerate(variants):
                used = read[f"s{j}v{v}"].notna().to_numpy(dtype=bool)
                figures = {}
                for i, name in enumerate(quoted):
                    # "—" (unknown) reads as NaN.
                    value = pd.to_numeric(
                        read[f"s{j}v{v}_{i}"].str.replace(",", "", regex=False),
                        errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
                    figures[name] = value / 100 if name in SHARE_FACTS else value
                judged = [r for r in evidence.get(combo[j], []) if set(r.figures) <= set(figures)]
                must = [r for r in required.get(combo[j], []) if set(r.figures) <= set(figures)]
                bad = np.zeros(len(rows), dtype=bool)
                if judged:
                    bad = ~np.logical_or.reduce([rule_holds(r, figures) for r in judged])
                for rule in must:
                    bad |= ~rule_holds(rule, figures)
                wrong |= used & bad
            out.iloc[rows, j] = wrong
    return out


def contradiction_share(explained: pd.DataFrame, config: Config) -> tuple[int, int]:
    """``(contradicted, named)``: reasons spelt out in the texts that
    :func:`text_contradictions` finds contradicted, and all reasons spelt out."""
    table = text_contradictions(explained, config)
    return int(table.sum().sum()), int(table.notna().sum().sum())


def suggested_measures(codes: np.ndarray, has_labor: np.ndarray, config: Config) -> pd.Series:
    """Measures of the first ``reasons.text_causes`` causes, without repeats, joined by 、.

    Households without a laborer get each cause's ``measures_no_labor_zh`` (兜底保障) instead
    of its development measures.
    """
    k = min(config.reasons.text_causes, codes.shape[1])
    order = [None, *(c.code for c in config.causes)]
    # A slot's position in ``order``: 0 where empty. (Looking None up in an index holding it
    # finds nothing when the whole slot is empty, as one household's third slot often is.)
    causes = pd.Index(order[1:])
    slots = [causes.get_indexer(pd.Index(codes[:, j], dtype=object)) + 1 for j in range(k)]
    key = np.asarray(has_labor, dtype="int64")
    for slot in slots:
        key = key * len(order) + slot
    combo, uniques = pd.factorize(key)
    table = []
    for code in uniques:
        labor, measures = bool(code // len(order) ** k), []
        for j in range(k - 1, -1, -1):
            cause = order[(code // len(order) ** j) % len(order)]
            if cause is not None:
                spec = config.cause_by_code[cause]
                measures += spec.measures_zh if labor else spec.measures_no_labor_zh
        table.append("、".join(dict.fromkeys(measures)))
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(
        [pa.array(table, pa.large_string()).take(combo)])))
