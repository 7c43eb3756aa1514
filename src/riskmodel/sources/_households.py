"""Persons to households: the person tables of every download month become the ledger.

One row per household (户编号, kept as text) and download month. Persons are grouped by integer
codes (the household's and the month's), so counts are ``numpy.bincount`` and a household's
fields are read from its first row; no Python loop runs over persons or households. A
household-month whose member rows disagree on a household-level field, or any of whose persons
cannot be read, is quarantined whole: persons in = persons aggregated + persons quarantined.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import DEPARTMENT_CODES, Config, SourcesConfig
from ..errors import SourceError
from ..ledger import EVENTS, LEDGER_COLUMNS
from ..months import month_label
from . import _values as values
from ._feeds import Groups, encode, read_migrants, read_warnings, stack
from ._read import SourceTable

RECORDED_RISKS = [f"recorded_risk_{i}" for i in range(1, 6)]
ANNUAL = ["annual_inc_wage", "annual_inc_business", "annual_inc_property", "annual_inc_transfer",
          "annual_exp_medical_oop", "annual_income_pc", "annual_income_total"]
#: Fields every member row of a household repeats; rows that disagree quarantine the household.
HOUSEHOLD_FIELDS = ["province", "county", "township", "village", "household_type",
                    "monitoring_category", "identified_month", "risk_eliminated",
                    "eliminated_month", *RECORDED_RISKS, "housing_unsafe", "water_safe",
                    *ANNUAL, "annual_income_year"]
#: The matched warnings of a household-month per department (``sources.departments``).
WARNING_COUNTS = [f"warnings_{code}" for code in DEPARTMENT_CODES]
#: Columns the ledger carries beside the contract's, in this order (docs/ledger.md).
RECORDED_COLUMNS = ["wage_migrant", *ANNUAL, "annual_income_year", "annual_recorded_month",
                    "identified_month", "eliminated_month", "monitoring_category",
                    *RECORDED_RISKS, *WARNING_COUNTS, "warning_amount"]
#: Columns of the person quarantine.
QUARANTINE_COLUMNS = ["file", "sheet", "row", "month", "household_id", "field", "rule", "value"]
#: The value written in the quarantine in place of a personal field's.
MASK = "***"
PLACES = ["county", "township", "village"]
# Threads of the readings run side by side: each holds a column's temporaries (hundreds of MB
# for millions of persons), so a machine of many cores does not run one per core.
_THREADS = min(4, os.cpu_count() or 1)
ELDERLY_AGE, CHILD_AGE = 60, 16


@dataclass
class Households:
    """What the person tables made: the ledger, the person quarantine, the report's parts."""

    ledger: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict = field(default_factory=dict)


def _sources(config: Config | SourcesConfig) -> SourcesConfig:
    return config.sources if isinstance(config, Config) else config


def _parser(field_name: str, sources: SourcesConfig):
    """The reader of one household-level field: distinct texts -> values (NA unreadable)."""
    vocab = sources.values.get("recorded_risk" if field_name in RECORDED_RISKS else field_name)
    if field_name in values.MONEY:
        return lambda s, u: values.money(field_name, s, u)
    if field_name in values.MONTHS:
        return lambda s, u: values.months(field_name, s, u)
    if field_name == "annual_income_year":
        return lambda s, u: values.years(field_name, s, u)
    if field_name in values.FLAGS:
        return lambda s, u: values.flags(field_name, s, vocab or {}, u)
    if vocab is not None:
        return lambda s, u: values.vocabulary(field_name, s, vocab, u)
    return lambda s, u: s.astype("string")


#: Fields of the person table the aggregation reads (personal ones only to derive and join).
PERSON_FIELDS = ["household_id", "person_id", "birth_date", "id_birth", "labor_skill",
                 "schooling", "disability_grade", "health", "dropout", "working", "dibao", "tekun",
                 "welfare_job", *HOUSEHOLD_FIELDS]


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose every field is empty (a blank row has no household id: only those are
    looked at)."""
    cells = [c for c in frame.columns if not c.startswith("_")]
    blank = np.zeros(len(frame), dtype=bool)
    if "household_id" in frame:
        blank = (frame["household_id"].fillna("") == "").to_numpy(dtype=bool)
    for c in cells:
        at = np.flatnonzero(blank)
        if not len(at):
            break
        blank[at] = (frame[c].iloc[at].fillna("") == "").to_numpy(dtype=bool)
    return blank


def _concat_persons(tables: list[SourceTable], positions: list[int]) -> tuple[pd.DataFrame, int]:
    """Every person row with the fields the aggregation reads, ``_t`` (the table's position),
    ``_row`` and ``_m`` (the month number); blank rows (every field empty) dropped, counted."""
    frames, blank_rows = [], 0
    for pos in positions:
        table = tables[pos]
        blank = _blank_rows(table.frame)
        blank_rows += int(blank.sum())
        used = [c for c in PERSON_FIELDS if c in table.frame] + ["_row"]
        frame = table.frame.loc[~blank, used] if blank.any() else table.frame[used]
        frame = frame.assign(_t=np.int32(pos),
                             _m=np.int64(int(table.month[:4]) * 12 + int(table.month[5:7]) - 1))
        frames.append(frame)
    persons = pd.concat(frames, ignore_index=True)
    for c in persons.columns:
        if not c.startswith("_") and persons[c].hasnans:
            persons[c] = persons[c].fillna("")
    return persons, blank_rows


@dataclass
class _Field:
    """A household-level field read once: codes per row, distinct texts, their values."""

    codes: np.ndarray
    texts: np.ndarray
    parsed: pd.Series  # one value per distinct text
    keys: np.ndarray  # comparison key per distinct text (equal values, equal key)


class _Parallel:
    """Independent readings run by a pool of every core's thread (Arrow's hashing and parsing
    of texts release the GIL). ``run(fn, *args)`` calls ``fn(seen, *args)`` with an
    :class:`~riskmodel.sources._values.Unknown` of its own; on leaving the ``with`` block every
    reading is done and what each could not read is added to ``unknown`` in the order they
    were handed over (the report does not depend on which finished first)."""

    def __init__(self, unknown: values.Unknown):
        self.unknown = unknown
        self.jobs: list[tuple[Future, values.Unknown]] = []
        self.pool = ThreadPoolExecutor(max_workers=_THREADS)

    def __call__(self, fn, *args) -> Future:
        seen = values.Unknown(self.unknown.personal)
        future = self.pool.submit(fn, seen, *args)
        self.jobs.append((future, seen))
        return future

    def __enter__(self) -> _Parallel:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.pool.shutdown(wait=True)
        if kind is not None:
            return
        for future, seen in self.jobs:
            future.result()
            for name, counts in seen.counts.items():
                self.unknown.counts[name].update(counts)


def _read_field(unknown: values.Unknown, name: str, series: pd.Series,
                sources: SourcesConfig) -> _Field:
    codes, texts = values.distinct(series)
    seen = values.Unknown()
    parsed = _parser(name, sources)(pd.Series(texts, dtype="string"), seen)
    if seen.counts.get(name):
        rows = np.bincount(codes, minlength=len(texts))
        where = {t: i for i, t in enumerate(texts)}
        bad = list(seen.counts[name])
        unknown.add(name, np.array(bad, dtype=object), rows[[where[b] for b in bad]])
    # Two spellings of one value agree (12,000 and 12000); an unreadable or blank text is a
    # value of its own.
    keys = pd.factorize(parsed.reset_index(drop=True))[0].astype("int64")
    unread = np.flatnonzero(keys < 0)
    keys[unread] = keys.max(initial=-1) + 1 + np.arange(len(unread))
    return _Field(codes, texts, parsed.reset_index(drop=True), keys)


def households_from_tables(tables: list[SourceTable],
                           config: Config | SourcesConfig) -> Households:
    """Aggregate the person tables into the ledger; join the migrant table and the warnings.

    Parameters
    ----------
    tables : list of SourceTable
        Every table read from the sources folder (:func:`riskmodel.sources.read_sources`).
    config : Config or SourcesConfig
        Vocabularies, separators and warning rules (``sources``).

    Returns
    -------
    Households
        ``ledger`` (the contract's columns, then :data:`RECORDED_COLUMNS`, sorted by
        household and month), ``quarantine`` (:data:`QUARANTINE_COLUMNS`, personal values
        masked) and ``report`` (months, persons, quarantine counts, unknown values, warnings,
        migrants).

    Raises
    ------
    SourceError
        No person table among ``tables``.
    """
    sources = _sources(config)
    unknown = values.Unknown(sources.personal)
    positions = [i for i, t in enumerate(tables) if t.kind == "persons"]
    if not positions:
        raise SourceError("no person table found among the sources (a table whose headers "
                          "include 户编号, 劳动技能 and 健康状况); nothing to ingest.")
    persons, blank_rows = _concat_persons(tables, positions)
    n = len(persons)
    col = lambda name: values.column(persons, name)  # noqa: E731
    month_no = persons["_m"].to_numpy()

    # Readings that depend on nothing but the cells, run on every core: ids of the person
    # tables and the feeds as integer codes into shared dictionaries, the per-person readings,
    # the household-level fields.
    migrant_feed, warning_feed = stack(tables, "migrants"), stack(tables, "warnings")
    feeds = [migrant_feed, warning_feed]
    vocab = sources.values
    cells = {name: col(name) for name in PERSON_FIELDS}
    with _Parallel(unknown) as run:
        pid_job = run(lambda seen, ids: encode(ids), [
            cells["person_id"], *(values.column(f.frame, "person_id") for f in feeds)])
        hid_job = run(lambda seen, ids: encode(ids, sort=True), [
            cells["household_id"], *(values.column(f.frame, "household_id") for f in feeds)])
        field_jobs = {name: run(_read_field, name, cells[name], sources)
                      for name in HOUSEHOLD_FIELDS}
        born_job = run(lambda seen: values.birth_months(cells["birth_date"], cells["id_birth"]))
        coded = {name: run(lambda seen, name: values.vocabulary(
            name, cells[name], vocab[name], seen), name)
            for name in ["labor_skill", "schooling", "disability_grade"]}
        health_job = run(lambda seen: values.health(cells["health"], vocab["health"],
                                                    sources.separators, seen))
        flag_jobs = {name: run(lambda seen, name: values.flags(
            name, cells[name], vocab[name], seen, numbers=name == "welfare_job"
        ).fillna(False).to_numpy(dtype=bool), name)
            for name in ["dropout", "working", "dibao", "tekun", "welfare_job"]}
    (hcodes, *feed_h), households_sorted = hid_job.result()
    (pcodes, *feed_p), person_ids = pid_job.result()
    for f, h, p in zip(feeds, feed_h, feed_p, strict=True):
        f.hcodes, f.pcodes = h, p

    # Persons with a household, grouped by (household, month) integer codes, sorted.
    hid = col("household_id")
    has_hid = hcodes >= 0
    idx = np.flatnonzero(has_hid)
    groups = Groups.build(hcodes[idx], month_no[idx], households_sorted)
    gid = groups.gid
    n_groups = groups.size
    order = np.argsort(gid, kind="stable")
    sorted_gid = gid[order]
    starts = np.flatnonzero(np.r_[True, sorted_gid[1:] != sorted_gid[:-1]][:len(idx)])
    first = idx[order[starts]]  # the first person row of each group

    # Per-person readings.
    born = born_job.result()
    age = (month_no - born) // 12
    labor, school, grade = (coded[name].result()
                            for name in ["labor_skill", "schooling", "disability_grade"])
    health = health_job.result()
    flag = {name: job.result() for name, job in flag_jobs.items()}

    # The person rules, first broken first.
    rules = _Rules(n)
    rules.set(np.flatnonzero(~has_hid), "household_id_missing", "household_id", "")
    no_birth = np.flatnonzero(has_hid & (born < 0))
    rules.set(no_birth, "birth_date_unreadable", "birth_date",
              col("birth_date").iloc[no_birth].to_numpy(dtype=object))
    pid_codes = pcodes[idx]
    # A (household-month, person) pair held by more than one row; sorting beats hashing here.
    _, pair, rows_of_pair = np.unique(gid * (len(person_ids) + 1) + pid_codes,
                                      return_inverse=True, return_counts=True)
    dup = (rows_of_pair[pair] > 1) & (pid_codes >= 0)
    rules.set(idx[dup], "person_duplicated", "person_id", MASK)

    # Household-level fields: read once, compared across each group's rows.
    fields = {name: job.result() for name, job in field_jobs.items()}
    _disagreements(fields, idx, gid, order, rules)
    bad_group = np.bincount(gid, weights=rules.has[idx], minlength=n_groups) > 0
    rules.set(idx[bad_group[gid]], "member_of_quarantined_household", "household_id", "")

    # Feeds: the migrant table (wages, workers) and the warnings (events, flags).
    lookup = groups.person_lookup(pid_codes, idx, len(person_ids))
    migrants = read_migrants(migrant_feed, groups, lookup, sources, unknown, n)
    warnings = read_warnings(warning_feed, groups, lookup, sources, unknown)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(gid, weights=mask[idx], minlength=n_groups).astype("int16")

    health = {code: health.get(code, np.zeros(n, dtype=bool))
              for code in ["chronic_ill", "serious_ill", "disabled"]}
    disabled = health["disabled"]
    working = flag["working"] | migrants.working_persons
    counts = {
        "members": np.bincount(gid, minlength=n_groups).astype("int16"),
        "labor_full": count((labor == "full").fillna(False).to_numpy(dtype=bool)),
        "labor_partial": count((labor == "partial").fillna(False).to_numpy(dtype=bool)),
        "elderly": count((born >= 0) & (age >= ELDERLY_AGE)),
        "children": count((born >= 0) & (age < CHILD_AGE)),
        "students_compulsory": count((school == "compulsory").fillna(False).to_numpy(bool)),
        "students_noncompulsory": count((school == "noncompulsory").fillna(False)
                                        .to_numpy(bool)),
        "chronic_ill": count(health["chronic_ill"]),
        "serious_ill": count(health["serious_ill"]),
        "disabled": count(disabled),
        "disabled_severe": count(disabled & grade.isin(["1", "2"]).fillna(False)
                                 .to_numpy(bool)),
        "migrant_workers": count(working),
    }
    dropouts = count(flag["dropout"])
    dibao = (count(flag["dibao"] | flag["tekun"]) > 0) | warnings.columns["dibao"]
    welfare_job = count(flag["welfare_job"]) > 0

    def household(name: str) -> pd.Series:
        f = fields[name]
        return f.parsed.take(f.codes[first]).reset_index(drop=True)

    category = household("monitoring_category")
    eliminated = household("risk_eliminated").fillna(False).to_numpy(dtype=bool)
    monitored = (category.notna() & (category != values.NONE)).to_numpy(dtype=bool)
    kind = household("household_type")
    exited = (kind == "exited").fillna(False).to_numpy(bool)
    household_type = _take(["monitored", "exited", "general"],
                           np.where(monitored & ~eliminated, 0, np.where(exited, 1, 2)))
    housing_safe = ~household("housing_unsafe").astype("boolean")
    housing_safe[warnings.columns["housing_unsafe"]] = False
    water_safe = household("water_safe").astype("boolean")
    water_safe[warnings.columns["water_unsafe"]] = False

    def text(name: str) -> pd.Series:
        f = fields[name]
        labels = [None if pd.isna(v) or v in ("", values.NONE) else str(v) for v in f.parsed]
        return _take(labels, f.codes[first])

    nan = np.full(n_groups, np.nan)
    frame = {
        "household_id": pd.Series(pd.array(groups.households, dtype="str")),
        "month": _take(list(month_label(groups.month_values)),
                       np.searchsorted(groups.month_values, groups.months)),
        "province": text("province"),
        **{p: text(p) for p in PLACES},
        "household_type": household_type,
        **counts,
        **{c: nan for c in ["inc_wage", "inc_business", "inc_property", "inc_transfer",
                            "exp_medical_oop", "exp_education"]},
        "insured_all": pd.array(np.full(n_groups, pd.NA), dtype="boolean"),
        "housing_safe": housing_safe.array,
        "water_safe": water_safe.array,
        "dropouts": dropouts,
        "dibao": dibao,
        "welfare_job": welfare_job,
        "temp_assistance": nan,
        **{e: warnings.columns[e] for e in EVENTS},
        "wage_migrant": migrants.wage,
        **{a: household(a).astype("float64") for a in ANNUAL},
        "annual_income_year": household("annual_income_year").astype("Int64"),
        "identified_month": text("identified_month"),
        "eliminated_month": text("eliminated_month"),
        "monitoring_category": text("monitoring_category"),
        **{r: text(r) for r in RECORDED_RISKS},
        **warnings.counts,
        "warning_amount": warnings.amount,
    }
    ledger = pd.DataFrame(frame).loc[~bad_group].reset_index(drop=True)
    # Quarantined household-months are no part of the history the run looks back on.
    ledger["annual_recorded_month"] = recorded_month(ledger, groups.hcodes[~bad_group],
                                                     groups.months[~bad_group])
    ledger = ledger[[*LEDGER_COLUMNS, *RECORDED_COLUMNS]]

    quarantine = _quarantine(tables, persons, rules, hid)
    report = _report(persons, month_no, rules, ledger, groups, bad_group, blank_rows,
                     unknown, migrants.report, warnings.report, sources)
    return Households(ledger, quarantine, report)


def _disagreements(fields: dict[str, _Field], idx: np.ndarray, gid: np.ndarray,
                   order: np.ndarray, rules: _Rules) -> None:
    """Quarantine the household-months whose rows disagree on a household-level field (the
    first such field, with two of its values) or lack a place."""
    sorted_gid = gid[order]
    same_group = sorted_gid[1:] == sorted_gid[:-1]
    starts = np.flatnonzero(np.r_[True, ~same_group][:len(idx)])
    first = idx[order[starts]]
    rows = idx[order]

    def changes(name: str) -> np.ndarray:
        # The first row of a group whose value changes from the row before is the group's
        # first row that differs from its first row.
        key = fields[name].keys[fields[name].codes[rows]]
        return np.flatnonzero((key[1:] != key[:-1]) & same_group) + 1

    # numpy releases the GIL over whole arrays: the fields are compared on every core, then
    # read in their order (the first field that disagrees is the one reported).
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        found = list(pool.map(changes, HOUSEHOLD_FIELDS))
    disagree = np.full(len(starts), None, dtype=object)
    for name, at in zip(HOUSEHOLD_FIELDS, found, strict=True):
        f = fields[name]
        if not len(at):
            continue
        groups_at, where = np.unique(sorted_gid[at], return_index=True)
        new = disagree[groups_at] == None  # noqa: E711
        groups_at, where = groups_at[new], where[new]
        one = f.texts[f.codes[first[groups_at]]]
        other = f.texts[f.codes[idx[order[at[where]]]]]
        disagree[groups_at] = [f"{name}: {a} | {b}" for a, b in zip(one, other, strict=True)]
        rules.set_groups(idx, gid, groups_at, "household_disagrees", name, disagree)
    for name in PLACES:
        # The ledger needs every household's place; a blank one cannot be guessed.
        blank = fields[name].texts[fields[name].codes[first]] == ""
        at = np.flatnonzero(blank & (disagree == None))  # noqa: E711
        disagree[at] = ""
        rules.set_groups(idx, gid, at, "place_missing", name, disagree)


def _take(labels: list, codes: np.ndarray) -> pd.Series:
    """``labels[codes]`` as a text column (None in ``labels`` is missing)."""
    array = pa.array(labels, type=pa.large_string()).take(pa.array(codes))
    return pd.Series(pd.array(array, dtype="str"))


class _Rules:
    """The quarantine rule of each person row (the first one broken), its field and value."""

    def __init__(self, n: int):
        self.has = np.zeros(n, dtype=bool)
        self.rule = np.full(n, None, dtype=object)
        self.field = np.full(n, None, dtype=object)
        self.value = np.full(n, "", dtype=object)

    def set(self, rows: np.ndarray, rule: str, field_name: str, value) -> None:
        """Give ``rows`` without a rule yet this one."""
        fresh = ~self.has[rows]
        rows = rows[fresh]
        self.has[rows] = True
        self.rule[rows], self.field[rows] = rule, field_name
        self.value[rows] = value if np.isscalar(value) else np.asarray(value)[fresh]

    def set_groups(self, idx, gid, groups_at, rule: str, field_name: str,
                   value_by_group: np.ndarray) -> None:
        """Give every person of ``groups_at`` without a rule yet the household's rule."""
        chosen = np.zeros(len(value_by_group), dtype=bool)
        chosen[groups_at] = True
        at = np.flatnonzero(chosen[gid])
        self.set(idx[at], rule, field_name, value_by_group[gid[at]])


def recorded_month(ledger: pd.DataFrame, hcodes: np.ndarray, months: np.ndarray) -> pd.Series:
    """``annual_recorded_month``: the first month of the current run of identical annual
    figures of each household, looking only backwards (rows sorted by household, month).

    A household-month whose figures are all blank has none (NA) and does not break the run; a
    figure repeated after a gap keeps its first month; a changed figure starts a new run.
    """
    figures = [ledger[c].to_numpy(dtype="float64", na_value=np.nan)
               for c in [*ANNUAL, "annual_income_year"]]
    blank = np.ones(len(ledger), dtype=bool)
    for v in figures:
        blank &= np.isnan(v)
    at = np.flatnonzero(~blank)
    h = hcodes[at]
    new = np.r_[True, h[1:] != h[:-1]] if len(at) else np.zeros(0, bool)
    for v in figures:
        # Each filled row against the filled row before it: a blank figure equals a blank one.
        v = v[at]
        new[1:] |= (v[1:] != v[:-1]) & ~(np.isnan(v[1:]) & np.isnan(v[:-1]))
    run_start = at[np.flatnonzero(new)][np.cumsum(new) - 1]
    out = np.full(len(ledger), None, dtype=object)
    out[at] = month_label(months[run_start])
    return pd.Series(out, dtype="str")


def _quarantine(tables, persons, rules: _Rules, hid) -> pd.DataFrame:
    at = np.flatnonzero(rules.has)
    t = persons["_t"].to_numpy()[at]
    paths = np.array([tables[i].path for i in range(len(tables))], dtype=object)
    sheets = np.array([tables[i].sheet for i in range(len(tables))], dtype=object)
    household_id = hid.iloc[at].to_numpy(dtype=object)
    out = pd.DataFrame({
        "file": pd.Series(paths[t], dtype="str"),
        "sheet": pd.Series(sheets[t], dtype="str"),
        "row": persons["_row"].to_numpy(dtype="int64")[at],
        "month": pd.Series(month_label(persons["_m"].to_numpy()[at]), dtype="str"),
        "household_id": pd.Series(np.where(household_id == "", None, household_id), dtype="str"),
        "field": pd.Series(rules.field[at], dtype="str"),
        "rule": pd.Series(rules.rule[at], dtype="str"),
        "value": pd.Series(rules.value[at], dtype="str"),
    })
    return out.sort_values(["file", "row"], kind="stable").reset_index(drop=True)


def _report(persons, month_no, rules: _Rules, ledger, groups, bad_group, blank_rows, unknown,
            migrants, warnings, sources) -> dict:
    """The report's counts, per month by integer codes (a month's rows are never scanned for
    each month)."""
    quarantined = rules.has
    values_, at = np.unique(month_no, return_inverse=True)
    persons_in = np.bincount(at, minlength=len(values_))
    persons_out = np.bincount(at, weights=quarantined, minlength=len(values_)).astype("int64")
    group_month = np.searchsorted(values_, groups.months)
    kept = np.bincount(group_month, weights=~bad_group, minlength=len(values_)).astype("int64")
    dropped = np.bincount(group_month, weights=bad_group, minlength=len(values_)).astype("int64")
    months = {
        str(label): {"persons": int(persons_in[i]),
                     "persons_aggregated": int(persons_in[i] - persons_out[i]),
                     "persons_quarantined": int(persons_out[i]),
                     "households": int(kept[i]), "households_quarantined": int(dropped[i])}
        for i, label in enumerate(month_label(values_))}
    by_rule = pd.Series(rules.rule[quarantined]).value_counts()
    return {
        "months": months,
        "persons_in": len(persons),
        "persons_aggregated": int((~quarantined).sum()),
        "persons_quarantined": int(quarantined.sum()),
        "blank_rows": blank_rows,
        "quarantined_by_rule": {str(k): int(by_rule[k]) for k in sorted(by_rule.index)},
        "unknown_values": unknown.as_dict(list(sources.headers)),
        "warnings": warnings,
        "migrants": migrants,
        "households": len(np.unique(groups.hcodes[~bad_group])),
        "household_months": len(ledger),
    }
