"""The columns of one month's person table, migrant table and warning lists (canonical fields).

Values are text as the platform writes them (money as yuan numbers, formatted when written);
the header spellings, filler columns and file formats are chosen in :mod:`._formats`.
"""

from __future__ import annotations

import numpy as np

from ._feeds import CATEGORIES, RISKS
from ._persons import check_digit

_AWAY = np.array(["广东省东莞市", "浙江省宁波市", "福建省晋江市", "云南省昆明市", "江苏省苏州市"],
                 dtype=object)


def month_text(months, style: str) -> np.ndarray:
    """Month numbers (−1 blank) as written: ``yyyymm`` (202403), ``dash`` (2024-03),
    ``yyyymmdd`` (20240301), ``cn`` (2024年3月) or ``cn2`` (2024年03月)."""
    months = np.asarray(months, np.int64)
    out = np.full(months.shape, "", dtype=object)
    ok = months >= 0
    if not ok.any():
        return out
    y, m = months[ok] // 12, months[ok] % 12 + 1
    ys, ms = y.astype(str).astype(object), np.char.zfill(m.astype(str), 2).astype(object)
    out[ok] = {"yyyymm": lambda: ys + ms, "dash": lambda: ys + "-" + ms,
               "yyyymmdd": lambda: ys + ms + "01",
               "cn": lambda: ys + "年" + m.astype(str).astype(object) + "月",
               "cn2": lambda: ys + "年" + ms + "月"}[style]()
    return out


def _yes(flag: np.ndarray) -> np.ndarray:
    return np.where(flag, "是", "否").astype(object)


def person_columns(persons, pm: dict, rec: dict, static: dict, mon, ann: dict, k: int,
                   burn_in: int, first: int, month_fmt: str, place_text: dict,
                   blank_type: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One month's person table: one row per person, household fields on every member's row."""
    hh = persons.hh
    s = burn_in + k
    step0 = first - burn_in                    # month number of the simulator's step 0
    single = static["members"] == 1
    cols: dict[str, np.ndarray] = {c: v[hh] for c, v in place_text.items()}
    cols["household_id"] = persons.household_code[hh]
    cols.update(person_id=persons.person_id, name=persons.name, phone=persons.phone,
                bank_account=persons.bank, relation=persons.relation)
    if rng.random() < 0.7:
        y, mo = persons.birth // 12, persons.birth % 12 + 1
        ys = np.char.zfill(y.astype(str), 4).astype(object)
        ms = np.char.zfill(mo.astype(str), 2).astype(object)
        ds = np.char.zfill(persons.day.astype(str), 2).astype(object)
        text = ys + ms + ds if rng.random() < 0.5 else ys + "-" + ms + "-" + ds
        cols["birth_date"] = text
    exited = static["exited"]
    cols["household_type"] = np.where(exited, "脱贫户",
                                      np.where(blank_type, "", "一般农户")).astype(object)[hh]
    ident, elim = mon.identified[k], mon.eliminated[k]
    category = np.asarray([c for c, _ in CATEGORIES] + [""], dtype=object)
    cols["monitoring_category"] = category[mon.category[k]][hh]
    cols["identified_month"] = month_text(np.where(ident >= 0, step0 + ident, -1),
                                          month_fmt)[hh]
    cols["risk_eliminated"] = np.where(ident < 0, "", _yes(elim)).astype(object)[hh]
    cols["eliminated_month"] = month_text(np.where(elim, step0 + mon.eliminated_step[k], -1),
                                          month_fmt)[hh]
    cols["elimination_way"] = np.where(elim, np.array(["帮扶消除", "自然消除"], object)[
        mon.way[k]], "").astype(object)[hh]
    risk_text = [t for t, _ in RISKS]
    if rng.random() < 0.3:
        risk_text[risk_text.index("因务工就业不稳")] = "务工就业不稳"
    risk_text = np.asarray([*risk_text, ""], dtype=object)
    for q in range(5):
        cols[f"recorded_risk_{q + 1}"] = risk_text[mon.risks[q, k]][hh]
    cols["health"] = pm["health"]
    cols["disability_grade"] = pm["grade"]
    cols["labor_skill"] = pm["labor"]
    cols["schooling"] = pm["schooling"]
    cols["dropout"] = _yes(pm["dropout"])
    cols["working"] = _yes(pm["shown_working"])
    dibao = rec["dibao"][s]
    none = "" if rng.random() < 0.4 else "未享受"
    cols["dibao"] = np.where(dibao & ~single, "农村低保", none).astype(object)[hh]
    cols["tekun"] = _yes(dibao & single)[hh]
    head = np.r_[True, hh[1:] != hh[:-1]]
    wjob = rec["wjob"][s][hh] & head
    if rng.random() < 0.3:                     # months held instead of 是/否
        cols["welfare_job"] = np.where(wjob, str(k % 12 + 1), "否").astype(object)
    else:
        cols["welfare_job"] = _yes(wjob)
    cols["housing_unsafe"] = _yes(~rec["housing_safe"][s])[hh]
    cols["water_safe"] = _yes(static["water_safe"])[hh]
    for c in ["annual_inc_wage", "annual_inc_business", "annual_inc_property",
              "annual_inc_transfer", "annual_exp_medical_oop", "annual_income_pc",
              "annual_income_total"]:
        cols[c] = ann[c][k][hh]
    cols["annual_income_year"] = ann["annual_income_year"][k].astype(str).astype(object)[hh]
    return cols


def fake_ids(count: int, rng: np.random.Generator) -> np.ndarray:
    """Valid identity numbers of nobody in the tables (another prefecture's region code)."""
    date = (1960 + rng.integers(0, 40, count)) * 10000 + rng.integers(1, 13, count) * 100 + \
        rng.integers(1, 29, count)
    code = 532999 * 10**11 + date * 1000 + rng.integers(0, 1000, count)
    digits = ((code[:, None] // 10 ** np.arange(16, -1, -1)) % 10).astype(np.uint8)
    return np.char.add(code.astype("U17"), check_digit(digits)).astype(object)


def migrant_columns(persons, pm: dict, wage: np.ndarray, month: int, n: int,
                    rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One month's migrant-work table: a row per working or idle migrant (and sometimes one
    about nobody in the person table); with each household's wages of working rows."""
    rows = np.flatnonzero(pm["working"] | pm["idle"])
    hh = persons.hh[rows]
    working = pm["working"][rows]
    pay = np.where(working, wage[hh], np.nan)
    household = persons.household_code[hh].copy()
    household[rng.random(len(rows)) < 0.1] = ""          # joined through 证件号码
    cols = {
        "household_id": household,
        "person_id": persons.person_id[rows],
        "name": persons.name[rows],
        "working": _yes(working),
        "migrant_wage": pay,
        "work_start": month_text(month - persons.day[rows] % 12, "yyyymm"),
        "work_end": month_text(np.where(working, -1, month - 1), "yyyymm"),
        "work_place": _AWAY[persons.day[rows] % len(_AWAY)],
    }
    if rng.random() < 0.5:
        extra = {"household_id": np.array(["532599999999999999"], object),
                 "person_id": fake_ids(1, rng), "name": np.array(["王某"], object),
                 "working": np.array(["是"], object), "migrant_wage": np.array([3000.0]),
                 "work_start": month_text([month], "yyyymm"),
                 "work_end": np.array([""], object), "work_place": _AWAY[:1]}
        cols = {c: np.concatenate([v, extra[c]]) for c, v in cols.items()}
    per_household = np.bincount(hh[working], weights=pay[working], minlength=n)
    return cols, per_household


def warning_columns(rows, persons, first: int, rng: np.random.Generator,
                    ) -> dict[str, np.ndarray]:
    """One department's list of one month, keyed by 户编号 or by 证件号码."""
    by = rows["by_person"].to_numpy()
    person = rows["person"].to_numpy()
    who = np.where(by, person, 0)
    cols = {
        "household_id": np.where(by, "", persons.household_code[rows["household"].to_numpy()]
                                 ).astype(object),
        "person_id": np.where(by, persons.person_id[who], "").astype(object),
        "name": np.where(by, persons.name[who], "").astype(object),
        "warning_month": month_text(first + rows["event_month"].to_numpy(), "yyyymm"),
        "department": rows["department"].to_numpy(dtype=object),
        "warning_item": rows["item"].to_numpy(dtype=object),
    }
    if rows["amount"].notna().any():
        cols["amount"] = rows["amount"].to_numpy(dtype=np.float64)
    return cols
