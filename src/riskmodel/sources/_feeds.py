"""The migrant-work table and the department warnings, joined to the household-months.

A row finds its household by 户编号 when it has one, else by 证件号码 through the person table
of the same month. Migrant rows give the month's wages and who works away; a warning sets an
event or a flag in the month it became known (a late list counts from the month it arrived).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import DEPARTMENT_CODES, WARNING_COLUMNS, SourcesConfig
from . import _values as values
from ._read import SourceTable


def _arrow(series: pd.Series) -> pa.Array:
    array = pa.array(series.array, type=pa.large_string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def encode(columns: list[pd.Series], sort: bool = False) -> tuple[list[np.ndarray], pa.Array]:
    """Integer codes of the texts of several columns into one dictionary (-1 for ""), so that
    ids of the person table and of the feeds compare as integers; with ``sort``, codes follow
    the texts' order. Returns the codes of each column and the dictionary."""
    if not columns:
        return [], pa.array([], type=pa.large_string())
    lengths = [len(c) for c in columns]
    whole = pa.concat_arrays([_arrow(c) for c in columns])
    encoded = pc.dictionary_encode(whole)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype("int64")
    dictionary = encoded.dictionary
    if sort:
        order = pc.sort_indices(dictionary).to_numpy()
        rank = np.empty(len(order), dtype="int64")
        rank[order] = np.arange(len(order))
        codes = rank[codes]
        dictionary = dictionary.take(pa.array(order))
    blank = pc.index_in(pa.array([""], type=pa.large_string()), value_set=dictionary)[0]
    if blank.is_valid:
        codes[codes == blank.as_py()] = -1
    return np.split(codes, np.cumsum(lengths)[:-1]), dictionary


@dataclass
class Groups:
    """The household-months of the person tables, numbered in ledger order (household, month).

    ``gid`` is each grouped person row's group; ``hcodes`` (codes into the sorted
    ``dictionary`` of household ids) and ``months`` are per group.
    """

    gid: np.ndarray
    keys: np.ndarray
    dictionary: pa.Array
    month_values: np.ndarray
    hcodes: np.ndarray = field(init=False)
    months: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        width = len(self.month_values)
        self.hcodes = self.keys // width
        self.months = self.month_values[self.keys % width]

    @property
    def size(self) -> int:
        return len(self.keys)

    @property
    def households(self) -> pa.Array:
        """The household id of each group."""
        return self.dictionary.take(pa.array(self.hcodes))

    @classmethod
    def build(cls, hcodes: np.ndarray, months: np.ndarray, dictionary: pa.Array) -> Groups:
        month_values, mcodes = np.unique(months, return_inverse=True)
        keys, gid = np.unique(hcodes * len(month_values) + mcodes, return_inverse=True)
        return cls(gid.astype("int64"), keys, dictionary, month_values)

    def locate(self, hcodes: np.ndarray, months: np.ndarray) -> np.ndarray:
        """The group of each (household code, month number); -1 where there is none."""
        if not len(hcodes) or not self.size:
            return np.full(len(hcodes), -1, dtype="int64")
        mpos = np.searchsorted(self.month_values, months).clip(0, len(self.month_values) - 1)
        ok = (hcodes >= 0) & (self.month_values[mpos] == months)
        key = hcodes * len(self.month_values) + mpos
        pos = np.searchsorted(self.keys, key).clip(0, self.size - 1)
        ok &= self.keys[pos] == key
        return np.where(ok, pos, -1)

    def person_lookup(self, person_codes: np.ndarray, rows: np.ndarray,
                      width: int) -> PersonLookup:
        """(month, person code) -> group and person row (the first row of each pair)."""
        key = np.where(person_codes >= 0, self.months[self.gid] * width + person_codes, -1)
        keys, first = np.unique(key, return_index=True)
        keep = keys >= 0
        return PersonLookup(width, keys[keep], self.gid[first[keep]], rows[first[keep]])


@dataclass
class PersonLookup:
    """Where each (month number, person code) of the person tables is: its group and row."""

    width: int
    keys: np.ndarray
    group: np.ndarray
    person: np.ndarray

    def find(self, months: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Group and person row of each (month, person code); -1 where the month's person
        tables do not hold the person."""
        if not len(months) or not len(self.keys):
            none = np.full(len(months), -1, dtype="int64")
            return none, none.copy()
        key = months * self.width + codes
        pos = np.searchsorted(self.keys, key).clip(0, len(self.keys) - 1)
        ok = (codes >= 0) & (self.keys[pos] == key)
        return np.where(ok, self.group[pos], -1), np.where(ok, self.person[pos], -1)


@dataclass
class Feed:
    """The tables of one kind stacked: cells, each row's file month (-1 for none), and the
    codes of its household and person ids (see :func:`encode`)."""

    frame: pd.DataFrame
    month: np.ndarray
    hcodes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))
    pcodes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))

    def locate(self, groups: Groups, lookup: PersonLookup, months: np.ndarray | None = None,
               rows: np.ndarray | None = None) -> np.ndarray:
        """Each row's group: by 户编号 when given, else by 证件号码 in the month's person
        table."""
        rows = np.arange(len(self.month)) if rows is None else rows
        months = self.month[rows] if months is None else months
        hcodes, pcodes = self.hcodes[rows], self.pcodes[rows]
        group = groups.locate(hcodes, months)
        by_pid = (hcodes < 0) & (pcodes >= 0)
        group[by_pid] = lookup.find(months[by_pid], pcodes[by_pid])[0]
        return group


def stack(tables: list[SourceTable], kind: str) -> Feed:
    """The tables of one kind stacked, with each row's file month number (-1 for none)."""
    chosen = [t for t in tables if t.kind == kind]
    if not chosen:
        return Feed(pd.DataFrame(), np.zeros(0, dtype="int64"))
    frames = [t.frame for t in chosen]
    month = [-1 if t.month is None else int(t.month[:4]) * 12 + int(t.month[5:7]) - 1
             for t in chosen]
    stacked = pd.concat(frames, ignore_index=True)
    for c in stacked.columns:
        if c != "_row" and stacked[c].hasnans:
            stacked[c] = stacked[c].fillna("")
    return Feed(stacked, np.repeat(np.array(month, dtype="int64"), [len(f) for f in frames]))


@dataclass
class Migrants:
    """The migrant table's contribution: wage per group (NaN in months without the table), the
    person rows working away, the report's counts."""

    wage: np.ndarray
    working_persons: np.ndarray
    report: dict


def read_migrants(feed: Feed, groups: Groups, lookup: PersonLookup, sources: SourcesConfig,
                  unknown: values.Unknown, n_persons: int) -> Migrants:
    """Wages and workers of each household-month from the migrant tables of its month."""
    frame, month = feed.frame, feed.month
    wage = np.full(groups.size, np.nan)
    working_persons = np.zeros(n_persons, dtype=bool)
    if frame.empty and not len(month):
        return Migrants(wage, working_persons,
                        {"rows": 0, "working": 0, "matched": 0, "unmatched": 0})
    start = values.parse_months("work_start", values.column(frame, "work_start"), unknown)
    end = values.parse_months("work_end", values.column(frame, "work_end"), unknown)
    said = values.flags("working", values.column(frame, "working"),
                        sources.values["working"], unknown).fillna(False).to_numpy(dtype=bool)
    working = said & ((start < 0) | (start <= month)) & ((end < 0) | (end >= month))
    amount = values.money("migrant_wage", values.column(frame, "migrant_wage"), unknown)
    group = feed.locate(groups, lookup)
    matched = group >= 0
    paid = working & matched
    total = np.bincount(group[paid], weights=amount.fillna(0.0).to_numpy()[paid],
                        minlength=groups.size)
    with_table = np.isin(groups.months, np.unique(month))
    wage[with_table] = total[with_table]
    named = working & (feed.pcodes >= 0)
    person = lookup.find(month[named], feed.pcodes[named])[1]
    working_persons[person[person >= 0]] = True
    report = {"rows": len(frame), "working": int(working.sum()), "matched": int(matched.sum()),
              "unmatched": int((~matched).sum())}
    return Migrants(wage, working_persons, report)


@dataclass
class Warnings:
    """Per group, each warning column set (``ev_*``, ``housing_unsafe``, ``water_unsafe``,
    ``dibao``), the matched warnings counted per department (``warnings_<code>``) and their
    summed amount (``warning_amount``, NaN when none carried one); and the report's counts."""

    columns: dict[str, np.ndarray]
    report: dict
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    amount: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _department_codes(frame: pd.DataFrame, sources: SourcesConfig) -> np.ndarray:
    """Index into :data:`DEPARTMENT_CODES` of each row's 部门 (``sources.departments``); -1
    for a department the table does not name."""
    table = {values.normalise(name): DEPARTMENT_CODES.index(code)
             for name, code in sources.departments.items()}
    codes, uniques = pd.factorize(values.column(frame, "department").to_numpy(dtype=object))
    known = np.array([table.get(values.normalise(u), -1) for u in uniques], dtype="int64")
    return known[codes] if len(codes) else np.zeros(0, dtype="int64")


def _counted(group: np.ndarray, matched: np.ndarray, department: np.ndarray,
             amount: np.ndarray, size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Matched warnings per group and department, and the amount they carried per group."""
    counts = {}
    for j, code in enumerate(DEPARTMENT_CODES):
        hit = matched & (department == j)
        counts[f"warnings_{code}"] = np.bincount(group[hit], minlength=size).astype("int16")
    paid = matched & ~np.isnan(amount)
    total = np.bincount(group[paid], weights=amount[paid], minlength=size)
    carried = np.bincount(group[paid], minlength=size) > 0
    return counts, np.where(carried, total, np.nan)


def _rules(frame: pd.DataFrame, sources: SourcesConfig) -> np.ndarray:
    """Index of the first warning rule each row matches; -1 for none."""
    department = values.column(frame, "department")
    item = values.column(frame, "warning_item")
    pairs = pd.MultiIndex.from_arrays([department.to_numpy(dtype=object),
                                       item.to_numpy(dtype=object)])
    codes, uniques = pd.factorize(pairs)
    rules = [(values.normalise(r.department), [values.normalise(k) for k in r.keywords if k])
             for r in sources.warning_rules]
    chosen = np.full(len(uniques), -1, dtype="int64")
    for i, (dept, text) in enumerate(uniques):
        for j, (rule_dept, keywords) in enumerate(rules):
            if dept == rule_dept and (not keywords or any(k in text for k in keywords)):
                chosen[i] = j
                break
    return chosen[codes] if len(codes) else np.zeros(0, dtype="int64")


def read_warnings(feed: Feed, groups: Groups, lookup: PersonLookup, sources: SourcesConfig,
                  unknown: values.Unknown) -> Warnings:
    """Events and flags of each household-month from the department warnings known by then."""
    columns = {c: np.zeros(groups.size, dtype=bool) for c in WARNING_COLUMNS}
    frame, file_month = feed.frame, feed.month
    empty = {"matched": 0, "unmatched": 0, "no_rule": 0, "unreadable": 0}
    if not len(file_month):
        none = np.zeros(0, dtype="int64")
        counts, amount = _counted(none, none.astype(bool), none, np.zeros(0), groups.size)
        return Warnings(columns, {**empty, "by_department": {}}, counts, amount)
    said = values.parse_months("warning_month", values.column(frame, "warning_month"), unknown)
    amount = values.money("amount", values.column(frame, "amount"), unknown).to_numpy()
    month = np.where(file_month >= 0, np.maximum(said, file_month), said)
    rule = _rules(frame, sources)
    unreadable = month < 0
    no_rule = ~unreadable & (rule < 0)
    group = np.full(len(frame), -1, dtype="int64")
    open_ = ~unreadable & ~no_rule
    group[open_] = feed.locate(groups, lookup, month[open_], np.flatnonzero(open_))
    matched = open_ & (group >= 0)
    unmatched = open_ & (group < 0)
    for j, r in enumerate(sources.warning_rules):
        hit = matched & (rule == j)
        columns[r.column][group[hit]] = True
    outcome = np.select([unreadable, no_rule, unmatched], ["unreadable", "no_rule", "unmatched"],
                        "matched")
    department = values.column(frame, "department").to_numpy(dtype=object)
    table = pd.crosstab(department, outcome)
    by_department = {
        str(d): {k: int(table.loc[d, k]) if k in table.columns else 0 for k in empty}
        for d in sorted(table.index)}
    report = {"matched": int(matched.sum()), "unmatched": int(unmatched.sum()),
              "no_rule": int(no_rule.sum()), "unreadable": int(unreadable.sum()),
              "by_department": by_department}
    counts, total = _counted(group, matched, _department_codes(frame, sources), amount,
                             groups.size)
    return Warnings(columns, report, counts, total)
