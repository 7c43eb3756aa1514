"""The simulated households as persons: who lives in each, how old, and each month's attributes.

The simulator keeps counts per household (and an age per child); a county's person table has a
row per person. :func:`make_persons` gives every household a fixed set of persons (its
``members`` never change in the simulator): elderly aged 60 or more, adults who stay between 16
and 59 over the whole ledger, and children born in September, the month the simulator ages them,
so that an age read from the birth date is the simulator's age in every month. A child who
leaves school becomes an adult of the same household. :func:`person_month` then assigns each
month's attributes so that the household's counts are exactly the simulator's, taking persons in
a fixed order per household so that an illness, a disability or a dropout stays with one person.
Nothing here draws from the simulator's generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._simulate import places

SEPTEMBER = 8
_SURNAMES = list("李王张刘陈杨赵黄周吴徐孙马朱胡郭何罗高林普杞鲁龙段字")
_GIVEN = list("文华明建国伟芳秀英兰玉红春海云丽军平志强德林永光金成家福涛霞琴美正")
# 技能劳动力 and 普通劳动力 both read as full labor; 丧失劳动力 and 无劳动力 as none.
_FULL = np.array(["普通劳动力", "技能劳动力"], dtype=object)
# Ages 6 to 15 (the simulator's compulsory ages): a 15-year-old is still in 九年级.
_GRADES_COMPULSORY = ["小学一年级", "小学二年级", "小学三年级", "小学四年级", "小学五年级",
                      "小学六年级", "七年级", "八年级", "九年级", "九年级"]
_GRADES_JUNIOR = ["初中一年级", "初中二年级", "初中三年级", "初中三年级"]
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])


def check_digit(first17: np.ndarray) -> np.ndarray:
    """The GB 11643 check character of 17-digit identity numbers (digits as a 2-D uint8 array)."""
    total = (first17.astype(np.int64) * _WEIGHTS).sum(1) % 11
    return np.array(list("10X98765432"))[total]


def _ranks(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Each element's rank by ``key`` within its ``group`` (0 first)."""
    order = np.lexsort((key, group))
    g = group[order]
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    first = np.repeat(start, np.diff(np.r_[start, len(g)]))
    ranks = np.empty(len(g), np.int64)
    ranks[order] = np.arange(len(g)) - first
    return ranks


@dataclass
class Persons:
    """The persons of every household; arrays of one entry per person, household-major."""

    hh: np.ndarray            # household index
    kind: np.ndarray          # 0 adult (from the start), 1 elderly, 2 child
    rank: np.ndarray          # rank within its kind in the household (adults: position)
    slot: np.ndarray          # child slot of the simulator (children), else -1
    birth: np.ndarray         # birth month number (year × 12 + month − 1)
    day: np.ndarray           # birth day of the month
    position: np.ndarray      # adult position once an adult (children: after they leave)
    leave: np.ndarray         # ledger month a child becomes an adult (months if never)
    key_chronic: np.ndarray   # rank in the household's order of chronic illness
    key_serious: np.ndarray
    key_disabled: np.ndarray
    severe_grade: np.ndarray  # "一级"/"二级" when severe, and the mild one
    mild_grade: np.ndarray
    full_text: np.ndarray     # 普通劳动力 or 技能劳动力
    shows_working: np.ndarray  # person table marks the person 是否已务工 是 when working
    person_id: np.ndarray
    name: np.ndarray
    phone: np.ndarray
    bank: np.ndarray
    relation: np.ndarray
    household_code: np.ndarray  # per household: 户编号

    def __len__(self) -> int:
        return len(self.hh)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as zero-padded digit strings."""
    return np.char.zfill(values.astype(np.int64).astype(f"U{width}"), width)


def household_codes(village: np.ndarray, params) -> np.ndarray:
    """户编号 of each household: county, township and village digits, then a serial number.

    All of one width, increasing with the household's number (villages are sorted), so that
    sorting by 户编号 keeps the simulator's order.
    """
    counties, towns, villages = places(params)
    per_county = len(villages) // len(counties)
    per_town = len(villages) // len(towns)
    n = len(village)
    place = ((village // per_county + 1) * 10**6 + ((village // per_town)
             % (len(towns) // len(counties)) + 1) * 1000 + village % per_town + 1)
    serial = _digits(np.arange(1, n + 1), max(7, len(str(n))))
    return np.char.add(np.char.add("5325", _digits(place, 8)), serial).astype(object)


def make_persons(record: dict, static: dict, start: int, months: int, burn_in: int,
                 rng: np.random.Generator, params) -> Persons:
    """Every household's persons, with birth dates, identity numbers and fixed orders."""
    n = len(static["members"])
    b = burn_in
    elderly = record["count_elderly"][b].astype(np.int64)
    adults0 = (record["a_full"][b] + record["dis_sev_adults"][b] + record["dis_mild_adults"][b]
               + static["a_partial_other"]).astype(np.int64)
    age0 = record["age"][b]                                     # (3, n)
    alive = age0 >= 0
    hh_k, slot_k = np.nonzero(alive.T)
    hh_a = np.repeat(np.arange(n), adults0)
    hh_e = np.repeat(np.arange(n), elderly)
    rank_a = np.arange(len(hh_a)) - np.repeat(np.cumsum(adults0) - adults0, adults0)
    rank_e = np.arange(len(hh_e)) - np.repeat(np.cumsum(elderly) - elderly, elderly)
    if not np.array_equal(adults0 + elderly + alive.sum(0), static["members"]):
        raise RuntimeError("The simulator's persons do not add up to its members.")

    # Children: born in September, so that the simulator's ageing (each September) holds.
    last_sept = start - ((start % 12 - SEPTEMBER) % 12)
    birth_k = last_sept - 12 * age0[slot_k, hh_k].astype(np.int64)
    ages_k = record["age"][b:, slot_k, hh_k]                   # (months, kids)
    gone = ages_k < 0
    leave_k = np.where(gone.any(0), gone.argmax(0), months)
    # Adults 16 to 59 over the whole ledger; elderly 60 and over from the first month.
    last = start + months - 1
    lo, hi = last - 719, start - 192
    lo = min(lo, hi)
    birth_a = hi - (rng.beta(1.6, 1.3, len(hh_a)) * (hi - lo)).astype(np.int64)
    birth_e = start - 720 - (rng.beta(1.2, 3.0, len(hh_e)) * 300).astype(np.int64)

    hh = np.concatenate([hh_a, hh_e, hh_k])
    kind = np.concatenate([np.zeros(len(hh_a), np.int8), np.ones(len(hh_e), np.int8),
                           np.full(len(hh_k), 2, np.int8)])
    rank = np.concatenate([rank_a, rank_e, slot_k])
    slot = np.concatenate([np.full(len(hh_a) + len(hh_e), -1), slot_k])
    birth = np.concatenate([birth_a, birth_e, birth_k])
    leave = np.concatenate([np.full(len(hh_a) + len(hh_e), -1), leave_k])
    order = np.lexsort((rank, kind, hh))
    hh, kind, rank, slot, birth, leave = (a[order] for a in (hh, kind, rank, slot, birth, leave))
    p = len(hh)

    # Adult positions: those of the start first, then children in the order they leave school.
    child = kind == 2
    leaver_rank = np.zeros(p, np.int64)
    leaver_rank[child] = _ranks(hh[child], leave[child] * 4 + slot[child])
    position = np.where(kind == 0, rank, np.where(child, adults0[hh] + leaver_rank, -1))

    elder = (kind == 1).astype(float)
    key_chronic = _ranks(hh, rng.random(p) - 0.6 * elder)
    key_serious = _ranks(hh, rng.random(p) - 0.3 * elder)
    key_disabled = _ranks(hh, rng.random(p) - 0.3 * (kind == 0))
    severe_grade = np.where(rng.random(p) < 0.5, "一级", "二级").astype(object)
    mild_grade = np.where(rng.random(p) < 0.5, "三级", "四级").astype(object)
    full_text = _FULL[(rng.random(p) < 0.25).astype(int)]
    shows_working = rng.random(p) < 0.85
    day = rng.integers(1, 29, p)
    sex = rng.integers(0, 2, p)

    # Identity numbers: township code, birth date, a serial unique per code and date, check.
    counties, towns, villages = places(params)
    per_town = len(villages) // len(towns)
    town = static["village"][hh] // per_town
    year, month = birth // 12, birth % 12 + 1
    date = year * 10000 + month * 100 + day
    serial = _ranks(town.astype(np.int64) * 10**9 + date, rng.random(p))
    region = 532500 + town + 1 + 40 * (serial // 500)
    code = region * 10**11 + date * 1000 + (serial % 500) * 2 + sex
    digits = ((code[:, None] // 10 ** np.arange(16, -1, -1)) % 10).astype(np.uint8)
    person_id = np.char.add(code.astype("U17"), check_digit(digits)).astype(object)

    surname = np.array(_SURNAMES)[rng.integers(0, len(_SURNAMES), n)][hh]
    given = np.char.add(np.array(_GIVEN)[rng.integers(0, len(_GIVEN), p)],
                        np.where(rng.random(p) < 0.7,
                                 np.array(_GIVEN)[rng.integers(0, len(_GIVEN), p)], ""))
    name = np.char.add(surname.astype(str), given).astype(object)
    phone = np.char.add(np.array(["13", "15", "17", "18", "19"])[rng.integers(0, 5, p)],
                        _digits(rng.integers(0, 10**9, p), 9)).astype(object)
    bank = np.char.add("6228", _digits(rng.integers(0, 10**15, p), 15)).astype(object)

    head = (kind == np.where(adults0 > 0, 0, 1)[hh]) & (rank == 0)
    relation = np.where(head, "户主", np.where(
        kind == 0, np.where(sex == 1, "配偶", "之兄弟姐妹"),
        np.where(kind == 1, np.where(sex == 1, "之父", "之母"),
                 np.where(sex == 1, "之子", "之女")))).astype(object)
    relation[(kind == 0) & ~head & (rank == 1)] = "配偶"
    return Persons(hh, kind, rank, slot, birth, day, position, leave, key_chronic, key_serious,
                   key_disabled, severe_grade, mild_grade, full_text, shows_working, person_id,
                   name, phone, bank, relation, household_codes(static["village"], params))


def _grade(age: np.ndarray, school: np.ndarray, college: np.ndarray) -> np.ndarray:
    """在校生状况 of children by age: preschool, compulsory grades, senior high, college."""
    out = np.full(len(age), "", dtype=object)
    out[(age >= 0) & (age <= 2)] = "学龄前儿童"
    out[(age >= 3) & (age <= 5)] = "学前教育"
    comp = (age >= 6) & (age <= 15)
    grades = np.array(_GRADES_COMPULSORY, dtype=object)
    out[comp] = grades[age[comp] - 6]
    junior = comp & (age >= 12) & college
    out[junior] = np.array(_GRADES_JUNIOR, dtype=object)[age[junior] - 12]
    high = school & (age >= 16) & (age <= 18)
    out[high] = np.where(college[high], np.array(["中职一年级", "中职二年级", "中职三年级"],
                                                 dtype=object)[age[high] - 16],
                         np.array(["高中一年级", "高中二年级", "高中三年级"],
                                  dtype=object)[age[high] - 16])
    uni = school & (age >= 19)
    year = np.minimum(age[uni] - 18, 5)
    out[uni] = np.where(college[uni] & (year <= 3),
                        np.array(["", "高职高专一年级", "高职高专二年级", "高职高专三年级", "", ""],
                                 dtype=object)[year],
                        np.array(["", "本科一年级", "本科二年级", "本科三年级", "本科四年级",
                                  "本科五年级"], dtype=object)[year])
    return out


def person_month(persons: Persons, record: dict, static: dict, k: int, burn_in: int,
                 separator: str) -> dict[str, np.ndarray]:
    """The person attributes of ledger month ``k`` whose counts are the simulator's.

    Returns per person: ``age``, ``labor`` (text), ``schooling``, ``dropout`` (bool), ``health``
    (text), ``grade`` (text), ``working`` (bool: working away this month), ``idle`` (a migrant
    without work), ``shown_working`` (the person table's 是否已务工).
    """
    s = burn_in + k
    hh, kind, rank = persons.hh, persons.kind, persons.rank
    p = len(hh)
    child = kind == 2
    age = np.full(p, -1, np.int64)
    school = np.zeros(p, bool)
    age[child] = record["age"][s, persons.slot[child], hh[child]]
    school[child] = record["school"][s, persons.slot[child], hh[child]]
    is_adult = (kind == 0) | (child & (persons.leave <= k))
    pos = np.where(is_adult, persons.position, -1)

    dsa = record["dis_sev_adults"][s][hh].astype(np.int64)
    partial_a = (record["dis_mild_adults"][s] + static["a_partial_other"])[hh].astype(np.int64)
    a_full = record["a_full"][s][hh].astype(np.int64)
    labor_full = record["count_labor_full"][s][hh].astype(np.int64)
    me = record["mig_employed"][s][hh].astype(np.int64)
    mu = record["mig_unemployed"][s][hh].astype(np.int64)
    c1 = dsa
    c2 = c1 + partial_a
    c3 = c2 + (a_full - labor_full)
    labor = np.full(p, "无劳动力", dtype=object)
    labor[is_adult & (pos < c1)] = "丧失劳动力"
    labor[is_adult & (pos >= c1) & (pos < c2)] = "弱劳动力或半劳动力"
    full = is_adult & (pos >= c3)
    labor[full] = persons.full_text[full]
    e_partial = static["e_partial"][hh]
    labor[(kind == 1) & (rank < e_partial)] = "弱劳动力或半劳动力"
    labor[(kind == 1) & (rank >= e_partial) & (rank % 2 == 1)] = "丧失劳动力"
    working = is_adult & (pos >= c3) & (pos < c3 + me)
    idle = is_adult & (pos >= c3 + me) & (pos < c3 + me + mu)

    compulsory_age = child & ~is_adult & (age >= 6) & (age <= 15)
    drop_rank = np.full(p, 99, np.int64)
    drop_rank[compulsory_age] = _ranks(hh[compulsory_age], persons.slot[compulsory_age])
    dropout = compulsory_age & (drop_rank < record["dropouts"][s][hh])
    kid_now = child & ~is_adult
    schooling = np.full(p, "", dtype=object)
    schooling[kid_now] = _grade(age[kid_now], school[kid_now],
                                persons.full_text[kid_now] == "技能劳动力")
    schooling[dropout] = ""

    chronic = persons.key_chronic < record["count_chronic_ill"][s][hh]
    serious = persons.key_serious < record["count_serious_ill"][s][hh]
    disabled = persons.key_disabled < record["count_disabled"][s][hh]
    severe = persons.key_disabled < record["count_disabled_severe"][s][hh]
    parts = [np.where(chronic, "长期慢性病", ""), np.where(serious, "患大病", ""),
             np.where(disabled, "残疾", "")]
    health = np.full(p, "", dtype=object)
    for part in parts:
        part = part.astype(object)
        health = np.where((health != "") & (part != ""), health + separator + part,
                          health + part)
    health = np.where(health == "", "健康", health).astype(object)
    grade = np.where(disabled, np.where(severe, persons.severe_grade, persons.mild_grade), "")
    return {
        "age": age, "labor": labor, "schooling": schooling, "dropout": dropout,
        "health": health, "grade": grade.astype(object), "working": working, "idle": idle,
        "shown_working": working & persons.shows_working, "serious": serious,
        "disabled": disabled,
    }
