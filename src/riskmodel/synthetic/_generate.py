"""A synthetic monitoring ledger that knows its own truth.

No real ledger leaves a county office, so the project is built and measured on this one. The
households, their shocks and the cadres' responses come from :mod:`riskmodel.synthetic._simulate`;
this module runs them month by month into a ledger with every contract column, hides the months
without a visit as real ledgers do, and, at chosen months, computes the truth a real ledger
hides: each household's true risk of falling below the line, what each cause contributes to it,
and what each form of assistance would change, by Monte Carlo from the full latent state.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import Config, load_config
from ..errors import ArgumentError, ConfigError
from ..ledger import EVENTS, INCOME, LEDGER_COLUMNS, SPENDING, temp_beside
from ..model import make_labels
from ..months import month_label, month_number
from ._knobs import DEFAULT_KNOBS, Knobs, missed_visit
from ._population import populate
from ._process import Process, resolve_process
from ._rates import base_rates, share_text
from ._simulate import (
    CAUSE_EVENTS,
    CAUSES,
    PROVINCE,
    Params,
    _Run,
    composition,
    draw,
    paths,
    places,
    step,
)
from ._truth import monte_carlo, net_income, qualify, true_cause

BURN_IN = 12
_COUNT_COLUMNS = ["members", "labor_full", "labor_partial", "elderly", "children",
                  "students_compulsory", "students_noncompulsory", "chronic_ill", "serious_ill",
                  "disabled", "disabled_severe", "migrant_workers", "dropouts"]
_MONEY = [*INCOME, *SPENDING, "temp_assistance"]
_STATE_FLAGS = ["insured_all", "housing_safe", "water_safe", "dibao", "welfare_job"]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_size(households: object, months: object, seed: object) -> None:
    for name, value in (("households", households), ("months", months)):
        if not _is_int(value) or value < 1:
            raise ArgumentError(f"Got {name}={value!r}, expected a positive integer.")
    _check_seed(seed)


def _check_seed(seed: object, name: str = "seed") -> None:
    if not _is_int(seed) or seed < 0:
        raise ArgumentError(f"Got {name}={seed!r}, expected an integer ≥ 0.")


def _check_lines(first: int, months: int, config: Config, params: Params) -> None:
    """Every year of the ledger needs a monitoring line: the truth and the figures use them."""
    counties = places(params)[0]
    for year in range(first // 12, (first + months - 1) // 12 + 1):
        try:
            for county in counties:
                config.line_for(year, province=PROVINCE, county=county)
        except ConfigError as exc:
            raise ConfigError(
                f"Got a ledger from {month_label(first)} to {month_label(first + months - 1)}: "
                f"{exc} Choose months within those years, or add lines to the config."
            ) from None


@dataclass
class SyntheticData:
    """A synthetic ledger and its truth.

    Attributes
    ----------
    ledger : DataFrame
        What :func:`generate_ledger` returns for the same arguments.
    truth : DataFrame or None
        One row per ledger row, in the same order (see :func:`generate`); None when generated
        without it.
    config : Config or None
        The configuration the truth was computed with (the packaged default when None).
    process : Process or None
        The process that wrote them (the default process when None).
    """

    ledger: pd.DataFrame
    truth: pd.DataFrame | None
    config: Config | None = field(default=None, repr=False)
    process: Process | None = field(default=None, repr=False)

    def describe(self) -> list[str]:
        """The plausibility figures of :func:`base_rates` as lines of text, for the command."""
        config = load_config() if self.config is None else self.config
        r = base_rates(self.ledger, config, self.truth)
        months = self.ledger["month"]
        # A short ledger has no known poverty (it needs observed months) or no label.
        poor = (f"{r['poor_share']:.1%} of household-months whose poverty is known "
                "(plausible: 10–20%)" if not np.isnan(r["poor_share"]) else
                f"unknown, no household-month has the {config.label.min_observed_months} "
                "observed months an annual income needs")
        fall = (f"{share_text(r['fall_rate_same_line'])} of the non-poor over months under "
                "one line "
                f"(plausible: 2–6%); {share_text(r['fall_rate'])} over all months"
                if not np.isnan(r["fall_rate"]) else
                "unknown, no month has a label (its poverty known and the "
                f"{config.label.horizon_months} months after it in the ledger)")
        lines = [
            f"ledger: {r['households']:,.0f} households × {r['months']:.0f} "
            f"month{'' if r['months'] == 1 else 's'} "
            f"({months.iloc[0]} … {months.iloc[-1]}); {r['unvisited_share']:.1%} of "
            "household-months not visited",
            f"poor: {poor}",
            f"fall below the line within the horizon: {fall}",
            f"低保 {r['dibao_share']:.1%}, public-welfare jobs {r['welfare_job_share']:.1%}, "
            f"monitored {r['monitored_share']:.1%} of household-months",
            "events per household-year: " + ", ".join(
                f"{e[3:]} {r[f'{e}_per_year']:.3f}" for e in EVENTS),
        ]
        if self.truth is not None:
            lines.append(
                f"complete data: poor {share_text(r['poor_share_complete'])}, fall "
                f"{share_text(r['fall_rate_complete_same_line'])} (months under one line)")
            at = self.truth.loc[self.truth["true_risk"].notna(), "month"].unique().tolist()
            if at:
                causes = ", ".join(f"{c} {r[f'true_cause_{c}']:.0%}"
                                   for c in [*CAUSES, "structural"]
                                   if not np.isnan(r[f"true_cause_{c}"])) or "no household"
                lines.append(f"truth at {', '.join(at)}: mean true risk of the non-poor "
                             f"{share_text(r['true_risk_not_poor'])}; true causes where it is at "
                             f"least 0.25: {causes}")
        return lines


# What ``keep_record`` keeps of the state and of the flows, month by month.
_RECORD_STATE = ("age", "school", "dropouts", "a_full", "dis_sev_adults", "dis_mild_adults",
                 "mig_employed", "mig_unemployed", "monitored", "dibao", "wjob", "housing_safe")
_RECORD_FLOWS = (*INCOME, *SPENDING, *EVENTS)


def _simulate(households: int, months: int, start: int, seed: int, params: Params,
              snapshot_at: tuple[int, ...] = (), keep_losses: bool = False,
              keep_record: bool = False, knobs: Knobs = DEFAULT_KNOBS) -> _Run:
    """Run the households through a burn-in year and the ledger's months, keeping every month."""
    seeds = np.random.SeedSequence(seed).spawn(3)
    static, state = populate(households, np.random.default_rng(seeds[0]), params, knobs)
    month_rng = np.random.default_rng(seeds[1])
    visit_rng = np.random.default_rng(seeds[2])
    n_villages = len(places(params)[2])
    pth = paths(static, 1, n_villages, params.counties)
    cols: dict[str, np.ndarray] = {}
    for name in _COUNT_COLUMNS:
        cols[name] = np.empty((months, households), np.int16)
    for name in _MONEY:
        cols[name] = np.empty((months, households), np.float32)
    for name in [*EVENTS, *_STATE_FLAGS, "monitored"]:
        cols[name] = np.empty((months, households), bool)
    visited = np.empty((months, households), bool)
    losses = np.zeros((months, len(CAUSES), households), np.float32) if keep_losses else None
    snapshots = {}
    kept: dict[str, list[np.ndarray]] = {}
    for k, t in enumerate(range(start - BURN_IN, start + months)):
        d = draw(month_rng, households, n_villages, params.counties, knobs.extra)
        flows = step(pth, state, t, d, params, knobs)
        visit = visit_rng.random(households, dtype=np.float32)
        if keep_record:
            for name in _RECORD_STATE:
                kept.setdefault(name, []).append(state[name].copy())
            for name in _RECORD_FLOWS:
                kept.setdefault(name, []).append(np.asarray(flows[name]).copy())
            for name, values in composition(state, pth).items():
                kept.setdefault(f"count_{name}", []).append(np.asarray(values).copy())
        i = k - BURN_IN
        if i < 0:
            continue
        visited[i] = visit >= (missed_visit(pth["visit"], t % 12, state, knobs)
                               if knobs.visits_vary else pth["visit"])
        for name, values in composition(state, pth).items():
            cols[name][i] = values
        for name in [*_MONEY, *EVENTS]:
            cols[name][i] = flows[name]
        cols["insured_all"][i] = pth["insured"]
        cols["housing_safe"][i] = state["housing_safe"]
        cols["water_safe"][i] = pth["water_safe"]
        cols["dibao"][i] = state["dibao"]
        cols["welfare_job"][i] = state["wjob"]
        cols["monitored"][i] = state["monitored"]
        if losses is not None:
            for j, cause in enumerate(CAUSES):
                losses[i, j] = flows[f"loss_{cause}"]
        if t in snapshot_at:
            snapshots[t] = {key: v.copy() for key, v in state.items()}
    record = {name: np.stack(v) for name, v in kept.items()} if keep_record else None
    return _Run(start, months, static, cols, visited, snapshots, losses, record)


def _fixed_width_strings(codes: np.ndarray, width: int) -> pd.Series:
    """Equal-length ASCII strings (rows of ``codes`` as bytes) as a pandas string column."""
    n = len(codes)
    offsets = np.arange(0, n * width + 1, width, dtype=np.int64)
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets),
                                           pa.py_buffer(np.ascontiguousarray(codes)))
    return pd.Series(arr, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def _household_ids(households: int, months: int) -> pd.Series:
    digits = max(7, len(str(households)))
    number = np.arange(1, households + 1, dtype=np.int64)[:, None]
    codes = np.empty((households, digits + 1), np.uint8)
    codes[:, 0] = ord("H")
    codes[:, 1:] = (number // 10 ** np.arange(digits - 1, -1, -1)) % 10 + ord("0")
    return _fixed_width_strings(np.repeat(codes, months, axis=0), digits + 1)


def _month_labels(start: int, households: int, months: int) -> pd.Series:
    idx = np.arange(start, start + months)
    text = np.array([f"{m // 12:04d}-{m % 12 + 1:02d}" for m in idx], dtype="S7")
    codes = np.frombuffer(text.tobytes(), np.uint8).reshape(months, 7)
    return _fixed_width_strings(np.tile(codes, (households, 1)), 7)


def _ledger(run: _Run, params: Params, complete: bool = False) -> pd.DataFrame:
    """Lay the months out as ledger rows, household by household, month by month."""
    n, m = run.static["members"].shape[0], run.months
    counties, towns, villages = places(params)
    village = np.repeat(run.static["village"], m)
    per_county = len(villages) // len(counties)
    per_town = len(villages) // len(towns)

    def long(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.T).reshape(-1)

    type_code = np.where(run.columns["monitored"], 1,
                         np.where(run.static["exited"], 0, 2)[None, :]).astype(np.int8)
    frame: dict[str, object] = {
        "household_id": _household_ids(n, m),
        "month": _month_labels(run.start, n, m),
        "province": pd.Categorical.from_codes(np.zeros(n * m, np.int8), [PROVINCE]),
        "county": pd.Categorical.from_codes(village // per_county, counties),
        "township": pd.Categorical.from_codes(village // per_town, towns),
        "village": pd.Categorical.from_codes(village, villages),
        "household_type": pd.Categorical.from_codes(long(type_code),
                                                    ["exited", "monitored", "general"]),
    }
    hidden = None if complete else long(~run.visited)
    for name in [c for c in LEDGER_COLUMNS if c not in frame]:
        values = long(run.columns[name])
        if name in _MONEY:
            values = values.astype(np.float64)
            if hidden is not None and name in (*INCOME, *SPENDING):
                values[hidden] = np.nan
        frame[name] = values
    return pd.DataFrame(frame, copy=False)


def generate_ledger(households: int, months: int, start: str = "2022-01",
                    seed: int = 0, process: str | Path | Process | None = None) -> pd.DataFrame:
    """Generate a synthetic monitoring ledger: ``households`` × ``months`` rows.

    Households of a 云南省 county area (three counties, five townships each, eight villages
    per township) are simulated month by month after a burn-in year: their make-up, incomes by
    source, rigid spending, shocks (illness, accident and disability, schooling, village
    disasters, job loss, business collapse, epidemics) and the cadres' lagged responses
    (低保, public-welfare jobs, temporary assistance, monitoring). About 13% of household-months
    were not visited: their income and spending cells are empty, the rest stays filled.
    The process is documented in ``docs/synthetic.md``.

    Parameters
    ----------
    households : int
        Number of households.
    months : int
        Number of months, from ``start``.
    start : str, default "2022-01"
        First month, ``YYYY-MM``.
    seed : int, default 0
        Seed, an integer ≥ 0; the same arguments give the same ledger. A longer ledger with the
        same seed and start extends a shorter one.
    process : str, Path or Process, optional
        The household process: a packaged name (:data:`PROCESSES`), a specification's YAML
        file, or what :func:`load_process` returned; None or ``"default"`` is the default
        process described above.

    Returns
    -------
    DataFrame
        Every contract column of the ledger, sorted by household and month. Places and
        household type are categorical, counts ``int16``, amounts ``float64`` (NaN where the
        month was not visited), flags ``bool``; it passes :func:`riskmodel.validate_ledger`
        with no row quarantined.

    Raises
    ------
    ArgumentError
        A size, seed or start out of range (a ``ValueError``).

    Examples
    --------
    >>> from riskmodel.synthetic import generate_ledger
    >>> ledger = generate_ledger(households=20, months=3, seed=1)
    >>> ledger.shape
    (60, 40)
    >>> ledger[["household_id", "month"]].iloc[3].tolist()
    ['H0000002', '2022-01']
    """
    _check_size(households, months, seed)
    proc = resolve_process(process)
    first = month_number(start, "start", ArgumentError)
    run = _simulate(int(households), int(months), first, int(seed), proc.params,
                    knobs=proc.knobs)
    return _ledger(run, proc.params)


def _truth_frame(run: _Run, complete: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Complete-data poverty, the label and recent shocks of every household-month."""
    labels = make_labels(complete, config)
    truth = pd.DataFrame({
        "household_id": complete["household_id"],
        "month": complete["month"],
        "net_income_complete": np.ascontiguousarray(net_income(run.columns).T).reshape(-1),
        "income_pc_complete": labels["income_pc"].to_numpy(),
        "poor_complete": labels["poor"].array,
        "target_complete": labels["target"].to_numpy(),
    })
    for cause, event in CAUSE_EVENTS.items():
        hit = run.columns[event]
        recent = hit.copy()
        recent[1:] |= hit[:-1]
        recent[2:] |= hit[:-2]
        truth[f"shock_{cause}_3m"] = np.ascontiguousarray(recent.T).reshape(-1)
    return truth


def generate(households: int, months: int, start: str = "2022-01", seed: int = 0,
             truth_months: list[str] | tuple[str, ...] | None = None,
             config: Config | None = None, grant_amounts: tuple[float, ...] = (1500,),
             replicas: int = 200, with_truth: bool = True,
             truth_seed: int | None = None,
             process: str | Path | Process | None = None) -> SyntheticData:
    """Generate a synthetic ledger with its truth.

    The ledger is exactly :func:`generate_ledger`'s for the same arguments. The truth has one
    row per ledger row, in the same order:

    - at every household-month, from complete (unmasked) data: ``net_income_complete`` (the
      month's incomes less rigid spending) and, through :mod:`riskmodel.model._labels`,
      ``income_pc_complete``, ``poor_complete``, ``target_complete`` (the label for the
      horizon); and ``shock_<cause>_3m`` (a new shock of the cause in the last three months);
    - at the truth months, by Monte Carlo from the full latent state (``replicas`` futures per
      household of the same process, common random numbers across scenarios): ``true_risk``,
      the probability of falling below the line within the horizon;
      ``true_risk_without_<cause>`` for each cause the simulator models, with that cause's
      losses of the last twelve months given back and its running burden ended;
      ``true_cause``, the cause whose removal lowers the risk most, or ``"structural"`` when
      none removes at least half of it; ``true_risk_grant_<amount>`` after a one-off grant
      paid next month; and ``true_risk_<measure>`` after each measure in
      ``config.measures`` (NaN where the household does not qualify). Other months hold NaN.

    Parameters
    ----------
    households, months, start, seed
        As for :func:`generate_ledger`.
    truth_months : list of str, optional
        Months (``YYYY-MM``, within the ledger) at which to compute the true risks. By default
        the last month with a full horizon ahead (none if the ledger is that short).
    config : Config, optional
        Lines, horizon and measures of the truth; the packaged default when omitted. The ledger
        itself does not depend on it. A process that sets its own lines puts them into it
        (:meth:`Process.apply_lines`): its cadres act on them.
    grant_amounts : tuple of float, default (1500,)
        One-off grants to price.
    replicas : int, default 200
        Monte Carlo futures per household; the standard error of ``true_risk`` is at most
        ``0.5 / sqrt(replicas)``.
    with_truth : bool, default True
        False skips the truth (``truth`` is None): the ledger alone, as fast as
        :func:`generate_ledger`.
    truth_seed : int, optional
        Seed of the Monte Carlo futures; ``seed`` when omitted. Another value gives the same
        ledger and an independent estimate of the same true risks: choosing households on one
        estimate and scoring them on the other shows how much a choice gains from the first
        estimate's noise.
    process : str, Path or Process, optional
        As for :func:`generate_ledger`.

    Returns
    -------
    SyntheticData

    Raises
    ------
    ArgumentError
        A size, seed, month, count of replicas or grant out of range; checked before anything
        is simulated. It is a ``ValueError``.
    ConfigError
        A year of the ledger without a monitoring line in ``config``: its truth and its figures
        (:meth:`SyntheticData.describe`) would have none to measure against.

    Examples
    --------
    >>> from riskmodel.synthetic import generate
    >>> data = generate(households=30, months=18, seed=2, replicas=20)
    >>> data.truth.dropna(subset=["true_risk"])["month"].unique().tolist()
    ['2022-12']
    """
    _check_size(households, months, seed)
    if truth_seed is not None:
        _check_seed(truth_seed, "truth_seed")
    if not _is_int(replicas) or replicas < 1:
        raise ArgumentError(f"Got replicas={replicas!r}, expected a positive integer.")
    grants = tuple(float(a) for a in grant_amounts)
    if any(not a > 0 for a in grants):
        raise ArgumentError(f"Got grant_amounts={grant_amounts!r}, expected positive amounts.")
    proc = resolve_process(process)
    config = proc.apply_lines(load_config() if config is None else config)
    params, knobs = proc.params, proc.knobs
    horizon = config.label.horizon_months
    first = month_number(start, "start", ArgumentError)
    _check_lines(first, int(months), config, params)
    if truth_months is None:
        at = [first + months - 1 - horizon] if months > horizon else []
    else:
        at = sorted({month_number(m, "truth_months", ArgumentError) for m in truth_months})
        outside = [m for m in at if not first <= m < first + months]
        if outside:
            raise ArgumentError(f"Got truth_months={list(truth_months)!r}, expected months "
                                f"within the ledger ({start} and the {months - 1} after).")
    if not with_truth:
        if truth_months is not None:
            raise ArgumentError("Got truth_months with with_truth=False; drop one of them.")
        run = _simulate(int(households), int(months), first, int(seed), params, knobs=knobs)
        return SyntheticData(_ledger(run, params), None, config, proc)
    run = _simulate(int(households), int(months), first, int(seed), params,
                    snapshot_at=tuple(at), keep_losses=bool(at), knobs=knobs)
    ledger = _ledger(run, params)
    truth = _truth_frame(run, _ledger(run, params, complete=True), config)
    names = ["true_risk", *[f"true_risk_without_{c}" for c in CAUSES],
             *[f"true_risk_grant_{a:g}" for a in grants],
             *[f"true_risk_{m.code}" for m in config.measures]]
    values = {name: np.full((households, months), np.nan) for name in names}
    cause = np.full((households, months), None, dtype=object)
    for t in at:
        risks = monte_carlo(run, t, config, grants, int(replicas),
                            int(seed if truth_seed is None else truth_seed), params, knobs)
        k = t - first
        for name, v in risks.items():
            values[name][:, k] = v
        values_at = {name: values[name][:, k] for name in names}
        qualify(values_at, run, k, config)
        cause[:, k] = true_cause(values_at)
    for name in names:
        truth[name] = values[name].reshape(-1)
    truth["true_cause"] = pd.array(cause.reshape(-1), dtype="string")
    return SyntheticData(ledger, truth, config, proc)


_FORMATS = (".parquet", ".csv")


def check_paths(ledger_path: str | Path, truth_path: str | Path | None = None) -> None:
    """Refuse the file names :func:`write` cannot honour, before anything is generated.

    Parameters
    ----------
    ledger_path, truth_path : str or Path
        As for :func:`write`.

    Raises
    ------
    ArgumentError
        A name ends neither in ``.parquet`` nor in ``.csv``, names an existing folder, or both
        name the same file.

    Examples
    --------
    >>> check_paths("ledger.parquet", "truth.csv")
    >>> from riskmodel.errors import ArgumentError
    >>> try:
    ...     check_paths("ledger.xlsx")
    ... except ArgumentError as exc:
    ...     print(exc)
    Got ledger.xlsx, expected a file name ending in .parquet or .csv.
    """
    paths = [Path(ledger_path)] + ([] if truth_path is None else [Path(truth_path)])
    for path in paths:
        if path.is_dir():
            raise ArgumentError(f"Got {path}, an existing folder; expected a file name ending in "
                                ".parquet or .csv.")
        if path.suffix.lower() not in _FORMATS:
            raise ArgumentError(f"Got {path}, expected a file name ending in .parquet or .csv.")
    if len(paths) == 2 and paths[0].resolve() == paths[1].resolve():
        raise ArgumentError(f"Got {paths[0]} for both the ledger and the truth, expected two "
                            "files.")


def _write_frame(frame: pd.DataFrame, path: Path, suffix: str) -> None:
    if suffix == ".csv":
        # With a BOM, as the watch list, so that Excel shows the Chinese place names.
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, path, compression="zstd", row_group_size=1_000_000)


def write(data: SyntheticData | pd.DataFrame, ledger_path: str | Path,
          truth_path: str | Path | None = None) -> None:
    """Write the ledger (and the truth) as Parquet or CSV, atomically and deterministically.

    The format follows the name: ``.parquet`` (zstd), or ``.csv`` (UTF-8 with BOM, the
    ledger reader's other format); :func:`check_paths` refuses any other name first. Each file
    is written beside its place and renamed into it only when every file is written, so a
    failure leaves neither a partial file nor a folder it made. The same data give
    byte-identical files (with the same versions of pandas and pyarrow).

    Parameters
    ----------
    data : SyntheticData or DataFrame
        What :func:`generate` returned, or a ledger alone.
    ledger_path : str or Path
        Where the ledger goes.
    truth_path : str or Path, optional
        Where the truth goes; needs ``data`` to be a :class:`SyntheticData`.

    Raises
    ------
    ArgumentError
        A file name :func:`check_paths` refuses, or a ``truth_path`` without a truth.
    """
    ledger = data.ledger if isinstance(data, SyntheticData) else data
    if truth_path is not None and (not isinstance(data, SyntheticData) or data.truth is None):
        raise ArgumentError("Got a truth_path but no truth; pass what generate() returned with "
                            "with_truth=True.")
    check_paths(ledger_path, truth_path)
    files = [(ledger, Path(ledger_path))]
    if truth_path is not None:
        files.append((data.truth, Path(truth_path)))
    made: list[Path] = []
    temps: list[Path] = []
    try:
        for frame, path in files:
            made += [folder for folder in path.parents if not folder.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            temps.append(temp_beside(path))
            _write_frame(frame, temps[-1], path.suffix.lower())
        for (_, path), temp in zip(files, temps, strict=True):
            os.replace(temp, path)
    except BaseException:
        for temp in temps:
            temp.unlink(missing_ok=True)
        for folder in sorted(set(made), key=lambda f: len(f.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
