"""The synthetic county's folder of exports, and the ledger an ingest of it must give.

:func:`county_sources` turns the simulated households into what a county office downloads each
month (``docs/synthetic.md``, "County sources"): the person table (监测对象信息), the migrant-work
table (务工监测) and the departments' warning lists (部门筛查预警), in the messy shapes real
exports have. Beside the files it returns ``expected``: the household-month ledger that reading
them by the rules of ``docs/sources.md`` gives, whose counts and flags are the latent ledger's.
The simulator runs exactly as :func:`riskmodel.synthetic.generate` runs it (the same draws);
every choice of the files comes from a separate random stream.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DEPARTMENT_CODES, Config, load_config
from ..errors import ArgumentError, OutputExistsError
from ..ledger import EVENTS, INCOME, LEDGER_COLUMNS, SPENDING, write_parquet_atomic
from ..months import month_label, month_number
from ._feeds import (
    ANNUAL,
    CATEGORIES,
    RISKS,
    annual,
    arrivals,
    department_events,
    medical_events,
    migrant_wage,
    monitoring,
    warnings_table,
)
from ._formats import (
    MONEY,
    assemble,
    choose_headers,
    csv_bytes,
    filler_columns,
    money_style,
    money_text,
    xlsx_bytes,
)
from ._generate import BURN_IN, _check_size, _household_ids, _simulate
from ._observe import DEPARTMENTS, Observation, observe, resolve, trigger_frame
from ._persons import make_persons, person_month
from ._simulate import PROVINCE, Params, places, policy_line
from ._tables import (
    fake_ids,
    migrant_columns,
    month_text,
    person_columns,
    warning_columns,
)

#: Spawn key of the sources' random stream (the simulator's streams are 0, 1 and 2); the
#: cadres' observation draws from its child ``(91, 1)``, so that its parameters leave the
#: persons and the files' shapes as they are.
SOURCES_STREAM = 91
EXTRA_COLUMNS = ["wage_migrant", *ANNUAL, "annual_income_year", "annual_recorded_month",
                 "identified_month", "eliminated_month", "monitoring_category",
                 *[f"recorded_risk_{i}" for i in range(1, 6)],
                 *[f"warnings_{dept}" for dept in DEPARTMENT_CODES], "warning_amount"]
_PLACES = ["province", "county", "township", "village"]


@dataclass
class CountySources:
    """A synthetic county's exports and what ingesting them must give.

    Attributes
    ----------
    files : dict of str to bytes
        The folder's files: posix path relative to the folder → content.
    expected : DataFrame
        One row per household and month, sorted by ``household_id`` (户编号 as written) and
        month: the ledger contract's columns, then the recorded ones (``wage_migrant``,
        ``annual_*``, ``annual_recorded_month``, ``identified_month``, ``eliminated_month``,
        ``monitoring_category``, ``recorded_risk_1`` … ``5``), as ``riskmodel ingest`` writes
        them.
    household_ids : DataFrame
        ``household_id`` of the latent ledger beside ``source_household_id`` (its 户编号), in
        the ledger's order.
    persons : int
        Persons in every monthly person table.
    warnings : int
        Warning rows written, ``unmatched`` of them about nobody in the person tables.
    observation : Observation
        The observation process the folder was written with.
    triggers : DataFrame
        The cadres' triggers over the burn-in year and the ledger: ``household_id`` (户编号),
        ``month`` ("YYYY-MM", may precede the ledger), ``kind`` (``fall``, ``warning`` or
        ``verification``), ``missed``, ``lag`` (months), ``identified_month`` (the
        household's next identification at or after the trigger, NA none).
    latent_income_pc : DataFrame
        ``household_id``, ``month`` (the ledger's), ``income_pc`` (the per-capita income of the
        12 months up to the month from the complete flows, as a recording writes it),
        ``line`` (the cadres' line of that year).
    """

    files: dict[str, bytes]
    expected: pd.DataFrame
    household_ids: pd.DataFrame
    persons: int
    warnings: int = 0
    unmatched: int = 0
    months: list[str] = field(default_factory=list)
    observation: Observation = field(default_factory=Observation)
    triggers: pd.DataFrame | None = None
    latent_income_pc: pd.DataFrame | None = None


def _pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(0, len(options)))]


class _Writer:
    """Shapes one export after another from the sources' random stream."""

    def __init__(self, rng: np.random.Generator, config: Config, xlsx_max_rows: int):
        self.rng, self.config, self.xlsx_max_rows = rng, config, xlsx_max_rows
        self.files: dict[str, bytes] = {}

    def write(self, folder: str, stem: str, title: str, month: int | None,
              columns: dict[str, np.ndarray], month_in_name: bool, month_column: bool) -> None:
        rng = self.rng
        rows = len(next(iter(columns.values())))
        if month_column and month is not None:
            columns = {"month": month_text(np.full(rows, month),
                                            _pick(rng, ["yyyymm", "dash", "cn2"])), **columns}
        style = money_style(rng)
        columns = {f: (money_text(v, style, rng) if f in MONEY else v)
                   for f, v in columns.items()}
        spellings = self.config.sources.headers
        headers = choose_headers(list(columns), spellings, rng, rng.random() < 0.5)
        filler = filler_columns(rows, spellings, rng, int(rng.integers(2, 9)))
        frame = assemble(columns, headers, filler, rng)
        download = (f"{month // 12}{month % 12 + 1:02d}{int(rng.integers(1, 29)):02d}"
                    if month is not None else "")
        titles = [title, f"导出时间：{download[:4]}-{download[4:6]}-{download[6:]}" if download
                  else "导出时间：", "", "单位：元", "数据来源：全国防返贫监测信息系统"]
        titles = titles[:int(rng.integers(1, 6))]
        kind = _pick(rng, ["xlsx", "utf-8-sig", "gb18030"])
        if kind == "xlsx" and rows > self.xlsx_max_rows:
            kind = "utf-8-sig"
        name = f"{stem}_{download}" if month_in_name and download else stem
        path = f"{folder}/{name}.{'xlsx' if kind == 'xlsx' else 'csv'}"
        quote_all = rows > 5 * self.xlsx_max_rows or rng.random() < 0.3
        self.files[path] = (xlsx_bytes(frame, titles, "Sheet1") if kind == "xlsx"
                            else csv_bytes(frame, titles, kind, quote_all))


def county_sources(households: int, months: int, start: str = "2022-01", seed: int = 0, *,
                   verification_month: int | None = None,
                   observation: Observation | None = None, config: Config | None = None,
                   xlsx_max_rows: int = 5_000) -> CountySources:
    """Simulate the county and write its exports in memory, with the ledger they must give.

    Parameters
    ----------
    households, months, start, seed
        As for :func:`riskmodel.synthetic.generate`: the same simulated households, whose
        latent ledger is :func:`generate`'s.
    verification_month : int, optional
        Calendar month (1–12) of the yearly income verification, which records the previous
        calendar year's incomes; a shorthand for ``Observation(verification_month=...)``
        (default 3).
    observation : Observation, optional
        The observation process (``docs/synthetic.md``, "The observation process"): the
        cadres' identification lag and misses, eliminations, warnings, and the regime
        (``"sources"``, or ``"annual"``: person tables alone). ``Observation()`` when omitted.
    config : Config, optional
        Header spellings (``sources.headers``) and the warning rules the expected ledger
        follows; the packaged default when omitted.
    xlsx_max_rows : int, default 5000
        Tables longer than this are written as CSV, never xlsx (writing xlsx is slow); and
        tables five times as long all as quoted CSV (the fastest to write).

    Returns
    -------
    CountySources

    Raises
    ------
    ArgumentError
        A size, seed, start or verification month out of range, or a verification month
        that disagrees with ``observation``'s.

    Examples
    --------
    >>> from riskmodel.synthetic import Observation, county_sources
    >>> src = county_sources(households=5, months=2, seed=1)
    >>> src.expected[["household_id", "month"]].shape
    (10, 2)
    >>> sorted({p.split("/")[0] for p in src.files})
    ['2022-01', '2022-02']
    >>> annual_only = county_sources(5, 2, seed=1, observation=Observation(regime="annual"))
    >>> any("务工" in path or "预警" in path for path in annual_only.files)
    False
    """
    _check_size(households, months, seed)
    obs = resolve(verification_month, observation)
    config = load_config() if config is None else config
    first = month_number(start, "start", ArgumentError)
    params = Params()
    run = _simulate(int(households), int(months), first, int(seed), params, keep_record=True)
    rec, static, n, m = run.record, run.static, int(households), int(months)
    sources_seed = np.random.SeedSequence(int(seed), spawn_key=(SOURCES_STREAM,))
    rng = np.random.default_rng(sources_seed)
    cadres = np.random.default_rng(np.random.SeedSequence(int(seed),
                                                          spawn_key=(SOURCES_STREAM, 1)))
    persons = make_persons(rec, static, first, m, BURN_IN, rng, params)
    if obs.regime == "annual":                 # no migrant table: the person table tells all
        persons.shows_working[:] = True
    p = len(persons)
    hh = persons.hh
    starts = np.r_[0, np.cumsum(np.bincount(hh, minlength=n))[:-1]]
    heads = starts.copy()
    by_serious = np.empty(p, np.int64)
    by_serious[starts[hh] + persons.key_serious] = np.arange(p)
    by_disabled = np.empty(p, np.int64)
    by_disabled[starts[hh] + persons.key_disabled] = np.arange(p)
    step0 = first - BURN_IN
    others = department_events(rec, static, step0, heads, starts, by_disabled, obs, rng)
    steps = rec["monitored"].shape[0]
    seen = observe(rec, static, first, BURN_IN, obs,
                   arrivals(others, set(obs.warning_departments) - {"医保"}, (steps, n)),
                   cadres)
    events = pd.concat([medical_events(rec, static, seen, heads, by_serious[starts], obs),
                        others], ignore_index=True)
    mon = monitoring(rec, static, m, BURN_IN, seen, events, obs)
    ann = annual(rec, static, first, m, BURN_IN, obs.verification_month, seen.snapshot)
    wage = migrant_wage(static, first, m)
    warn = warnings_table(events, m, BURN_IN)
    counties, towns, villages = places(params)
    village = static["village"]
    per_county, per_town = len(villages) // len(counties), len(villages) // len(towns)
    place_text = {
        "province": np.full(n, PROVINCE, dtype=object),
        "county": np.asarray(counties, dtype=object)[village // per_county],
        "township": np.asarray(towns, dtype=object)[village // per_town],
        "village": np.asarray(villages, dtype=object)[village],
    }
    code = persons.household_code
    blank_type = rng.random(n) < 0.3
    writer = _Writer(rng, config, xlsx_max_rows)
    counts = {c: np.zeros((m, n), np.int16) for c in _COUNTS}
    wage_mig = np.zeros((m, n))
    for k in range(m):
        s = BURN_IN + k
        pm = person_month(persons, rec, static, k, BURN_IN, _pick(rng, ["、", ","]))
        pm["age_b"] = (first + k - persons.birth) // 12
        for c, v in _aggregate(pm, hh, n).items():
            counts[c][k] = v
        wrong = [c for c in _COUNTS if not np.array_equal(counts[c][k], rec[f"count_{c}"][s])]
        if wrong:
            raise RuntimeError(f"Persons of {month_label(first + k)} do not add up to the "
                               f"simulated {wrong[0]}.")
        folder = month_label(first + k)
        month_fmt = _pick(rng, ["yyyymm", "yyyymm", "dash", "cn", "yyyymmdd"])
        cols = person_columns(persons, pm, rec, static, mon, ann, k, BURN_IN, first, month_fmt,
                              place_text, blank_type, rng)
        in_name = rng.random() < 0.6
        writer.write(folder, _pick(rng, ["监测对象信息", "脱贫人口信息"]),
                     f"{place_text['county'][0]}防止返贫监测对象信息表", first + k, cols,
                     in_name, not in_name or rng.random() < 0.3)
        if obs.regime == "annual":
            continue
        mig_cols, wage_mig[k] = migrant_columns(persons, pm, wage[k], first + k, n, rng)
        in_name = rng.random() < 0.6
        writer.write(folder, "务工监测", "务工月监测信息", first + k, mig_cols, in_name,
                     not in_name or rng.random() < 0.3)
    if obs.regime == "annual":
        # No list reaches the county: no events, no counts, no amounts.
        unmatched, written, marks = 0, 0, _warned(warn.iloc[:0], first, m, n, config)
        wage_mig[:] = np.nan
    else:
        unmatched = _write_warnings(writer, warn, persons, first, m, rng, obs.warning_delays)
        written, marks = len(warn) + unmatched, _warned(warn, first, m, n, config)
    expected = _expected(counts, code, rec, static, mon, ann, wage_mig, marks, place_text,
                         first, m)
    ids = pd.DataFrame({"household_id": _household_ids(n, 1).to_numpy(dtype=object),
                        "source_household_id": code})
    labels = [month_label(first + k) for k in range(m)]
    return CountySources(writer.files, expected, ids, p, written, unmatched, labels, obs,
                         trigger_frame(seen.log, code, step0),
                         _latent(seen.latent, code, first, m))


def _latent(latent: np.ndarray, code: np.ndarray, first: int, months: int) -> pd.DataFrame:
    """The latent per-capita income of each household and ledger month, beside the line."""
    n = len(code)
    ledger = latent[BURN_IN:BURN_IN + months]
    lines = np.array([policy_line((first + k) // 12) for k in range(months)])
    return pd.DataFrame({
        "household_id": pd.Series(np.repeat(code, months), dtype="str"),
        "month": pd.Series(np.tile([month_label(first + k) for k in range(months)], n),
                           dtype="str"),
        "income_pc": np.ascontiguousarray(ledger.T).reshape(-1),
        "line": np.tile(lines, n),
    })


_COUNTS = ["members", "labor_full", "labor_partial", "elderly", "children",
           "students_compulsory", "students_noncompulsory", "chronic_ill", "serious_ill",
           "disabled", "disabled_severe", "migrant_workers", "dropouts"]


def _aggregate(pm: dict, hh: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The household counts of one month's persons, by the rules ingest reads them with."""

    def count(mask):
        return np.bincount(hh[mask], minlength=n).astype(np.int16)

    labor, school, health = pm["labor"], pm["schooling"], pm["health"]
    noncompulsory = np.isin(school, ["高中一年级", "高中二年级", "高中三年级", "中职一年级",
                                     "中职二年级", "中职三年级", "高职高专一年级",
                                     "高职高专二年级", "高职高专三年级", "本科一年级",
                                     "本科二年级", "本科三年级", "本科四年级", "本科五年级"])
    compulsory = (school != "") & (school != "学龄前儿童") & (school != "学前教育") & ~noncompulsory
    has = {c: np.char.find(health.astype(str), c) >= 0 for c in ("长期慢性病", "患大病", "残疾")}
    return {
        "members": count(np.ones(len(hh), bool)),
        "labor_full": count(np.isin(labor, ["普通劳动力", "技能劳动力"])),
        "labor_partial": count(labor == "弱劳动力或半劳动力"),
        "elderly": count(pm["age_b"] >= 60),
        "children": count(pm["age_b"] < 16),
        "students_compulsory": count(compulsory),
        "students_noncompulsory": count(noncompulsory),
        "chronic_ill": count(has["长期慢性病"]),
        "serious_ill": count(has["患大病"]),
        "disabled": count(has["残疾"]),
        "disabled_severe": count(has["残疾"] & np.isin(pm["grade"], ["一级", "二级"])),
        "migrant_workers": count(pm["working"]),
        "dropouts": count(pm["dropout"]),
    }


def _write_warnings(writer: _Writer, warn: pd.DataFrame, persons, first: int, months: int,
                    rng: np.random.Generator, delays) -> int:
    """One list per department and month with warnings, and a few about nobody in the tables.

    Returns the number of those unmatched rows.
    """
    unmatched = 0
    for k in range(months):
        month_rows = warn[warn["known"] == k]
        for dept in DEPARTMENTS:
            rows = month_rows[month_rows["department"] == dept]
            cols = warning_columns(rows, persons, first, rng) if len(rows) else None
            if dept in ("公安", "医保") and rng.random() < 0.3:
                # Someone the department knows and the person table does not hold.
                extra = {"household_id": np.array([""], object),
                         "person_id": fake_ids(1, rng), "name": np.array(["张某"], object),
                         "warning_month": month_text([first + k], "yyyymm"),
                         "department": np.array([dept], object),
                         "warning_item": np.array(["意外伤害" if dept == "公安" else
                                                   "年度累计合规自付医疗费用超过20000元"], object)}
                if dept == "医保":
                    extra["amount"] = np.array([23456.0])
                cols = extra if cols is None else {
                    c: np.concatenate([v, extra.get(c, np.full(1, np.nan))])
                    for c, v in cols.items()}
                unmatched += 1
            if cols is None:
                continue
            # A late list always carries its month; an on-time one may carry none.
            dated = delays.get(dept, 0) > 0 or rng.random() < 0.6
            in_name = dated and rng.random() < 0.6
            writer.write(month_label(first + k), f"部门预警_{dept}",
                         f"{dept}部门筛查预警信息", first + k if dated else None, cols,
                         in_name, dated and not in_name)
    return unmatched


def _warned(warn: pd.DataFrame, first: int, months: int, n: int,
            config: Config) -> dict[str, np.ndarray]:
    """Per warning-rule column, the household-months (months × households) a warning marks."""
    out: dict[str, np.ndarray] = {}
    rules = config.sources.warning_rules
    column = np.full(len(warn), "", dtype=object)
    for (dept, item), idx in warn.groupby(["department", "item"], sort=True).groups.items():
        for rule in rules:
            if rule.department == dept and (not rule.keywords
                                            or any(w in item for w in rule.keywords)):
                column[np.asarray(idx)] = rule.column
                break
    for col in set(column) - {""}:
        mark = np.zeros((months, n), bool)
        rows = warn[column == col]
        mark[rows["known"].to_numpy(), rows["household"].to_numpy()] = True
        out[col] = mark
    # The warnings a rule matched, counted per department, and the amounts they carried.
    ruled = warn[column != ""]
    at = (ruled["known"].to_numpy(), ruled["household"].to_numpy())
    code = ruled["department"].map(config.sources.departments).to_numpy(dtype=object)
    for dept in DEPARTMENT_CODES:
        count = np.zeros((months, n), np.int16)
        np.add.at(count, (at[0][code == dept], at[1][code == dept]), 1)
        out[f"warnings_{dept}"] = count
    amount = ruled["amount"].to_numpy(dtype=np.float64)
    paid = ~np.isnan(amount)
    total, carried = np.zeros((months, n)), np.zeros((months, n), bool)
    np.add.at(total, (at[0][paid], at[1][paid]), amount[paid])
    carried[at[0][paid], at[1][paid]] = True
    out["warning_amount"] = np.where(carried, total, np.nan)
    return out


def _expected(counts: dict, code: np.ndarray, rec: dict, static: dict, mon, ann: dict,
              wage_mig: np.ndarray, events: dict, place_text: dict, first: int,
              months: int) -> pd.DataFrame:
    """The household-month ledger an ingest of the folder gives (spec of docs/sources.md)."""
    n = len(code)
    steps = slice(BURN_IN, BURN_IN + months)
    rows = n * months
    step0 = first - BURN_IN

    def long(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(a).T).reshape(-1)

    def text(values: np.ndarray) -> pd.Series:
        return pd.Series(values, dtype="str")

    def none(mark: str) -> np.ndarray:
        return events.get(mark, np.zeros((months, n), bool))

    ident, elim = mon.identified, mon.eliminated
    monitored = (ident >= 0) & ~elim
    htype = np.where(monitored, "monitored",
                     np.where(static["exited"], "exited", "general")[None, :])
    labels = np.asarray([month_label(first + k) for k in range(months)], dtype=object)
    frame: dict[str, object] = {
        "household_id": text(np.repeat(code, months)),
        "month": text(np.tile(labels, n)),
        **{c: text(np.repeat(place_text[c], months)) for c in _PLACES},
        "household_type": text(long(htype)),
    }
    for c in _COUNTS:
        frame[c] = long(counts[c]).astype(np.int16)
    nan = np.full(rows, np.nan)
    for c in [*INCOME, *SPENDING, "temp_assistance"]:
        frame[c] = nan.copy()
    frame["insured_all"] = pd.array(np.full(rows, None), dtype="boolean")
    frame["housing_safe"] = pd.array(long(rec["housing_safe"][steps] & ~none("housing_unsafe")),
                                     dtype="boolean")
    frame["water_safe"] = pd.array(long(static["water_safe"][None, :] & ~none("water_unsafe")),
                                   dtype="boolean")
    frame["dibao"] = long(rec["dibao"][steps] | none("dibao"))
    frame["welfare_job"] = long(rec["wjob"][steps])
    for e in EVENTS:
        frame[e] = long(none(e))
    frame["wage_migrant"] = long(wage_mig)
    for c in ANNUAL:
        frame[c] = long(ann[c]).astype(np.float64)
    frame["annual_income_year"] = pd.array(long(ann["annual_income_year"]), dtype="Int64")
    values = np.stack([ann[c] for c in ANNUAL] + [ann["annual_income_year"]])
    changed = np.ones((months, n), bool)
    changed[1:] = (values[:, 1:] != values[:, :-1]).any(0)
    run_start = np.maximum.accumulate(np.where(changed, np.arange(months)[:, None], 0), axis=0)
    frame["annual_recorded_month"] = text(long(labels[run_start]))
    frame["identified_month"] = text(long(np.where(ident >= 0, month_label(
        np.maximum(step0 + ident, 0)), None)))
    frame["eliminated_month"] = text(long(np.where(elim, month_label(
        np.maximum(step0 + mon.eliminated_step, 0)), None)))
    category = np.asarray([c for _, c in CATEGORIES] + [None], dtype=object)
    frame["monitoring_category"] = text(long(category[mon.category]))
    codes = np.asarray([c for _, c in RISKS] + [None], dtype=object)
    for q in range(5):
        frame[f"recorded_risk_{q + 1}"] = text(long(codes[mon.risks[q]]))
    for dept in DEPARTMENT_CODES:
        frame[f"warnings_{dept}"] = long(events[f"warnings_{dept}"])
    frame["warning_amount"] = long(events["warning_amount"])
    out = pd.DataFrame(frame)
    return out[[*LEDGER_COLUMNS, *EXTRA_COLUMNS]]


def sources_expected(households: int, months: int, start: str = "2022-01", seed: int = 0, *,
                     verification_month: int | None = None,
                     observation: Observation | None = None,
                     config: Config | None = None) -> pd.DataFrame:
    """The ledger ``riskmodel ingest`` must give on the folder :func:`write_sources` writes.

    The ``expected`` of :func:`county_sources` for the same arguments (see there).

    Returns
    -------
    DataFrame
        Ledger contract columns then the recorded ones; counts and flags equal the latent
        ledger's (:func:`generate_ledger`) in every household-month, events are those the
        warnings show in the month their list arrives, incomes are NaN (only annual figures
        and migrant wages are recorded); ``household_type`` is monitored as the cadres of
        ``observation`` identify and eliminate.
    """
    return county_sources(households, months, start, seed,
                          verification_month=verification_month, observation=observation,
                          config=config).expected


def write_sources(sources: CountySources, directory: str | Path,
                  expected_path: str | Path | None = None) -> list[Path]:
    """Write the folder of exports (and the expected ledger, outside it), atomically.

    The files go into a hidden folder beside ``directory`` that is renamed into place when all
    are written: a failure leaves nothing.

    Parameters
    ----------
    sources : CountySources
        What :func:`county_sources` returned.
    directory : str or Path
        The county's folder; must not exist, or be empty.
    expected_path : str or Path, optional
        Where the expected ledger goes (Parquet); must not lie inside ``directory``.

    Returns
    -------
    list of Path
        The files written, expected ledger last.

    Raises
    ------
    OutputExistsError
        ``directory`` holds files already.
    ArgumentError
        ``expected_path`` inside ``directory`` or not ending in ``.parquet``.
    """
    check_sources_paths(directory, expected_path)
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    try:
        for rel, content in sorted(sources.files.items()):
            path = temp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        if directory.exists():
            directory.rmdir()
        os.replace(temp, directory)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(temp)
        raise
    written = [directory / rel for rel in sorted(sources.files)]
    if expected_path is not None:
        expected_path = Path(expected_path)
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_parquet_atomic(sources.expected, expected_path))
    return written


def check_sources_paths(directory: str | Path, expected_path: str | Path | None = None,
                        others: list | None = None) -> None:
    """Refuse a sources folder and expected-ledger path :func:`write_sources` cannot honour.

    Parameters
    ----------
    directory : str or Path
        The sources folder: new, or an empty folder.
    expected_path : str or Path, optional
        The expected ledger: a ``.parquet`` name outside ``directory``.
    others : list of str or Path, optional
        Files the same run writes (ledger, truth), which the expected ledger must not be.

    Raises
    ------
    OutputExistsError
        ``directory`` exists and is not an empty folder (exit code 4).
    ArgumentError
        ``expected_path`` badly named, inside ``directory`` or one of ``others``.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise OutputExistsError(f"Got --sources {directory}, which exists and is not an empty "
                                "folder; choose a new folder.")
    if expected_path is None:
        return
    expected = Path(expected_path)
    if expected.suffix.lower() != ".parquet":
        raise ArgumentError(f"Got {expected}, expected a file name ending in .parquet.")
    if directory.resolve() in expected.resolve().parents:
        raise ArgumentError(f"Got {expected} inside the sources folder {directory}; the "
                            "expected ledger goes outside it.")
    if any(o is not None and Path(o).resolve() == expected.resolve() for o in others or []):
        raise ArgumentError(f"Got {expected} for the expected ledger and another output; "
                            "expected another file.")
