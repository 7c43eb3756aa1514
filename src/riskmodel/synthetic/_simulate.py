"""The data-generating process behind the synthetic ledger: villages, households and their months.

:func:`step` moves every household on by one month. It works on flat arrays of *paths*, so the
same code writes the ledger (one path per household) and runs the Monte Carlo truth (``replicas``
paths per household). Every random number a month needs is drawn up front in fixed shapes
(:func:`draw`), whatever the state: two scenarios given the same draws differ only by what the
scenario changed (common random numbers). The equations and parameters are in
``docs/synthetic.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache

import numpy as np

#: Causes the simulator models: each has losses it can give back and a burden it can end.
CAUSES = ("illness", "disability", "accident", "education", "disaster", "employment", "business")
#: The event column that marks a new shock of each modelled cause.
CAUSE_EVENTS = {
    "illness": "ev_illness",
    "disability": "ev_disability",
    "accident": "ev_accident",
    "education": "ev_education",
    "disaster": "ev_disaster",
    "employment": "ev_job_loss",
    "business": "ev_business_loss",
}
PROVINCE = "云南省"
#: The lines of 云南省 in ``configs/default.yaml`` the cadres act on. Part of the process, not
#: read from the config, so that editing a config never changes a generated ledger.
CADRE_LINES = {2021: 6000.0, 2022: 6600.0, 2023: 6900.0, 2024: 8700.0, 2025: 8700.0}
REFERENCE_MONTH = 2022 * 12  # prices and wages are quoted at January 2022

_U = ("ill", "ill_who", "ill_chronic", "acc", "acc_who", "acc_dis", "acc_sev", "dis_other",
      "dis_other_sev", "dis_sev", "dis_dur", "house", "crash", "biz", "biz_mult", "biz_dur",
      "job_loss", "rehire", "sale", "minor", "drop", "drop_back", "sick_rec", "acc_rec",
      "serious_rec", "repair", "dibao", "wjob", "temp", "temp_pay", "monitor", "school",
      "school_mig")
_N = ("ill_bill", "acc_bill", "sale", "minor", "chronic")
_V = ("disaster", "severity")
_C = ("epidemic", "crash", "price")

# Share of an orchard's yearly revenue by month from the start of its harvest.
_HARVEST = np.array([0.3, 0.45, 0.25, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32)
# Fees by calendar month (Jan..Dec): lump sums at term start, board through term months.
_SENIOR_FEES = np.array([250, 0, 1250, 250, 250, 250, 0, 0, 1750, 250, 250, 250], np.float32)
_COLLEGE_FEES = np.array([700, 0, 700, 700, 700, 700, 0, 0, 6200, 700, 700, 700], np.float32)
_COMPULSORY_FEES = np.array([20, 0, 20, 20, 20, 20, 0, 0, 60, 20, 20, 20], np.float32)


@dataclass(frozen=True)
class Params:
    """Parameters of the data-generating process (yuan per month at 2022 prices unless noted).

    The defaults are calibrated so that 10–20% of households are poor at any month and a few
    percent of the non-poor fall below the line within six months; ``docs/synthetic.md`` lists
    each with its meaning.
    """

    counties: int = 3
    townships_per_county: int = 5
    villages_per_township: int = 8
    share_exited: float = 0.38
    growth: float = 0.075
    household_sd: float = 0.42
    village_sd: float = 0.18
    county_sd: float = 0.08
    exited_penalty: float = 0.2
    wage_migrant: float = 3200.0
    wage_local: float = 1100.0
    wage_partial: float = 300.0
    wage_fallback: float = 350.0
    wage_welfare_job: float = 800.0
    orchard_revenue: float = 9000.0
    orchard_cost: float = 150.0
    livestock_revenue: float = 6000.0
    livestock_cost: float = 120.0
    pension: float = 160.0
    disability_allowance: float = 90.0
    care_allowance: float = 100.0
    dibao_per_member: float = 270.0
    farm_subsidy: float = 40.0
    chronic_cost: float = 180.0
    minor_cost: float = 60.0
    illness_rate: float = 0.0035
    illness_bill: float = 48000.0
    bill_payment_share: float = 0.35
    accident_rate: float = 0.0012
    accident_bill: float = 18000.0
    accident_disability: float = 0.3
    other_disability_rate: float = 0.0003
    disaster_rate: float = 0.006
    house_damage: float = 0.2
    business_loss_rate: float = 0.005
    crash_rate: float = 0.004
    job_loss: float = 0.008
    job_loss_epidemic: float = 0.035
    rehire: float = 0.2
    rehire_epidemic: float = 0.08
    epidemic_start_2022: float = 0.12
    epidemic_start: float = 0.01
    epidemic_end: float = 0.35
    senior_high_entry: float = 0.65
    college_entry: float = 0.45
    dropout_rate: float = 0.0004
    missing_share: float = 0.11
    policy_smoothing: float = 1 / 6


@lru_cache(maxsize=8)
def _single(p: Params) -> Params:
    """The parameters as float32 scalars, so that arithmetic on float32 arrays stays float32."""
    values = {f.name: getattr(p, f.name) for f in fields(p)}
    return replace(p, **{k: np.float32(v) for k, v in values.items() if isinstance(v, float)})


def policy_line(year: int) -> float:
    """The monitoring line the simulated cadres act on (the nearest year outside the table)."""
    years = sorted(CADRE_LINES)
    return CADRE_LINES[min(max(year, years[0]), years[-1])]


@dataclass
class Draws:
    """One month's random numbers: per path (``u`` uniform, ``n`` normal), village, county."""

    u: dict[str, np.ndarray]
    n: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    c: dict[str, np.ndarray]


def draw(rng: np.random.Generator, paths: int, villages: int, counties: int) -> Draws:
    """Draw one month's random numbers in fixed shapes, whatever the state."""
    u = rng.random((len(_U), paths), dtype=np.float32)
    n = rng.standard_normal((len(_N), paths), dtype=np.float32)
    v = rng.random((len(_V), villages), dtype=np.float32)
    c = rng.random((len(_C), counties), dtype=np.float32)
    return Draws(dict(zip(_U, u, strict=True)), dict(zip(_N, n, strict=True)),
                 dict(zip(_V, v, strict=True)), dict(zip(_C, c, strict=True)))


def places(p: Params) -> tuple[list[str], list[str], list[str]]:
    """County, township and village names (townships and villages ordered county by county)."""
    def names(n: int, first: str, second: str, suffix: str) -> list[str]:
        return [first[i % len(first)] + second[(i // len(first) + i) % len(second)] + suffix
                + (str(i // (len(first) * len(second)) + 1) if i >= len(first) * len(second)
                   else "") for i in range(n)]

    counties = names(p.counties, "青松白梅云", "岚坪沙溪峰", "县")
    towns = names(p.counties * p.townships_per_county, "龙凤石桥河沟塘", "坪湾岭坝山溪口", "镇")
    villages = names(p.counties * p.townships_per_county * p.villages_per_township,
                     "大小新平安和兴福东西南北上中田木竹茶林红", "寨沟坡营庄屯堡湾箐塘", "村")
    return counties, towns, villages


def populate(n: int, rng: np.random.Generator, p: Params) -> tuple[dict, dict]:
    """Draw the villages, households and their starting state.

    Returns ``static`` (per-household arrays that never change) and ``state`` (the arrays the
    months change: per household, and per county for ``epidemic`` and ``price``).
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
        "ema_market": (1.6 * policy_line(2022) * np.exp(z - z.mean())).astype(f32),
        "ema_net": (1.7 * policy_line(2022) * np.exp(z - z.mean())).astype(f32),
        "ema_med": np.zeros(n, f32),
        "epidemic": np.zeros(nc, bool),
        "price": np.ones(nc, f32),
    }
    return static, state


def paths(static: dict, replicas: int, villages: int, counties: int) -> dict:
    """Per-path static arrays: each household repeated ``replicas`` times, household-major."""
    out = {k: np.repeat(v, replicas, axis=-1) for k, v in static.items()}
    rep = np.tile(np.arange(replicas, dtype=np.int32), len(static["members"]))
    out["vkey"] = rep * villages + out["village"]
    out["ckey"] = rep * counties + out["county"]
    return out


def composition(st: dict, s: dict) -> dict[str, np.ndarray]:
    """The member counts a ledger records, from the state."""
    age, school = st["age"], st["school"]
    out_now = st["sick_loc"] + st["sick_mig"] + st["acc_loc"] + st["acc_mig"]
    compulsory = ((age >= 6) & (age <= 15)).sum(0, dtype=np.int16)
    members = s["members"]
    return {
        "members": members,
        "labor_full": st["a_full"] - out_now,
        "labor_partial": st["dis_mild_adults"] + s["a_partial_other"] + s["e_partial"],
        "elderly": st["elderly"],
        "children": ((age >= 0) & (age < 16)).sum(0, dtype=np.int16),
        "students_compulsory": compulsory - st["dropouts"],
        "students_noncompulsory": school.sum(0, dtype=np.int16),
        "chronic_ill": st["chronic"],
        "serious_ill": np.minimum(st["serious"], members),
        "disabled": st["disabled"],
        "disabled_severe": st["disabled_severe"],
        "migrant_workers": st["mig_employed"],
        "dropouts": st["dropouts"],
    }


def _take(local, me, mu, hit):
    """Which pool a hit laborer comes from: local work first, then employed, then idle migrants."""
    from_loc = hit & (local > 0)
    from_me = hit & ~from_loc & (me > 0)
    from_mu = hit & ~from_loc & ~from_me
    return from_loc, from_me, from_mu


def step(s: dict, st: dict, t: int, d: Draws, p: Params) -> dict[str, np.ndarray]:
    """Advance every path one month (``t`` is the month index, year × 12 + month − 1).

    Mutates ``st`` and returns the month's flows: the ledger's income, spending, assistance and
    event columns, and ``loss_<cause>``: what removing that cause alone would give back this month.
    """
    f32 = np.float32
    u, nrm = d.u, d.n
    q = _single(p)
    cal, year = t % 12, t // 12
    g = np.float32((1 + q.growth) ** ((t - REFERENCE_MONTH) / 12))
    line = np.float32(policy_line(year))
    members = s["members"]

    pc = d.c["epidemic"]
    start = q.epidemic_start_2022 if year == 2022 else q.epidemic_start
    st["epidemic"] = np.where(st["epidemic"], pc >= q.epidemic_end, pc < start)
    if cal == 0:
        st["price"] = (0.8 + 0.4 * d.c["price"]).astype(f32)
    epidemic = st["epidemic"][s["ckey"]]
    price = st["price"][s["ckey"]]

    # Temporary assistance promised after last months' shocks is paid now or later.
    paid = (st["temp_pend"] > 0) & (u["temp_pay"] < 0.5)
    temp_paid = np.where(paid, st["temp_pend"], f32(0))
    st["temp_pend"] = np.where(paid, f32(0), st["temp_pend"])

    # Serious illness: a bill after partial reimbursement, maybe a laborer off work.
    labor_full = st["a_full"] - st["sick_loc"] - st["sick_mig"] - st["acc_loc"] - st["acc_mig"]
    me, mu = st["mig_employed"], st["mig_unemployed"]
    local = labor_full - me - mu
    ill = u["ill"] < q.illness_rate * (1 + st["elderly"] * f32(0.6) + st["chronic"] * f32(0.5))
    oop_ill = np.where(ill, q.illness_bill * np.exp(0.8 * nrm["ill_bill"]) * (1 - s["reimb"]),
                       f32(0))
    hit = ill & (u["ill_who"] * members < labor_full)
    loc, emp, idle = _take(local, me, mu, hit)
    st["sick_loc"] = st["sick_loc"] + loc + idle
    st["sick_mig"] = st["sick_mig"] + emp
    me, mu = me - emp, mu - idle
    local = local - loc
    st["serious"] = np.minimum(st["serious"] + ill, members)
    chronic_new = ill & (u["ill_chronic"] < 0.15) & (st["chronic"] < members)
    st["chronic"] = st["chronic"] + chronic_new
    st["chronic_cost"] = st["chronic_cost"] + chronic_new

    # Accident: a bill, a laborer off work, or a laborer lost for good to disability.
    acc = u["acc"] < q.accident_rate
    oop_acc = np.where(acc, q.accident_bill * np.exp(0.7 * nrm["acc_bill"]) * (1 - s["reimb"]),
                       f32(0))
    labor_full = labor_full - hit
    hit = acc & (u["acc_who"] * members < 1.5 * labor_full)
    disab = acc & (u["acc_dis"] < q.accident_disability)
    severe = u["acc_sev"] < 0.4
    loc, emp, idle = _take(local, me, mu, hit)
    lost = hit & disab
    st["acc_loc"] = st["acc_loc"] + ((loc | idle) & ~lost)
    st["acc_mig"] = st["acc_mig"] + (emp & ~lost)
    me, mu, local = me - emp, mu - idle, local - loc
    st["a_full"] = st["a_full"] - lost
    st["dis_sev_adults"] = st["dis_sev_adults"] + (lost & severe)
    st["dis_mild_adults"] = st["dis_mild_adults"] + (lost & ~severe)
    other = (u["dis_other"] < q.other_disability_rate) & ~disab
    other_severe = other & (u["dis_other_sev"] < 0.3)
    new_dis = (disab | other) & (st["disabled"] < members)
    st["disabled"] = st["disabled"] + new_dis
    st["disabled_severe"] = st["disabled_severe"] + (new_dis & ((disab & severe) | other_severe))

    # Schooling: the September move up, into senior high or college, or out to work.
    ev_education = np.zeros(len(members), bool)
    if cal == 8:
        age = np.where(st["age"] >= 0, st["age"] + 1, -1).astype(np.int8)
        school = st["school"]
        enter_high = (age == 16) & ~school & (u["school"] < q.senior_high_entry)
        enter_college = (age == 19) & school & (u["school"] < q.college_entry)
        leave = ((age == 16) & ~enter_high) | ((age == 19) & school & ~enter_college) | (age >= 23)
        school = (school & ~leave) | enter_high
        ev_education = (enter_high | enter_college).any(0)
        leavers = leave.sum(0, dtype=np.int16)
        to_city = (leave & (u["school_mig"] < 0.6)).sum(0, dtype=np.int16)
        st["a_full"] = st["a_full"] + leavers
        me = me + to_city
        local = local + leavers - to_city
        st["age"] = np.where(leave, -1, age).astype(np.int8)
        st["school"] = school
        st["fee_free"] = st["fee_free"] & school & ~enter_college
        st["dropouts"] = np.minimum(st["dropouts"], ((st["age"] >= 6) & (st["age"] <= 15))
                                    .sum(0, dtype=np.int16))
    compulsory = ((st["age"] >= 6) & (st["age"] <= 15)).sum(0, dtype=np.int16)
    drop = (compulsory > st["dropouts"]) & (u["drop"] < q.dropout_rate)
    back = (st["dropouts"] > 0) & (u["drop_back"] < 0.2)
    st["dropouts"] = st["dropouts"] + drop - back

    # Village disasters: the whole village in the same month; harvests ruined, houses unsafe.
    season = (1.2, 1.2, 1.5, 1.5, 1.5, 2.8, 3.2, 3.2, 2.6, 0.6, 0.3, 0.3)[cal]
    vkey = s["vkey"]
    disaster = d.v["disaster"][vkey] < q.disaster_rate * season * s["v_risk"]
    severity_v = 0.3 + 0.6 * d.v["severity"][vkey]
    has_biz = (s["orchard"] > 0) | (s["livestock"] > 0)
    damaged = disaster & has_biz
    sev = np.minimum(severity_v * (0.5 + u["dis_sev"]), f32(0.95))
    st["dis_sev"] = np.where(damaged, np.maximum(sev, st["dis_sev"] * (st["dis_left"] > 0)),
                             st["dis_sev"])
    st["dis_left"] = np.where(damaged, 6 + (u["dis_dur"] * 7).astype(np.int8), st["dis_left"])
    unsafe = disaster & (u["house"] < q.house_damage * severity_v)
    st["housing_safe"] = st["housing_safe"] & ~unsafe

    # Business collapse: a county price crash for orchards, or a household's own loss.
    crash = (d.c["crash"][s["ckey"]] < q.crash_rate) & (s["orchard"] > 0) & (u["biz"] < 0.6)
    failed = crash | (has_biz & (u["biz"] > 1 - q.business_loss_rate))
    st["biz_mult"] = np.where(failed, 0.35 * u["biz_mult"], st["biz_mult"])
    st["biz_left"] = np.where(failed, 8 + (u["biz_dur"] * 8).astype(np.int8), st["biz_left"])

    # Migrant job loss, far likelier in an epidemic; the idle find work again in time.
    p_loss = np.where(epidemic, f32(q.job_loss_epidemic), f32(q.job_loss))
    job_loss = (me > 0) & (u["job_loss"] < 1 - (1 - p_loss) ** me)
    me, mu = me - job_loss, mu + job_loss
    rehired = (mu > 0) & ~job_loss & (u["rehire"] < np.where(epidemic, q.rehire_epidemic,
                                                             q.rehire))
    me, mu = me + rehired, mu - rehired
    st["mig_employed"], st["mig_unemployed"] = me, mu

    # Incomes of the month, and what each cause took from them.
    w_mig = g * s["wage_mig"] * (1.3, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.2)[cal]
    w_loc = g * s["wage_loc"] * (0.8, 0.7, 1, 1.1, 1.1, 1, 1, 1, 1.1, 1.1, 1, 0.9)[cal]
    partial = st["dis_mild_adults"] + s["a_partial_other"] + s["e_partial"]
    local_wage = local * w_loc
    wage = (me * w_mig + np.where(disaster, f32(0.5), f32(1)) * local_wage
            + mu * g * q.wage_fallback
            + partial * g * q.wage_partial + st["wjob"] * q.wage_welfare_job)
    loss = {
        "illness": st["sick_loc"] * w_loc + st["sick_mig"] * w_mig,
        "accident": st["acc_loc"] * w_loc + st["acc_mig"] * w_mig,
        "disability": (st["dis_sev_adults"] * w_loc
                       + st["dis_mild_adults"] * np.maximum(w_loc - g * q.wage_partial, 0)),
        "employment": mu * np.maximum(w_mig - g * q.wage_fallback, 0),
        "disaster": disaster * 0.5 * local_wage,
    }
    share = _HARVEST[(cal - s["harvest"]) % 12]
    sale = (u["sale"] < 0.35) * np.exp(0.3 * nrm["sale"]) / f32(0.35 * 12)
    revenue = g * (s["orchard"] * share * price + s["livestock"] * sale)
    dm = np.where(st["dis_left"] > 0, 1 - st["dis_sev"], f32(1))
    bm = np.where(st["biz_left"] > 0, st["biz_mult"], f32(1))
    costs = g * ((s["orchard"] > 0) * (share == 0) * q.orchard_cost
                 + (s["livestock"] > 0) * q.livestock_cost)
    business = revenue * dm * bm - costs
    loss["disaster"] = loss["disaster"] + revenue * bm * (1 - dm)
    loss["business"] = revenue * dm * (1 - bm)

    transfer = (st["elderly"] * q.pension + st["disabled"] * q.disability_allowance
                + st["disabled_severe"] * q.care_allowance + q.farm_subsidy + temp_paid
                + st["dibao"] * (q.dibao_per_member * members))

    chronic = st["chronic_cost"] * (q.chronic_cost * np.exp(0.5 * nrm["chronic"] - 0.125))
    minor = (u["minor"] < 0.35) * members * (q.minor_cost * np.exp(0.6 * nrm["minor"]))
    pend_ill = st["pend_ill"] + oop_ill
    pend_acc = st["pend_acc"] + oop_acc
    pay_ill = np.where(pend_ill < 300, pend_ill, pend_ill * q.bill_payment_share)
    pay_acc = np.where(pend_acc < 300, pend_acc, pend_acc * q.bill_payment_share)
    st["pend_ill"], st["pend_acc"] = pend_ill - pay_ill, pend_acc - pay_acc
    medical = chronic + minor + pay_ill + pay_acc
    loss["illness"] = loss["illness"] + chronic + pay_ill
    loss["accident"] = loss["accident"] + pay_acc

    age, paying = st["age"], st["school"] & ~st["fee_free"]
    education = ((paying & (age <= 18)).sum(0) * _SENIOR_FEES[cal]
                 + (paying & (age >= 19)).sum(0) * _COLLEGE_FEES[cal]
                 + (compulsory - st["dropouts"]) * _COMPULSORY_FEES[cal])
    loss["education"] = (education - (compulsory - st["dropouts"]) * _COMPULSORY_FEES[cal]
                         ).astype(f32)

    flows = {
        "inc_wage": np.rint(wage),
        "inc_business": np.rint(business),
        "inc_property": np.rint(s["rent"] * g),
        "inc_transfer": np.rint(transfer),
        "exp_medical_oop": np.rint(medical),
        "exp_education": np.rint(education).astype(f32),
        "temp_assistance": temp_paid,
        "ev_illness": ill,
        "ev_disability": new_dis,
        "ev_accident": acc,
        "ev_education": ev_education,
        "ev_disaster": disaster,
        "ev_job_loss": job_loss,
        "ev_business_loss": failed,
        "ev_epidemic": epidemic,
    }
    flows.update({f"loss_{c}": loss[c].astype(f32) for c in CAUSES})

    # Cadres act on what they see: smoothed income with lags, never on next month.
    a = f32(q.policy_smoothing)
    market = (flows["inc_wage"] + flows["inc_business"] + flows["inc_property"]
              - flows["exp_medical_oop"] - flows["exp_education"] - st["wjob"] * q.wage_welfare_job)
    st["ema_market"] = (1 - a) * st["ema_market"] + a * 12 * market / members
    st["ema_net"] = ((1 - a) * st["ema_net"]
                     + a * 12 * (market + flows["inc_transfer"] - temp_paid) / members)
    st["ema_med"] = (1 - a) * st["ema_med"] + a * 12 * flows["exp_medical_oop"]
    labor_now = st["a_full"] - st["sick_loc"] - st["sick_mig"] - st["acc_loc"] - st["acc_mig"]
    weak = ((labor_now + 0.5 * partial) < 0.5 * members) | (st["disabled_severe"] > 0) | (
        st["serious"] > 0)
    eligible = ((st["ema_market"] < 0.8 * line) & weak) | (st["ema_market"] < 0.4 * line)
    st["dibao"] = np.where(st["dibao"], ~((st["ema_market"] > 1.3 * line) & (u["dibao"] < 0.04)),
                           eligible & (u["dibao"] < 0.12))
    can_work = (labor_now + partial) > 0
    wants = can_work & ((st["ema_net"] < line) | (mu > 0))
    st["wjob"] = np.where(st["wjob"], u["wjob"] >= 1 / 12, wants & (u["wjob"] < 0.03))
    shocked = (oop_ill > 8000) | acc | unsafe | failed
    promise = shocked & (st["temp_pend"] == 0) & (u["temp"] < 0.4)
    st["temp_pend"] = np.where(promise, np.where(ill | acc, f32(2000), f32(1500)),
                               st["temp_pend"])
    at_risk = (st["ema_net"] < line) | (st["ema_med"] > 20000)
    safe = (st["ema_net"] > 1.3 * line) & (st["ema_med"] < 10000)
    st["monitored"] = np.where(st["monitored"], ~(safe & (u["monitor"] < 0.1)),
                               at_risk & (u["monitor"] < 0.15))

    # Recoveries at the month's end: the sick and injured back to work, damage fading.
    rec = u["sick_rec"] < 0.25
    st["mig_employed"] = st["mig_employed"] + np.where(rec, st["sick_mig"], 0)
    st["sick_loc"] = np.where(rec, 0, st["sick_loc"]).astype(np.int16)
    st["sick_mig"] = np.where(rec, 0, st["sick_mig"]).astype(np.int16)
    rec = u["acc_rec"] < 0.3
    st["mig_employed"] = st["mig_employed"] + np.where(rec, st["acc_mig"], 0)
    st["acc_loc"] = np.where(rec, 0, st["acc_loc"]).astype(np.int16)
    st["acc_mig"] = np.where(rec, 0, st["acc_mig"]).astype(np.int16)
    st["serious"] = st["serious"] - ((st["serious"] > 0) & (u["serious_rec"] < 0.15))
    st["dis_left"] = np.maximum(st["dis_left"] - 1, 0).astype(np.int8)
    st["biz_left"] = np.maximum(st["biz_left"] - 1, 0).astype(np.int8)
    st["housing_safe"] = st["housing_safe"] | (u["repair"] < 0.08)
    return flows
