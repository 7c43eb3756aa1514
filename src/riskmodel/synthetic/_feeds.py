"""What the county records of the simulated households: monitoring, annual incomes, warnings.

Everything here reads the simulator's record of the burn-in year and the ledger's months (steps
``0 … burn_in + months − 1``; step ``burn_in + k`` is ledger month ``k``) and the cadres' process
of :mod:`._observe`, and draws nothing from the simulator's generator.

- Monitoring: identified and eliminated as :func:`._observe.observe` runs the cadres; the
  category and the recorded risk types are the cadres' reading at identification of what they
  see (warnings known in the last months, the person table's health, laborers, housing), not
  the true cause.
- Annual incomes: recorded at the yearly verification (covering the previous calendar year), at
  an identification that followed a fall or a warning and at elimination (covering the 12
  months up to that month; they take the place of a verification in the same month), and at the
  first month of the ledger (the 12 months before it); repeated unchanged in between.
- Warnings: the departments' lists (部门筛查预警) at SOURCES.md's rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..ledger import INCOME
from ._observe import Observation, Observed, cumsum0, verified, window
from ._simulate import REFERENCE_MONTH

#: Recorded risk types in the order the cadres list them, with their cause codes.
RISKS = [("因病", "illness"), ("因残", "disability"), ("因学", "education"),
         ("因意外事故", "accident"), ("因自然灾害", "disaster"), ("因务工就业不稳", "employment"),
         ("因产业失败", "business"), ("缺劳动力", "labor_shortage"), ("因安全住房", "housing"),
         ("其他", "income")]
CATEGORIES = [("脱贫不稳定户", "unstable"), ("边缘易致贫户", "marginal"),
              ("突发严重困难户", "sudden")]
ANNUAL = ["annual_inc_wage", "annual_inc_business", "annual_inc_property",
          "annual_inc_transfer", "annual_exp_medical_oop", "annual_income_pc",
          "annual_income_total"]
_SEASON_MIGRANT = (1.3, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.2)


@dataclass
class Monitoring:
    """Per ledger month and household (months × households)."""

    identified: np.ndarray     # step of the current (or last) identification, −1 none
    eliminated: np.ndarray     # bool: the last identification's risk eliminated
    eliminated_step: np.ndarray
    category: np.ndarray       # index into CATEGORIES, −1 none
    way: np.ndarray            # 0 帮扶消除, 1 自然消除
    risks: np.ndarray          # (5, months, households) index into RISKS, −1 blank


def monitoring(record: dict, static: dict, months: int, burn_in: int, observed: Observed,
               events: pd.DataFrame, obs: Observation) -> Monitoring:
    """Identification, elimination, category and recorded risk types of every household-month.

    ``events`` are every department's listed warnings (:func:`department_events` with 医保's),
    by the step their list arrives (``arrive``).
    """
    ident = observed.identified
    steps, n = ident.shape
    prev = np.vstack([np.full((1, n), -1, np.int64), ident[:-1]])
    on = (ident != prev) & (ident >= 0)
    s_on, h_on = np.nonzero(on)                       # step-major: indices grow with the step
    if len(s_on) == 0:                                # nobody identified: one unused pair
        s_on, h_on = np.zeros(1, np.int64), np.zeros(1, np.int64)
    known = events[events["arrive"] < steps]

    def arrived(depts, item=None):
        mark = np.zeros((steps, n), np.int64)
        rows = known[known["department"].isin(depts)]
        if item is not None:
            rows = rows[rows["item"].str.contains(item, regex=False)]
        np.add.at(mark, (rows["arrive"].to_numpy(), rows["household"].to_numpy()), 1)
        return cumsum0(mark)

    def recent(cs, width):
        return window(cs, s_on, h_on, width) > 0

    w = obs.risk_window_months
    seen = np.stack([
        recent(arrived(["医保"]), w) | (record["count_serious_ill"][s_on, h_on] > 0),
        recent(arrived(["残联"]), w) | (record["count_disabled_severe"][s_on, h_on] > 0),
        recent(arrived(["教育"], "新升入"), w),
        recent(arrived(["公安"]), w),
        recent(arrived(["应急"]), w),
        recent(arrived(["人社"]), w),
        np.zeros(len(s_on), bool),                     # a business failure reaches no list
        record["count_labor_full"][s_on, h_on] == 0,
        recent(arrived(["住建"]), w) | ~record["housing_safe"][s_on, h_on],
    ])
    seen = np.vstack([seen, ~seen.any(0)])
    place = np.cumsum(seen, axis=0)
    picked = np.full((5, len(s_on)), -1, np.int64)
    for q in range(5):
        hit = seen & (place == q + 1)
        picked[q] = np.where(hit.any(0), hit.argmax(0), -1)
    sudden = recent(arrived(["医保", "公安", "应急"]), obs.sudden_window_months)
    category = np.where(static["exited"][h_on], 0, np.where(sudden, 2, 1))

    idx = np.full((steps, n), -1, np.int64)
    idx[on] = np.arange(int(on.sum()))
    ledger = slice(burn_in, burn_in + months)
    current = np.maximum.accumulate(idx, axis=0)[ledger]
    ident_step = ident[ledger]
    off_now = observed.eliminated_step[ledger]
    eliminated = (ident_step >= 0) & (off_now > ident_step)
    helped = (record["dibao"] | record["wjob"])[np.maximum(off_now, 0), np.arange(n)]
    has = current >= 0
    safe = np.maximum(current, 0)
    risks = np.where(has[None], picked[:, safe], -1)
    return Monitoring(ident_step, eliminated, off_now, np.where(has, category[safe], -1),
                      np.where(helped, 0, 1), risks)


def annual(record: dict, static: dict, start: int, months: int, burn_in: int,
           verification_month: int, snapshot: np.ndarray) -> dict[str, np.ndarray]:
    """The annual figures a download shows each ledger month (months × households).

    ``snapshot`` (steps × households) marks the identifications after a trigger and the
    eliminations, which record the 12 months up to them. Returns the :data:`ANNUAL` columns
    (yuan, float64), ``annual_income_year`` (int) and ``recorded`` (the ledger month of the
    recording shown).
    """
    n = snapshot.shape[1]
    first = start - burn_in                               # month number of step 0
    flows = {c: cumsum0(record[c]) for c in [*INCOME, "exp_medical_oop"]}
    change = snapshot[burn_in:burn_in + months]
    values = {c: np.zeros((months, n)) for c in [*INCOME, "exp_medical_oop"]}
    year = np.zeros((months, n), np.int64)
    recorded = np.zeros((months, n), bool)
    h = np.arange(n)
    for k in range(months):
        t, s = start + k, burn_in + k
        if (t % 12) == verification_month - 1:
            figures = verified(flows, first, s)
            for c in values:
                values[c][k] = figures[c]
            year[k], recorded[k] = t // 12 - 1, True
        elif k == 0:
            lo, hi = s - 12, s                                        # the 12 months before
            for c in values:
                values[c][k] = flows[c][hi] - flows[c][lo]
            year[k], recorded[k] = (t - 1) // 12, True
        # Identification and elimination record the 12 months up to them, whatever the month.
        ident = change[k]
        for c in values:
            values[c][k, ident] = window(flows[c], np.full(ident.sum(), s), h[ident], 12)
        year[k, ident] = t // 12
        recorded[k] |= ident
    last = np.maximum.accumulate(np.where(recorded, np.arange(months)[:, None], -1), axis=0)
    out = {f"annual_{c}" if c != "exp_medical_oop" else "annual_exp_medical_oop":
           values[c][last, h] for c in values}
    total = sum(out[f"annual_{c}"] for c in INCOME)
    out["annual_income_total"] = total
    out["annual_income_pc"] = np.rint((total - out["annual_exp_medical_oop"])
                                      / static["members"][None, :])
    out["annual_income_year"] = year[last, h]
    out["recorded"] = last
    return out


def migrant_wage(static: dict, start: int, months: int) -> np.ndarray:
    """A working migrant's wage of each ledger month (yuan, months × households)."""
    t = np.arange(start, start + months)
    g = 1.075 ** ((t - REFERENCE_MONTH) / 12) * np.asarray(_SEASON_MIGRANT)[t % 12]
    return np.rint(g[:, None] * static["wage_mig"][None, :].astype(np.float64))


def _frame(dept, item, s, h, by_person, who, amount, obs: Observation) -> pd.DataFrame:
    s, h = np.asarray(s, np.int64), np.asarray(h, np.int64)
    by = np.broadcast_to(np.asarray(by_person, bool), h.shape)
    return pd.DataFrame({
        "department": dept, "item": np.broadcast_to(np.asarray(item, object), h.shape),
        "household": h, "person": np.where(by, who, -1), "by_person": by,
        "amount": np.full(len(h), np.nan) if amount is None else np.asarray(amount, np.float64),
        "step": s, "arrive": s + obs.delay(dept)})


def department_events(record: dict, static: dict, first: int, heads: np.ndarray,
                      starts: np.ndarray,
                      by_disabled_rank: np.ndarray, obs: Observation,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Every listed warning of the departments but 医保, over all steps: one row per warning.

    Columns: ``department``, ``item``, ``household`` (index), ``person`` (index, −1 when the
    row names the household), ``by_person`` (keyed by 证件号码), ``amount`` (NaN), ``step``
    (the month it reports), ``arrive`` (the step its list arrives); ``first`` is the month
    number of step 0. A share
    ``obs.unlisted(dept)`` of each department's events reaches no list. ``rng`` is the files'
    stream: with the default shares it draws as it always has, so that the files keep their
    shapes.
    """
    steps = record["monitored"].shape[0]
    parts = []

    def add(dept, item, s, h, by_person, person=None):
        s, h = np.asarray(s, np.int64), np.asarray(h, np.int64)
        share = obs.unlisted(dept)
        told = rng.random(len(h)) < 1 - share if share > 0 else np.ones(len(h), bool)
        who = heads[h] if person is None else np.asarray(person)
        by = np.broadcast_to(np.asarray(by_person, bool), h.shape)
        item = np.broadcast_to(np.asarray(item, object), h.shape)
        parts.append(_frame(dept, item[told], s[told], h[told], by[told], who[told], None, obs))

    def turned(a):
        prev = np.vstack([a[:1], a[:-1]])
        return np.nonzero(a & ~prev)

    s, h = turned(record["dibao"])
    single = static["members"][h] == 1
    add("民政", np.where(single, "新纳入特困供养", "新纳入农村低保"), s, h,
        rng.random(len(h)) < 0.6)
    s, h = np.nonzero(record["ev_education"])
    add("教育", "新升入高中/中职/高校，学费待缴", s, h, False)
    drop = record["dropouts"]
    s, h = np.nonzero(drop[1:] > drop[:-1])
    add("教育", "疑似义务教育阶段失学辍学", s + 1, h, False)
    s, h = np.nonzero(record["ev_accident"])
    add("公安", "意外伤害", s, h, True)
    s, h = np.nonzero(record["ev_disaster"])
    add("应急", "自然灾害受灾户", s, h, False)
    s, h = np.nonzero(record["ev_disability"])
    # The newest certificate is the person last in the household's order of disability.
    person = by_disabled_rank[starts[h] + record["count_disabled"][s, h] - 1]
    add("残联", "新办残疾证", s, h, True, person)
    s, h = np.nonzero(record["ev_job_loss"])
    add("人社", "外出务工人员失业返乡", s, h, rng.random(len(h)) < 0.7)
    s, h = turned(~record["housing_safe"])
    add("住建", "农村危房（C级/D级）", s, h, False)
    june = np.array([st for st in range(steps) if (first + st) % 12 == 5], np.int64)
    unsafe = np.flatnonzero(~static["water_safe"])
    s, h = np.repeat(june, len(unsafe)), np.tile(unsafe, len(june))
    add("水利", "饮水不安全（季节性缺水）", s, h, False)
    return pd.concat(parts, ignore_index=True)


def arrivals(events: pd.DataFrame, departments, shape: tuple[int, int]) -> np.ndarray:
    """Steps × households: a listed warning of one of ``departments`` arrives."""
    mark = np.zeros(shape, bool)
    rows = events[events["department"].isin(list(departments)) & (events["arrive"] < shape[0])]
    mark[rows["arrive"].to_numpy(), rows["household"].to_numpy()] = True
    return mark


def medical_events(record: dict, static: dict, observed: Observed, heads: np.ndarray,
                   first_serious: np.ndarray, obs: Observation) -> pd.DataFrame:
    """医保's list: the crossings :func:`._observe.observe` found, with the patient and item."""
    s, h, amount = observed.medical
    patient = np.where(record["count_serious_ill"][s, h] > 0, first_serious[h], heads[h])
    listed = observed.monitored[s, h] | static["exited"][h]
    low, high = (f"{v:.0f}" for v in (obs.medical_threshold_listed,
                                      obs.medical_threshold_others))
    item = np.where(listed, f"年度累计合规自付医疗费用超过{low}元",
                    f"年度累计合规自付医疗费用超过{high}元")
    return _frame("医保", item, s, h, True, patient, np.rint(amount), obs)


def warnings_table(events: pd.DataFrame, months: int, burn_in: int) -> pd.DataFrame:
    """The warnings whose list arrives within the ledger, with ``event_month`` (ledger month of
    预警月份, may be before the ledger) and ``known`` (ledger month of the list)."""
    frame = events.assign(event_month=events["step"] - burn_in,
                          known=events["arrive"] - burn_in)
    frame = frame[(frame["known"] >= 0) & (frame["known"] < months)]
    frame = frame.drop(columns=["step", "arrive"])
    return frame.sort_values(["known", "department", "household", "event_month"],
                             kind="stable", ignore_index=True)
