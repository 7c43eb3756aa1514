"""The data-generating process behind the synthetic ledger: villages, households and their months.

:func:`step` moves every household on by one month. It works on flat arrays of *paths*, so the
same code writes the ledger (one path per household) and runs the Monte Carlo truth (``replicas``
paths per household). Every random number a month needs is drawn up front in fixed shapes
(:func:`draw`), whatever the state: two scenarios given the same draws differ only by what the
scenario changed (common random numbers). The equations and parameters are in
``docs/synthetic.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import lru_cache

import numpy as np

from ._knobs import (
    DEFAULT_KNOBS,
    DEFAULT_LINES,
    EXTRA_N,
    EXTRA_U,
    EXTRA_V,
    LOCAL_SEASON,
    MIGRANT_SEASON,
    Knobs,
    change_members,
    cycle,
    wage_factor,
)

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
CADRE_LINES = dict(DEFAULT_LINES)
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


def policy_line(year: int, lines: tuple[tuple[int, float], ...] | None = None) -> float:
    """The monitoring line the simulated cadres act on (the nearest year outside the table).

    ``lines`` are a process's ``(year, line)`` pairs; :data:`CADRE_LINES` when omitted.
    """
    table = CADRE_LINES if lines is None else dict(lines)
    years = sorted(table)
    return table[min(max(year, years[0]), years[-1])]


@dataclass
class Draws:
    """One month's random numbers: per path (``u`` uniform, ``n`` normal), village, county."""

    u: dict[str, np.ndarray]
    n: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    c: dict[str, np.ndarray]


@dataclass
class _Run:
    """What one simulation of the ledger's months leaves behind."""

    start: int
    months: int
    static: dict
    columns: dict[str, np.ndarray]
    visited: np.ndarray
    snapshots: dict[int, dict] = field(default_factory=dict)
    losses: np.ndarray | None = None
    #: With ``keep_record``: per-month state and flows of the burn-in and the ledger's months
    #: (``_RECORD_STATE``, ``_RECORD_FLOWS`` of ``_generate``, ``counts`` of
    #: :func:`composition`), months first; what the county sources are written from.
    #: Recording draws nothing.
    record: dict[str, np.ndarray] | None = None


def draw(rng: np.random.Generator, paths: int, villages: int, counties: int,
         extra: bool = False) -> Draws:
    """Draw one month's random numbers in fixed shapes, whatever the state.

    ``extra`` (a process whose knobs need numbers of their own, :attr:`Knobs.extra`) draws
    them after the default ones, so that the default process's stream stays as it was.
    """
    u = rng.random((len(_U), paths), dtype=np.float32)
    n = rng.standard_normal((len(_N), paths), dtype=np.float32)
    v = rng.random((len(_V), villages), dtype=np.float32)
    c = rng.random((len(_C), counties), dtype=np.float32)
    d = Draws(dict(zip(_U, u, strict=True)), dict(zip(_N, n, strict=True)),
              dict(zip(_V, v, strict=True)), dict(zip(_C, c, strict=True)))
    if extra:
        d.u.update(zip(EXTRA_U, rng.random((len(EXTRA_U), paths), dtype=np.float32),
                       strict=True))
        d.n.update(zip(EXTRA_N, rng.standard_normal((len(EXTRA_N), paths), dtype=np.float32),
                       strict=True))
        d.v.update(zip(EXTRA_V, rng.random((len(EXTRA_V), villages), dtype=np.float32),
                       strict=True))
    return d


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
    members = st.get("members", s["members"])
    return {
        "members": members,
        "labor_full": st["a_full"] - out_now,
        "labor_partial": st["dis_mild_adults"] + s["a_partial_other"] + _e_partial(s, st),
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


def _e_partial(s: dict, st: dict) -> np.ndarray:
    """The elderly who still farm (fewer when members die)."""
    return np.minimum(s["e_partial"], st["elderly"]) if "members" in st else s["e_partial"]


def _take(local, me, mu, hit):
    """Which pool a hit laborer comes from: local work first, then employed, then idle migrants."""
    from_loc = hit & (local > 0)
    from_me = hit & ~from_loc & (me > 0)
    from_mu = hit & ~from_loc & ~from_me
    return from_loc, from_me, from_mu


def step(s: dict, st: dict, t: int, d: Draws, p: Params,
         k: Knobs = DEFAULT_KNOBS) -> dict[str, np.ndarray]:
    """Advance every path one month (``t`` is the month index, year × 12 + month − 1).

    Mutates ``st`` and returns the month's flows: the ledger's income, spending, assistance and
    event columns, and ``loss_<cause>``: what removing that cause alone would give back this month.
    ``k`` are the process's structural knobs (the default process when omitted); ``d`` must
    hold their draws when :attr:`Knobs.extra`.
    """
    f32 = np.float32
    u, nrm = d.u, d.n
    q = _single(p)
    cal, year = t % 12, t // 12
    g = np.float32((1 + q.growth) ** ((t - REFERENCE_MONTH) / 12))
    line = np.float32(policy_line(year, k.lines))
    members = st.get("members", s["members"])

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

    # Village disasters strike the whole village in the same month (consequences below).
    vkey = s["vkey"]
    hazard = q.disaster_rate * k.disaster_season[cal] * s["v_risk"]
    if k.harvest_shock_rate:
        harvest_months = ((cal - s["harvest"]) % 12) < 3
        hazard = hazard + np.float32(k.harvest_shock_rate) * harvest_months * s["v_risk"]
    disaster = d.v["disaster"][vkey] < hazard

    # Serious illness: a bill after partial reimbursement, maybe a laborer off work.
    labor_full = st["a_full"] - st["sick_loc"] - st["sick_mig"] - st["acc_loc"] - st["acc_mig"]
    me, mu = st["mig_employed"], st["mig_unemployed"]
    local = labor_full - me - mu
    ill_rate = q.illness_rate * (1 + st["elderly"] * f32(0.6) + st["chronic"] * f32(0.5))
    if k.disaster_illness != 1:
        ill_rate = ill_rate * np.where(disaster, f32(k.disaster_illness), f32(1))
    ill = u["ill"] < ill_rate
    oop_ill = np.where(ill, q.illness_bill * np.exp(k.illness_bill_sd * nrm["ill_bill"])
                       * (1 - s["reimb"]), f32(0))
    hit = ill & (u["ill_who"] * members < labor_full)
    loc, emp, idle = _take(local, me, mu, hit)
    st["sick_loc"] = st["sick_loc"] + loc + idle
    st["sick_mig"] = st["sick_mig"] + emp
    me, mu = me - emp, mu - idle
    local = local - loc
    st["serious"] = np.minimum(st["serious"] + ill, members)
    chronic_new = ill & (u["ill_chronic"] < k.chronic_share) & (st["chronic"] < members)
    st["chronic"] = st["chronic"] + chronic_new
    st["chronic_cost"] = st["chronic_cost"] + chronic_new

    # Accident: a bill, a laborer off work, or a laborer lost for good to disability.
    acc = u["acc"] < q.accident_rate
    oop_acc = np.where(acc, q.accident_bill * np.exp(k.accident_bill_sd * nrm["acc_bill"])
                       * (1 - s["reimb"]), f32(0))
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

    # Village disasters: harvests ruined, houses unsafe.
    severity_v = 0.3 + 0.6 * d.v["severity"][vkey]
    has_biz = (s["orchard"] > 0) | (s["livestock"] > 0)
    damaged = disaster & has_biz
    spread = (0.5 + u["dis_sev"] if k.severity_spread == 1
              else 1 + f32(k.severity_spread) * (u["dis_sev"] - f32(0.5)))
    sev = np.minimum(severity_v * spread, f32(0.95))
    st["dis_sev"] = np.where(damaged, np.maximum(sev, st["dis_sev"] * (st["dis_left"] > 0)),
                             st["dis_sev"])
    shortest, longest = k.disaster_months
    st["dis_left"] = np.where(damaged, shortest + (u["dis_dur"] * (longest - shortest + 1))
                              .astype(np.int8), st["dis_left"])
    unsafe = disaster & (u["house"] < q.house_damage * severity_v)
    st["housing_safe"] = st["housing_safe"] & ~unsafe

    # Business collapse: a county price crash for orchards, or a household's own loss.
    crash = (d.c["crash"][s["ckey"]] < q.crash_rate) & (s["orchard"] > 0) & (u["biz"] < 0.6)
    failed = crash | (has_biz & (u["biz"] > 1 - q.business_loss_rate))
    st["biz_mult"] = np.where(failed, 0.35 * u["biz_mult"], st["biz_mult"])
    shortest, longest = k.business_months
    st["biz_left"] = np.where(failed, shortest + (u["biz_dur"] * (longest - shortest + 1))
                              .astype(np.int8), st["biz_left"])

    # Migrant job loss, far likelier in an epidemic; the idle find work again in time.
    p_loss = np.where(epidemic, f32(q.job_loss_epidemic), f32(q.job_loss))
    if k.cycle_amplitude:
        p_loss = p_loss * (1 + f32(k.cycle_amplitude) * cycle(s, t, k))
    job_loss = (me > 0) & (u["job_loss"] < 1 - (1 - p_loss) ** me)
    if k.job_wave_rate or k.illness_job_loss:
        # A village's migrants share employers (a closure sends many home at once); a serious
        # illness calls a migrant home to care.
        wave = d.v["job_wave"][vkey] < k.job_wave_rate
        job_loss = job_loss | ((me > 0) & ((wave & (u["wave"] < k.job_wave_loss))
                                           | (ill & (u["care"] < k.illness_job_loss))))
    me, mu = me - job_loss, mu + job_loss
    rehired = (mu > 0) & ~job_loss & (u["rehire"] < np.where(epidemic, q.rehire_epidemic,
                                                             q.rehire))
    me, mu = me + rehired, mu - rehired
    if k.return_rate:
        # Return migration: an idle migrant settles at home for good, a local laborer.
        settle = (mu > 0) & ~rehired & ~job_loss & (u["settle"] < k.return_rate)
        mu, local = mu - settle, local + settle
    st["mig_employed"], st["mig_unemployed"] = me, mu

    # Incomes of the month, and what each cause took from them.
    mig_season, loc_season = MIGRANT_SEASON[cal], LOCAL_SEASON[cal]
    if k.seasonality != 1:
        mig_season, loc_season = mig_season ** k.seasonality, loc_season ** k.seasonality
    w_mig = g * s["wage_mig"] * mig_season
    w_loc = g * s["wage_loc"] * loc_season
    if k.wage_shocks:
        factor = wage_factor(s, st, t, nrm["wage"], k, REFERENCE_MONTH)
        w_mig, w_loc = w_mig * factor, w_loc * factor
    if k.cycle_wage:
        w_loc = w_loc * (1 + f32(k.cycle_wage) * cycle(s, t, k))
    partial = st["dis_mild_adults"] + s["a_partial_other"] + _e_partial(s, st)
    local_wage = local * w_loc
    cut = f32(k.disaster_wage_cut)
    wage = (me * w_mig + np.where(disaster, 1 - cut, f32(1)) * local_wage
            + mu * g * q.wage_fallback
            + partial * g * q.wage_partial + st["wjob"] * q.wage_welfare_job)
    loss = {
        "illness": st["sick_loc"] * w_loc + st["sick_mig"] * w_mig,
        "accident": st["acc_loc"] * w_loc + st["acc_mig"] * w_mig,
        "disability": (st["dis_sev_adults"] * w_loc
                       + st["dis_mild_adults"] * np.maximum(w_loc - g * q.wage_partial, 0)),
        "employment": mu * np.maximum(w_mig - g * q.wage_fallback, 0),
        "disaster": disaster * k.disaster_wage_cut * local_wage,
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
    rec = u["sick_rec"] < k.sick_recovery
    st["mig_employed"] = st["mig_employed"] + np.where(rec, st["sick_mig"], 0)
    st["sick_loc"] = np.where(rec, 0, st["sick_loc"]).astype(np.int16)
    st["sick_mig"] = np.where(rec, 0, st["sick_mig"]).astype(np.int16)
    rec = u["acc_rec"] < k.injury_recovery
    st["mig_employed"] = st["mig_employed"] + np.where(rec, st["acc_mig"], 0)
    st["acc_loc"] = np.where(rec, 0, st["acc_loc"]).astype(np.int16)
    st["acc_mig"] = np.where(rec, 0, st["acc_mig"]).astype(np.int16)
    st["serious"] = st["serious"] - ((st["serious"] > 0) & (u["serious_rec"] < k.serious_recovery))
    st["dis_left"] = np.maximum(st["dis_left"] - 1, 0).astype(np.int8)
    st["biz_left"] = np.maximum(st["biz_left"] - 1, 0).astype(np.int8)
    st["housing_safe"] = st["housing_safe"] | (u["repair"] < 0.08)
    if k.changes_members:
        change_members(s, st, u, k)
    return flows
