"""The observation process: what a county's records show of the latent monthly process.

The simulator's households live month by month (:mod:`._simulate`); a county sees them through
its records. :class:`Observation` holds every parameter of that seeing, and :func:`observe`
runs it over the simulator's record (the burn-in year and the ledger's months), household-
vectorised, one step per month:

1. **Triggers.** A *fall* — the first month of a run in which the household's latent income
   (the per-capita income of the 12 months up to that month, from the complete flows, as a
   recording that month would write it) is below the cadres' line — or a department's warning
   arriving (one of ``warning_departments``, while the latent income is below
   ``warning_income_ratio`` × line) sends the cadres to a household not being monitored.
   Each trigger is missed with probability ``miss_rate``; otherwise the household is
   identified ``lag`` months later, ``lag = lag_min_months + Binomial(lag_max_months −
   lag_min_months, q)`` with ``q`` giving the mean ``lag_mean_months`` (an earlier pending
   identification stands).
2. **Verification.** In ``verification_month``, a household not monitored whose verified
   per-capita income (the previous calendar year) is below the line of the current year is
   identified that month (``verification_identifies``): the verification is on the record.
3. **Elimination.** A household monitored for ``elimination_months`` or more whose latent income
   is back at the line or above is eliminated at a review (each month with probability
   ``elimination_review_rate``, and at every verification); the elimination records the 12
   months up to it, so its recorded income is at the line or above.
4. **Warnings.** 医保 lists a person the month the household's year-to-date out-of-pocket
   medical cost first reaches ``medical_threshold_listed`` (exited or monitored households) or
   ``medical_threshold_others``; a department's list arrives ``warning_delays[dept]`` months
   after the month it reports; a share ``unlisted_share[dept]`` of each department's events
   reaches no list.

Nothing here draws from the simulator's generator: the draws come from the sources' own stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..errors import ArgumentError
from ..ledger import INCOME
from ..months import month_label
from ._simulate import policy_line

REGIMES = ("sources", "annual")
#: Departments whose lists exist (部门筛查预警), in the order their files are written.
DEPARTMENTS = ("医保", "民政", "教育", "公安", "应急", "残联", "人社", "住建", "水利")


def _delays() -> dict[str, int]:
    return {"医保": 1, "残联": 1, "人社": 1}


def _unlisted() -> dict[str, float]:
    return {"公安": 0.2}


@dataclass(frozen=True)
class Observation:
    """Parameters of what the county's sources show of the simulated households.

    Parameters
    ----------
    regime : {"sources", "annual"}, default "sources"
        ``"sources"``: person tables, migrant tables and warning lists are written.
        ``"annual"``: person tables alone (annual verification only): no migrant table, no
        warning list, every working migrant marked 是否已务工 是 in the person table. The
        cadres' process (identification, risk types) is the same in both, so that both regimes
        of one seed carry the same records.
    verification_month : int, default 3
        Calendar month (1–12) of the yearly income verification (the previous calendar year).
    lag_min_months, lag_mean_months, lag_max_months : int, float, int, default 1, 2.5, 6
        Months from a trigger to the identification: ``lag_min + Binomial(lag_max − lag_min,
        (lag_mean − lag_min) / (lag_max − lag_min))``.
    miss_rate : float, default 0.2
        Probability that a trigger (a fall or a warning) leads to no identification.
    warning_departments : tuple of str, default 医保, 教育, 公安, 应急, 残联, 人社, 住建
        Departments whose warnings send the cadres to a household (民政's new 低保 and 水利's
        water lists do not).
    warning_income_ratio : float, default 1.5
        A warning triggers only while the latent income is below this multiple of the line.
    verification_identifies : bool, default True
        Whether the yearly verification identifies the households it finds below the line.
    elimination_months : int, default 6
        Months of monitoring before a household may be eliminated.
    elimination_review_rate : float, default 0.25
        Monthly probability that the cadres review a household eligible for elimination
        (every eligible household is reviewed at the verification).
    risk_window_months : int, default 12
        Warnings known within this many months up to the identification count as evidence
        for the recorded risk types.
    sudden_window_months : int, default 3
        A 医保, 公安 or 应急 warning within this many months makes a general household
        突发严重困难户.
    medical_threshold_listed, medical_threshold_others : float, default 5000, 20000
        Year-to-date out-of-pocket medical cost (yuan) that puts a person on 医保's list:
        exited or monitored households, others.
    warning_delays : dict of str to int, default 医保 1, 残联 1, 人社 1 (others 0)
        Months a department's list arrives after the month it reports.
    unlisted_share : dict of str to float, default 公安 0.2 (others 0)
        Share of a department's events that reach no list.
    """

    regime: str = "sources"
    verification_month: int = 3
    lag_min_months: int = 1
    lag_mean_months: float = 2.5
    lag_max_months: int = 6
    miss_rate: float = 0.2
    warning_departments: tuple[str, ...] = ("医保", "教育", "公安", "应急", "残联", "人社",
                                            "住建")
    warning_income_ratio: float = 1.5
    verification_identifies: bool = True
    elimination_months: int = 6
    elimination_review_rate: float = 0.25
    risk_window_months: int = 12
    sudden_window_months: int = 3
    medical_threshold_listed: float = 5000.0
    medical_threshold_others: float = 20000.0
    warning_delays: Mapping[str, int] = field(default_factory=_delays)
    unlisted_share: Mapping[str, float] = field(default_factory=_unlisted)

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> ArgumentError:
            return ArgumentError(f"Got Observation {name}={getattr(self, name)!r}, expected "
                                 f"{want}.")

        if self.regime not in REGIMES:
            raise bad("regime", " or ".join(REGIMES))
        for name in ("verification_month", "lag_min_months", "lag_max_months",
                     "elimination_months", "risk_window_months", "sudden_window_months"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise bad(name, "an integer")
        if not 1 <= self.verification_month <= 12:
            raise bad("verification_month", "a calendar month 1 to 12")
        if not 0 <= self.lag_min_months <= self.lag_max_months <= 24:
            raise bad("lag_max_months", "lag_min_months ≤ lag_max_months ≤ 24, both ≥ 0")
        if not self.lag_min_months <= self.lag_mean_months <= self.lag_max_months:
            raise bad("lag_mean_months", "between lag_min_months and lag_max_months")
        for name in ("miss_rate", "elimination_review_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "a probability 0 to 1")
        if self.elimination_months < 1 or self.risk_window_months < 1 or \
                self.sudden_window_months < 1:
            raise bad("elimination_months", "months ≥ 1 (also the windows)")
        if not self.warning_income_ratio > 0:
            raise bad("warning_income_ratio", "a positive multiple of the line")
        if not 0 <= self.medical_threshold_listed <= self.medical_threshold_others:
            raise bad("medical_threshold_listed", "0 ≤ listed ≤ others")
        unknown = (set(self.warning_departments) | set(self.warning_delays)
                   | set(self.unlisted_share)) - set(DEPARTMENTS)
        if unknown:
            raise ArgumentError(f"Got Observation department {sorted(unknown)[0]!r}, expected "
                                f"one of {', '.join(DEPARTMENTS)}.")
        if any(not isinstance(v, int) or v < 0 or v > 12 for v in self.warning_delays.values()):
            raise bad("warning_delays", "whole months 0 to 12")
        if any(not 0 <= v <= 1 for v in self.unlisted_share.values()):
            raise bad("unlisted_share", "shares 0 to 1")

    def delay(self, department: str) -> int:
        """Months the department's list arrives after the month it reports."""
        return int(self.warning_delays.get(department, 0))

    def unlisted(self, department: str) -> float:
        """Share of the department's events that reach no list."""
        return float(self.unlisted_share.get(department, 0.0))


def cumsum0(a: np.ndarray) -> np.ndarray:
    """Cumulative sums along the first axis with a leading row of zeros (float64)."""
    out = np.zeros((a.shape[0] + 1, *a.shape[1:]), np.float64)
    np.cumsum(a, axis=0, dtype=np.float64, out=out[1:])
    return out


def window(cs: np.ndarray, s, h, width: int) -> np.ndarray:
    """Sums over steps ``s − width + 1 … s`` (clipped at 0) from cumulative sums ``cs``."""
    s = np.asarray(s)
    return cs[s + 1, h] - cs[np.maximum(s - width + 1, 0), h]


def income_pc(parts: dict[str, np.ndarray], members: np.ndarray) -> np.ndarray:
    """人均纯收入 as a recording writes it: (the four incomes − out-of-pocket medical) / members,
    in whole yuan; ``parts`` holds ``INCOME`` and ``exp_medical_oop`` sums."""
    total = sum(parts[c] for c in INCOME)
    return np.rint((total - parts["exp_medical_oop"]) / members)


def verified(flows: dict[str, np.ndarray], first: int, s: int) -> dict[str, np.ndarray] | None:
    """The previous calendar year's figures a verification at step ``s`` records (scaled to 12
    months when fewer were simulated); None when under a month of that year was simulated."""
    y = (first + s) // 12 - 1
    lo, hi = max(y * 12 - first, 0), y * 12 + 12 - first
    if hi - lo < 1:
        return None
    scale = 12 / (hi - lo)
    return {c: np.rint((flows[c][hi] - flows[c][lo]) * scale) for c in flows}


@dataclass
class Observed:
    """The cadres' records of every step (steps × households) and the trigger log."""

    monitored: np.ndarray     # bool, after the step's identifications and eliminations
    identified: np.ndarray    # step of the current (or last) identification, −1 none
    eliminated_step: np.ndarray  # step of the last elimination, −1 none
    snapshot: np.ndarray      # bool: an identification by a trigger or an elimination records
    medical: tuple[np.ndarray, np.ndarray, np.ndarray]  # 医保 crossings: steps, households, ytd
    log: pd.DataFrame         # triggers: step, household, kind, missed, lag, identified
    latent: np.ndarray        # per-capita income of the 12 months up to each step (yuan)


def observe(record: dict, static: dict, start: int, burn_in: int, obs: Observation,
            arrivals: np.ndarray, rng: np.random.Generator) -> Observed:
    """Run the cadres' observation over the record (see the module's description).

    ``arrivals`` (steps × households, bool) marks the steps a triggering department's warning
    other than 医保's arrives; 医保's are made here, its threshold depending on monitoring.
    """
    med = record["exp_medical_oop"].astype(np.float64)
    steps, n = med.shape
    first = start - burn_in
    members = static["members"].astype(np.float64)
    exited = np.asarray(static["exited"], bool)
    flows = {c: cumsum0(record[c]) for c in [*INCOME, "exp_medical_oop"]}
    h_all = np.arange(n)
    lines = np.array([policy_line((first + s) // 12) for s in range(steps)])
    latent = np.stack([income_pc({c: window(flows[c], np.full(n, s), h_all, 12)
                                  for c in flows}, members) for s in range(steps)])
    below = latent < lines[:, None]
    span = obs.lag_max_months - obs.lag_min_months
    q = (obs.lag_mean_months - obs.lag_min_months) / span if span else 0.0
    med_delay = obs.delay("医保")
    med_arrive = np.zeros((steps + med_delay + 1, n), bool)
    med_listed = "医保" in obs.warning_departments
    never = np.iinfo(np.int64).max

    monitored = np.zeros(n, bool)
    ident = np.full(n, -1, np.int64)
    elim = np.full(n, -1, np.int64)
    pending = np.full(n, never, np.int64)
    ytd, crossed = np.zeros(n), np.zeros(n, bool)
    out_mon = np.zeros((steps, n), bool)
    out_ident = np.full((steps, n), -1, np.int64)
    out_elim = np.full((steps, n), -1, np.int64)
    snapshot = np.zeros((steps, n), bool)
    med_s, med_h, med_a = [], [], []
    log = []
    for s in range(steps):
        line = lines[s]
        verifying = (first + s) % 12 == obs.verification_month - 1
        # 1. Triggers: a fall, or a warning arriving, at a household not being monitored.
        fall = below[s] & ~(below[s - 1] if s else np.zeros(n, bool))
        warned = (arrivals[s] | (med_arrive[s] & med_listed)) & \
            (latent[s] < obs.warning_income_ratio * line)
        trig = (fall | warned) & ~monitored
        who = np.flatnonzero(trig)
        missed = rng.random(len(who)) < obs.miss_rate
        lag = obs.lag_min_months + rng.binomial(span, q, len(who))
        pending[who[~missed]] = np.minimum(pending[who[~missed]], s + lag[~missed])
        log.append(pd.DataFrame({"step": s, "household": who,
                                 "kind": np.where(fall[who], "fall", "warning"),
                                 "missed": missed, "lag": lag}))
        # 2. Identifications due, then by the verification.
        due = (pending == s) & ~monitored
        pending[pending <= s] = never
        if verifying and obs.verification_identifies:
            figures = verified(flows, first, s)
            if figures is not None:
                by_check = ~monitored & ~due & (income_pc(figures, members) < line)
                who = np.flatnonzero(by_check)
                log.append(pd.DataFrame({"step": s, "household": who, "kind": "verification",
                                         "missed": False, "lag": 0}))
                monitored |= by_check
                ident[by_check] = s
                pending[by_check] = never
        monitored |= due
        ident[due] = s
        snapshot[s] = due
        # 3. Eliminations: monitored long enough, income back at the line, a review.
        review = verifying | (rng.random(n) < obs.elimination_review_rate)
        out = monitored & (s - ident >= obs.elimination_months) & ~below[s] & review
        monitored &= ~out
        elim[out] = s
        snapshot[s] |= out
        # 4. 医保's list, by the threshold of the household's status this month.
        if (first + s) % 12 == 0:
            ytd[:] = 0
            crossed[:] = False
        ytd += med[s]
        threshold = np.where(monitored | exited, obs.medical_threshold_listed,
                             obs.medical_threshold_others)
        new = ~crossed & (ytd >= threshold)
        crossed |= new
        hit = np.flatnonzero(new)
        hit = hit[rng.random(len(hit)) >= obs.unlisted("医保")]
        med_s.append(np.full(len(hit), s))
        med_h.append(hit)
        med_a.append(ytd[hit].copy())
        med_arrive[s + med_delay, hit] = True
        out_mon[s], out_ident[s], out_elim[s] = monitored, ident, elim
    frame = pd.concat(log, ignore_index=True)
    # The identification each trigger led to: the household's next identification step.
    frame["identified"] = _next_identification(frame, out_ident, steps)
    return Observed(out_mon, out_ident, out_elim, snapshot,
                    (np.concatenate(med_s), np.concatenate(med_h), np.concatenate(med_a)), frame,
                    latent)


def _next_identification(log: pd.DataFrame, ident: np.ndarray, steps: int) -> np.ndarray:
    """For each logged trigger, the first identification step at or after it (−1 none)."""
    s = log["step"].to_numpy()
    h = log["household"].to_numpy()
    new = np.zeros_like(ident, dtype=bool)
    new[0] = ident[0] == 0
    new[1:] = ident[1:] != ident[:-1]
    new &= ident >= 0
    nxt = np.full((steps + 1, ident.shape[1]), -1, np.int64)
    for t in range(steps - 1, -1, -1):
        nxt[t] = np.where(new[t], t, nxt[t + 1])
    return nxt[s, h]


def resolve(verification_month: int | None, observation: Observation | None
                 ) -> Observation:
    """The observation process of a call: ``observation``, with ``verification_month``."""
    if observation is not None and not isinstance(observation, Observation):
        raise ArgumentError(f"Got observation={observation!r}, expected an Observation.")
    obs = Observation() if observation is None else observation
    if verification_month is None:
        return obs
    if not isinstance(verification_month, int) or not 1 <= verification_month <= 12:
        raise ArgumentError(f"Got verification_month={verification_month!r}, expected a "
                            "calendar month 1 to 12.")
    if observation is not None and observation.verification_month != verification_month:
        raise ArgumentError(f"Got verification_month={verification_month} and an Observation "
                            f"with {observation.verification_month}; expected one of them.")
    return replace(obs, verification_month=verification_month)


def trigger_frame(log: pd.DataFrame, code: np.ndarray, step0: int) -> pd.DataFrame:
    """The cadres' trigger log with 户编号 and months."""
    ident = log["identified"].to_numpy()
    return pd.DataFrame({
        "household_id": pd.Series(code[log["household"].to_numpy()], dtype="str"),
        "month": pd.Series(month_label(step0 + log["step"].to_numpy()), dtype="str"),
        "kind": pd.Series(log["kind"].to_numpy(), dtype="str"),
        "missed": log["missed"].to_numpy(bool),
        "lag": log["lag"].to_numpy(np.int64),
        "identified_month": pd.Series(np.where(ident >= 0, month_label(step0 + np.maximum(
            ident, 0)), None), dtype="str"),
    })
