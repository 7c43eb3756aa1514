"""The migrant-work table and the department warnings, joined to the household-months.

A row finds its household by 户编号 when it has one, else by 证件号码 through the person table
of the same month. Migrant rows give the month's wages and who works away; a warning sets an
event or a flag in the month it became known (a late list counts from the month it arrived).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import WARNING_COLUMNS, SourcesConfig
from . import _values as values
from ._table import SourceTable


@dataclass
class Groups:
    """The household-months of the person tables, numbered in ledger order (household, month).

    ``gid`` is each grouped person row's group; ``hcodes``, ``months`` and ``households`` are
    per group.
    """

    gid: np.ndarray
    keys: np.ndarray
    household_index: pd.Index
    month_values: np.ndarray
    hcodes: np.ndarray = field(init=False)
    months: np.ndarray = field(init=False)
    households: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        width = len(self.month_values)
        self.hcodes = self.keys // width
        self.months = self.month_values[self.keys % width]
        self.households = self.household_index.to_numpy(dtype=object)[self.hcodes]

    @property
    def size(self) -> int:
        return len(self.keys)

    @classmethod
    def build(cls, households: np.ndarray, months: np.ndarray) -> Groups:
        hcodes, index = pd.factorize(households, sort=True)
        month_values, mcodes = np.unique(months, return_inverse=True)
        keys, gid = np.unique(hcodes.astype("int64") * len(month_values) + mcodes,
                              return_inverse=True)
        return cls(gid.astype("int64"), keys, pd.Index(index), month_values)

    def locate(self, households: np.ndarray, months: np.ndarray) -> np.ndarray:
        """The group of each (household id, month number); -1 where there is none."""
        if not len(households):
            return np.zeros(0, dtype="int64")
        hcodes = self.household_index.get_indexer(households)
        mpos = np.searchsorted(self.month_values, months).clip(0, len(self.month_values) - 1)
        ok = (hcodes >= 0) & (self.month_values[mpos] == months)
        key = hcodes.astype("int64") * len(self.month_values) + mpos
        pos = np.searchsorted(self.keys, key).clip(0, max(self.size - 1, 0))
        ok &= self.keys[pos] == key
        return np.where(ok, pos, -1)

    def person_lookup(self, person_codes: np.ndarray, person_ids: np.ndarray,
                      rows: np.ndarray) -> PersonLookup:
        """(month, person id) -> group and person row (the first row of each pair).

        ``person_codes`` are the grouped rows' codes into the distinct ``person_ids``."""
        named = person_ids[person_codes] != ""
        width = len(person_ids)
        key = self.months[self.gid].astype("int64") * width + person_codes
        key = np.where(named, key, -1)
        keys, first = np.unique(key, return_index=True)
        keep = keys >= 0
        return PersonLookup(pd.Index(person_ids), width, keys[keep], self.gid[first[keep]],
                            rows[first[keep]])


@dataclass
class PersonLookup:
    """Where each (month number, person id) of the person tables is: its group and row."""

    index: pd.Index
    width: int
    keys: np.ndarray
    group: np.ndarray
    person: np.ndarray

    def find(self, months: np.ndarray, person_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Group and person row of each (month, person id); -1 where the month's person
        tables do not hold the person."""
        if not len(months) or not len(self.keys):
            none = np.full(len(months), -1, dtype="int64")
            return none, none.copy()
        code = self.index.get_indexer(person_ids)
        key = months.astype("int64") * self.width + code
        pos = np.searchsorted(self.keys, key).clip(0, len(self.keys) - 1)
        ok = (code >= 0) & (self.keys[pos] == key)
        return np.where(ok, self.group[pos], -1), np.where(ok, self.person[pos], -1)


def _locate(frame: pd.DataFrame, months: np.ndarray, groups: Groups,
            lookup: PersonLookup) -> np.ndarray:
    """Each row's group: by 户编号 when given, else by 证件号码 in the month's person table."""
    hid = values.column(frame, "household_id").to_numpy(dtype=object)
    pid = values.column(frame, "person_id").to_numpy(dtype=object)
    group = np.full(len(frame), -1, dtype="int64")
    by_id = hid != ""
    group[by_id] = groups.locate(hid[by_id], months[by_id])
    by_pid = ~by_id & (pid != "")
    group[by_pid] = lookup.find(months[by_pid], pid[by_pid])[0]
    return group


def _concat(tables: list[SourceTable], kind: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The tables of one kind stacked, and each row's file month number (-1 for none)."""
    chosen = [t for t in tables if t.kind == kind]
    if not chosen:
        return pd.DataFrame(), np.zeros(0, dtype="int64")
    frames = [t.frame for t in chosen]
    month = [-1 if t.month is None else int(t.month[:4]) * 12 + int(t.month[5:7]) - 1
             for t in chosen]
    stacked = pd.concat(frames, ignore_index=True)
    for c in stacked.columns:
        if c != "_row" and stacked[c].hasnans:
            stacked[c] = stacked[c].fillna("")
    return stacked, np.repeat(np.array(month, dtype="int64"), [len(f) for f in frames])


@dataclass
class Migrants:
    """The migrant table's contribution: wage per group (NaN in months without the table), the
    person rows working away, the report's counts."""

    wage: np.ndarray
    working_persons: np.ndarray
    report: dict


def read_migrants(tables: list[SourceTable], groups: Groups, lookup: PersonLookup,
                  sources: SourcesConfig, unknown: values.Unknown, n_persons: int) -> Migrants:
    """Wages and workers of each household-month from the migrant tables of its month."""
    frame, month = _concat(tables, "migrants")
    wage = np.full(groups.size, np.nan)
    working_persons = np.zeros(n_persons, dtype=bool)
    if frame.empty and not len(month):
        return Migrants(wage, working_persons,
                        {"rows": 0, "working": 0, "matched": 0, "unmatched": 0})
    start = values.month_numbers("work_start", values.column(frame, "work_start"), unknown)
    end = values.month_numbers("work_end", values.column(frame, "work_end"), unknown)
    said = values.flags("working", values.column(frame, "working"),
                        sources.values["working"], unknown).fillna(False).to_numpy(dtype=bool)
    working = said & ((start < 0) | (start <= month)) & ((end < 0) | (end >= month))
    amount = values.money("migrant_wage", values.column(frame, "migrant_wage"), unknown)
    group = _locate(frame, month, groups, lookup)
    matched = group >= 0
    paid = working & matched
    total = np.bincount(group[paid], weights=amount.fillna(0.0).to_numpy()[paid],
                        minlength=groups.size)
    with_table = np.isin(groups.months, np.unique(month))
    wage[with_table] = total[with_table]
    pid = values.column(frame, "person_id").to_numpy(dtype=object)
    named = working & (pid != "")
    person = lookup.find(month[named], pid[named])[1]
    working_persons[person[person >= 0]] = True
    report = {"rows": len(frame), "working": int(working.sum()), "matched": int(matched.sum()),
              "unmatched": int((~matched).sum())}
    return Migrants(wage, working_persons, report)


@dataclass
class Warnings:
    """Per group, each warning column set (``ev_*``, ``housing_unsafe``, ``water_unsafe``,
    ``dibao``); and the report's counts."""

    columns: dict[str, np.ndarray]
    report: dict


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


def read_warnings(tables: list[SourceTable], groups: Groups, lookup: PersonLookup,
                  sources: SourcesConfig, unknown: values.Unknown) -> Warnings:
    """Events and flags of each household-month from the department warnings known by then."""
    columns = {c: np.zeros(groups.size, dtype=bool) for c in WARNING_COLUMNS}
    frame, file_month = _concat(tables, "warnings")
    empty = {"matched": 0, "unmatched": 0, "no_rule": 0, "unreadable": 0}
    if not len(file_month):
        return Warnings(columns, {**empty, "by_department": {}})
    said = values.month_numbers("warning_month", values.column(frame, "warning_month"), unknown)
    values.money("amount", values.column(frame, "amount"), unknown)
    month = np.where(file_month >= 0, np.maximum(said, file_month), said)
    rule = _rules(frame, sources)
    unreadable = month < 0
    no_rule = ~unreadable & (rule < 0)
    group = np.full(len(frame), -1, dtype="int64")
    open_ = ~unreadable & ~no_rule
    group[open_] = _locate(frame.loc[open_], month[open_], groups, lookup)
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
    return Warnings(columns, report)
