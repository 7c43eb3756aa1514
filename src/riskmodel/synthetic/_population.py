"""The population of the process: villages, households and their state before the first month.

The distributions are in ``docs/synthetic.md`` ("The place", "Households").
"""

from __future__ import annotations

import numpy as np

from ._knobs import DEFAULT_KNOBS, Knobs, populate_more
from ._simulate import Params, policy_line


def populate(n: int, rng: np.random.Generator, p: Params,
             k: Knobs = DEFAULT_KNOBS) -> tuple[dict, dict]:
    """Draw the villages, households and their starting state.

    Returns ``static`` (per-household arrays that never change) and ``state`` (the arrays the
    months change: per household, and per county for ``epidemic`` and ``price``). A process
    whose knobs need more (:attr:`Knobs.extra`) draws it after the default's draws.
    """
    nc = p.counties
    nt = nc * p.townships_per_county
    nv = nt * p.villages_per_township
    f32 = np.float32
    v_income = rng.normal(0, p.village_sd, nv) + np.repeat(rng.normal(0, p.county_sd, nc),
                                                           nv // nc)
    v_risk = np.exp(rng.normal(0, 0.5, nv) - 0.125)
    v_orchard = rng.uniform(0.15, 0.7, nv)
    v_livestock = rng.uniform(0.2, 0.6, nv)
    v_harvest = np.where(rng.random(nv) < 0.35, 2, 7)  # tea from March, fruit from August
    v_migrant = rng.uniform(0.3, 0.65, nv)
    v_water = rng.random(nv) < 0.06
    weights = rng.gamma(4.0, 1.0, nv)
    village = np.sort(rng.choice(nv, size=n, p=weights / weights.sum())).astype(np.int32)

    exited = rng.random(n) < p.share_exited
    z = (rng.normal(0, p.household_sd, n) + v_income[village] - p.exited_penalty * exited)
    elderly = rng.choice(3, n, p=[0.45, 0.33, 0.22])
    adults = rng.choice(5, n, p=[0.05, 0.22, 0.5, 0.15, 0.08])
    adults = np.where(adults + elderly == 0, 1, adults)
    n_kids = np.where(adults < 2, rng.choice(3, n, p=[0.7, 0.25, 0.05]),
                      rng.choice(4, n, p=[0.3, 0.35, 0.28, 0.07]))
    ages = rng.integers(0, 22, (3, n))
    ages = np.where(np.arange(3)[:, None] < n_kids, ages, -1)
    in_school = np.where(ages <= 18, rng.random((3, n)) < p.senior_high_entry,
                         rng.random((3, n)) < p.senior_high_entry * p.college_entry)
    school = (ages >= 16) & in_school
    grown = (ages >= 16) & ~school
    adults = adults + grown.sum(0)
    ages = np.where(grown, -1, ages)
    members = adults + elderly + (ages >= 0).sum(0)

    disabled_adult = rng.binomial(adults, 0.035)
    severe = rng.binomial(disabled_adult, 0.4)
    other_disabled = rng.binomial(members - adults, 0.04)
    other_severe = rng.binomial(other_disabled, 0.3)
    partial_other = rng.binomial(adults - disabled_adult, 0.06)
    a_full = adults - disabled_adult - partial_other
    migrants = rng.binomial(a_full, v_migrant[village])
    chronic = np.minimum(rng.binomial(adults, 0.06) + rng.binomial(elderly, 0.25), members)

    has_orchard = rng.random(n) < v_orchard[village]
    has_livestock = rng.random(n) < v_livestock[village]
    scale = np.clip(0.5 + 0.25 * (a_full + 0.5 * (adults - a_full) + 0.5 * elderly), 0.5, 1.5)
    lz = np.exp(z)
    insured = rng.random(n) < 0.98
    reimb = np.where(insured, np.where(exited, 0.75, 0.68), 0.2)
    static = {
        "village": village,
        "county": (village // (nv // nc)).astype(np.int32),
        "exited": exited,
        "members": members.astype(np.int16),
        "wage_mig": (p.wage_migrant * lz ** 0.7).astype(f32),
        "wage_loc": (p.wage_local * lz).astype(f32),
        "orchard": (has_orchard * p.orchard_revenue * scale * lz
                    * np.exp(rng.normal(0, 0.3, n))).astype(f32),
        "livestock": (has_livestock * p.livestock_revenue * scale * lz
                      * np.exp(rng.normal(0, 0.3, n))).astype(f32),
        "harvest": v_harvest[village].astype(np.int8),
        "rent": ((rng.random(n) < 0.3) * rng.uniform(40, 220, n)).astype(f32),
        "insured": insured,
        "reimb": reimb.astype(f32),
        "water_safe": ~(v_water[village] & (rng.random(n) < 0.4)),
        "visit": (1 / (1 + np.exp(-(np.log(p.missing_share / (1 - p.missing_share))
                                    + rng.normal(0, 0.8, n))))).astype(f32),
        "v_risk": v_risk[village].astype(f32),
        "a_partial_other": partial_other.astype(np.int16),
        "e_partial": rng.binomial(elderly, 0.5).astype(np.int16),
    }
    i16 = np.int16
    zero = np.zeros(n, i16)
    state = {
        "a_full": a_full.astype(i16),
        "dis_sev_adults": severe.astype(i16),
        "dis_mild_adults": (disabled_adult - severe).astype(i16),
        "elderly": elderly.astype(i16),
        "age": ages.astype(np.int8),
        "school": school,
        "fee_free": np.zeros((3, n), bool),
        "disabled": (disabled_adult + other_disabled).astype(i16),
        "disabled_severe": (severe + other_severe).astype(i16),
        "chronic": chronic.astype(i16),
        "chronic_cost": chronic.astype(i16),
        "serious": zero.copy(),
        "mig_employed": migrants.astype(i16),
        "mig_unemployed": zero.copy(),
        "sick_loc": zero.copy(),
        "sick_mig": zero.copy(),
        "acc_loc": zero.copy(),
        "acc_mig": zero.copy(),
        "dropouts": zero.copy(),
        "pend_ill": np.zeros(n, f32),
        "pend_acc": np.zeros(n, f32),
        "dis_left": np.zeros(n, np.int8),
        "dis_sev": np.zeros(n, f32),
        "biz_left": np.zeros(n, np.int8),
        "biz_mult": np.ones(n, f32),
        "housing_safe": rng.random(n) < 0.97,
        "dibao": np.zeros(n, bool),
        "wjob": np.zeros(n, bool),
        "temp_pend": np.zeros(n, f32),
        "monitored": np.zeros(n, bool),
        "ema_market": (1.6 * policy_line(2022, k.lines) * np.exp(z - z.mean())).astype(f32),
        "ema_net": (1.7 * policy_line(2022, k.lines) * np.exp(z - z.mean())).astype(f32),
        "ema_med": np.zeros(n, f32),
        "epidemic": np.zeros(nc, bool),
        "price": np.ones(nc, f32),
    }
    if k.extra:
        populate_more(n, village, nv, rng, k, static, state)
    return static, state
