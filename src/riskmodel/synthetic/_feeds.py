"""What the county records of the simulated households: monitoring, annual incomes, warnings.

Everything here reads the simulator's record of the burn-in year and the ledger's months (steps
``0 … burn_in + months − 1``; step ``burn_in + k`` is ledger month ``k``) and draws nothing from
the simulator's generator.

- Monitoring: identified when the simulated cadres' monitoring turns on, eliminated when it turns
  off; the category and the recorded risk types are the cadres' reading of what they see at
  identification (recent events, laborers, housing), not the true cause.
- Annual incomes: recorded at the yearly verification (covering the previous calendar year), at
  identification and at elimination (covering the 12 months up to that month; they take the
  place of a verification in the same month), and at the first month of the ledger (the 12
  months before it); repeated unchanged in between.
- Warnings: the departments' lists (部门筛查预警) at SOURCES.md's rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..ledger import INCOME
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
#: Months a department's list arrives after the month it reports (医保 pushes by the 5th of the
#: next month).
LAGS = {"医保": 1, "残联": 1, "人社": 1}
#: Year-to-date out-of-pocket medical cost that puts a person on 医保's list.
THRESHOLD_LISTED = 5000.0   # exited and monitored households
THRESHOLD_OTHERS = 20000.0
_SEASON_MIGRANT = (1.3, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.2)


def _window(cs: np.ndarray, s: np.ndarray, h: np.ndarray, width: int) -> np.ndarray:
    """Sums over steps ``s − width + 1 … s`` (clipped at 0) from cumulative sums ``cs``."""
    return cs[s + 1, h] - cs[np.maximum(s - width + 1, 0), h]


def _cumsum(a: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0] + 1, *a.shape[1:]), np.float64)
    np.cumsum(a, axis=0, dtype=np.float64, out=out[1:])
    return out


@dataclass
class Monitoring:
    """Per ledger month and household (months × households)."""

    identified: np.ndarray     # step of the current (or last) identification, −1 none
    eliminated: np.ndarray     # bool: the last identification's risk eliminated
    eliminated_step: np.ndarray
    category: np.ndarray       # index into CATEGORIES, −1 none
    way: np.ndarray            # 0 帮扶消除, 1 自然消除
    risks: np.ndarray          # (5, months, households) index into RISKS, −1 blank


def monitoring(record: dict, static: dict, months: int, burn_in: int) -> Monitoring:
    """Identification, elimination, category and recorded risk types of every household-month."""
    mon = record["monitored"]
    steps, n = mon.shape
    prev = np.vstack([np.zeros((1, n), bool), mon[:-1]])
    on, off = mon & ~prev, ~mon & prev
    s_on, h_on = np.nonzero(on)                       # step-major: indices grow with the step
    if len(s_on) == 0:                                # nobody identified: one unused pair
        s_on, h_on = np.zeros(1, np.int64), np.zeros(1, np.int64)
        on = np.zeros_like(on)
    cs = {e: _cumsum(record[e]) for e in ("ev_illness", "ev_disability", "ev_accident",
                                          "ev_education", "ev_disaster", "ev_job_loss",
                                          "ev_business_loss", "exp_medical_oop")}
    year = {e: _window(cs[e], s_on, h_on, 12) > 0 for e in cs}
    seen = np.stack([
        year["ev_illness"] | (record["count_serious_ill"][s_on, h_on] > 0)
        | (_window(cs["exp_medical_oop"], s_on, h_on, 12) >= THRESHOLD_LISTED),
        (record["count_disabled_severe"][s_on, h_on] > 0) | year["ev_disability"],
        (record["count_students_noncompulsory"][s_on, h_on] > 0) & year["ev_education"],
        year["ev_accident"], year["ev_disaster"], year["ev_job_loss"], year["ev_business_loss"],
        record["count_labor_full"][s_on, h_on] == 0,
        ~record["housing_safe"][s_on, h_on],
    ])
    seen = np.vstack([seen, ~seen.any(0)])
    place = np.cumsum(seen, axis=0)
    picked = np.full((5, len(s_on)), -1, np.int64)
    for q in range(5):
        hit = seen & (place == q + 1)
        picked[q] = np.where(hit.any(0), hit.argmax(0), -1)
    sudden = (_window(cs["ev_illness"], s_on, h_on, 3) + _window(cs["ev_accident"], s_on, h_on, 3)
              + _window(cs["ev_disaster"], s_on, h_on, 3)) > 0
    category = np.where(static["exited"][h_on], 0, np.where(sudden, 2, 1))

    idx = np.full((steps, n), -1, np.int64)
    idx[on] = np.arange(int(on.sum()))
    current = np.maximum.accumulate(idx, axis=0)[burn_in:burn_in + months]
    off_step = np.maximum.accumulate(np.where(off, np.arange(steps)[:, None], -1), axis=0)
    ident_step = np.where(current >= 0, s_on[np.maximum(current, 0)], -1)
    off_now = off_step[burn_in:burn_in + months]
    eliminated = (current >= 0) & (off_now > ident_step)
    helped = (record["dibao"] | record["wjob"])[np.maximum(off_now, 0), np.arange(n)]
    has = current >= 0
    safe = np.maximum(current, 0)
    risks = np.where(has[None], picked[:, safe], -1)
    return Monitoring(ident_step, eliminated, off_now, np.where(has, category[safe], -1),
                      np.where(helped, 0, 1), risks)


def annual(record: dict, static: dict, start: int, months: int, burn_in: int,
           verification_month: int) -> dict[str, np.ndarray]:
    """The annual figures a download shows each ledger month (months × households).

    Returns the :data:`ANNUAL` columns (yuan, float64), ``annual_income_year`` (int) and
    ``recorded`` (the ledger month of the recording shown).
    """
    mon = record["monitored"]
    steps, n = mon.shape
    first = start - burn_in                               # month number of step 0
    flows = {c: _cumsum(record[c]) for c in [*INCOME, "exp_medical_oop"]}
    prev = np.vstack([np.zeros((1, n), bool), mon[:-1]])
    change = (mon != prev)[burn_in:burn_in + months]
    values = {c: np.zeros((months, n)) for c in [*INCOME, "exp_medical_oop"]}
    year = np.zeros((months, n), np.int64)
    recorded = np.zeros((months, n), bool)
    h = np.arange(n)
    for k in range(months):
        t, s = start + k, burn_in + k
        if (t % 12) == verification_month - 1:
            y = t // 12 - 1
            lo, hi = max(y * 12 - first, 0), y * 12 + 12 - first      # steps [lo, hi)
            scale = 12 / (hi - lo)
            for c in values:
                values[c][k] = np.rint((flows[c][hi] - flows[c][lo]) * scale)
            year[k], recorded[k] = y, True
        elif k == 0:
            lo, hi = s - 12, s                                        # the 12 months before
            for c in values:
                values[c][k] = flows[c][hi] - flows[c][lo]
            year[k], recorded[k] = (t - 1) // 12, True
        # Identification and elimination record the 12 months up to them, whatever the month.
        ident = change[k]
        for c in values:
            values[c][k, ident] = _window(flows[c], np.full(ident.sum(), s), h[ident], 12)
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


def medical_crossings(record: dict, static: dict, start: int, burn_in: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """医保's list: the step each household's year-to-date cost first crosses its threshold.

    Returns steps, households and year-to-date amounts, once per household and calendar year.
    """
    med = record["exp_medical_oop"].astype(np.float64)
    steps, n = med.shape
    first = start - burn_in
    ytd = np.zeros(n)
    crossed = np.zeros(n, bool)
    out_s, out_h, out_a = [], [], []
    for s in range(steps):
        if (first + s) % 12 == 0:
            ytd[:] = 0
            crossed[:] = False
        ytd += med[s]
        listed = record["monitored"][s] | static["exited"]
        threshold = np.where(listed, THRESHOLD_LISTED, THRESHOLD_OTHERS)
        new = ~crossed & (ytd >= threshold)
        crossed |= new
        hit = np.flatnonzero(new)
        out_s.append(np.full(len(hit), s))
        out_h.append(hit)
        out_a.append(ytd[hit].copy())
    return np.concatenate(out_s), np.concatenate(out_h), np.concatenate(out_a)


def warnings_table(record: dict, static: dict, start: int, months: int, burn_in: int,
                   heads: np.ndarray, first_serious: np.ndarray, starts: np.ndarray,
                   by_disabled_rank: np.ndarray, rng: np.random.Generator
                   ) -> pd.DataFrame:
    """Every department's warnings over the ledger: one row per warning.

    Columns: ``department``, ``item``, ``household`` (index), ``person`` (index, −1 when the
    row names the household), ``by_person`` (keyed by 证件号码), ``amount`` (NaN when none),
    ``event_month`` (ledger month of 预警月份, may be before the ledger), ``known`` (ledger month
    of the list that carries it). Only rows whose list arrives within the ledger.
    """
    steps = record["monitored"].shape[0]
    parts = []

    def add(dept, item, s, h, by_person, person=None, amount=None):
        s, h = np.asarray(s, np.int64), np.asarray(h, np.int64)
        k = s - burn_in
        known = k + LAGS.get(dept, 0)
        keep = (known >= 0) & (known < months)
        by = np.broadcast_to(np.asarray(by_person, bool), h.shape)[keep]
        who = (heads[h] if person is None else np.asarray(person))[keep]
        parts.append(pd.DataFrame({
            "department": dept, "item": np.broadcast_to(np.asarray(item, object), h.shape)[keep],
            "household": h[keep], "person": np.where(by, who, -1), "by_person": by,
            "amount": (np.full(len(h), np.nan) if amount is None
                       else np.asarray(amount, np.float64))[keep],
            "event_month": k[keep], "known": known[keep]}))

    def turned(a):
        prev = np.vstack([a[:1], a[:-1]])
        return np.nonzero(a & ~prev)

    s, h, amount = medical_crossings(record, static, start, burn_in)
    patient = np.where(record["count_serious_ill"][s, h] > 0, first_serious[h], heads[h])
    listed = record["monitored"][s, h] | static["exited"][h]
    item = np.where(listed, "年度累计合规自付医疗费用超过5000元",
                    "年度累计合规自付医疗费用超过20000元")
    add("医保", item, s, h, True, patient, np.rint(amount))
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
    told = rng.random(len(h)) < 0.8                # some accidents reach no list
    add("公安", "意外伤害", s[told], h[told], True)
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
    june = np.array([st for st in range(steps) if (start - burn_in + st) % 12 == 5], np.int64)
    unsafe = np.flatnonzero(~static["water_safe"])
    s, h = np.repeat(june, len(unsafe)), np.tile(unsafe, len(june))
    add("水利", "饮水不安全（季节性缺水）", s, h, False)
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(["known", "department", "household", "event_month"],
                             kind="stable", ignore_index=True)
