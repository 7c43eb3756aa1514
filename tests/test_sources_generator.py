"""The county sources the generator writes: they aggregate to the latent ledger, and look real.

The person tables are read back here with plain pandas (header row found under the title lines,
header spellings and values mapped through ``config.sources``) and aggregated by a small
groupby, independently of the generator's own aggregation. The counts and flags equal the
latent ledger's; ``household_type`` does where neither says monitored, since the county's
monitoring is the observation process's (``docs/synthetic.md``), not the simulator's own.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile

import numpy as np
import pandas as pd
import pytest

from riskmodel import validate_ledger
from riskmodel.config import load_config
from riskmodel.errors import OutputExistsError
from riskmodel.ledger import LEDGER_COLUMNS
from riskmodel.synthetic import (
    county_sources,
    generate_ledger,
    sources_expected,
    write_sources,
)

H, M, SEED = 60, 15, 3
COUNTS = ["members", "labor_full", "labor_partial", "elderly", "children",
          "students_compulsory", "students_noncompulsory", "chronic_ill", "serious_ill",
          "disabled", "disabled_severe", "migrant_workers", "dropouts"]
EXTRAS = ["wage_migrant", "annual_inc_wage", "annual_inc_business", "annual_inc_property",
          "annual_inc_transfer", "annual_exp_medical_oop", "annual_income_pc",
          "annual_income_total", "annual_income_year", "annual_recorded_month",
          "identified_month", "eliminated_month", "monitoring_category",
          *[f"recorded_risk_{i}" for i in range(1, 6)],
          *[f"warnings_{d}" for d in ("medical", "civil", "education", "police", "emergency",
                                      "disability", "labour", "housing", "water")],
          "warning_amount"]
WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", str(text)).split())


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def sources():
    return county_sources(H, M, seed=SEED)


@pytest.fixture(scope="module")
def tables(sources, config):
    """Every file read back: (path, kind, month, frame of canonical fields)."""
    spelling = {_norm(s): f for f, options in config.sources.headers.items() for s in options}
    kinds = config.sources.kinds
    out = []
    for path, content in sorted(sources.files.items()):
        if path.endswith(".xlsx"):
            raw = pd.read_excel(io.BytesIO(content), header=None, dtype=str,
                                engine="openpyxl").fillna("")
        else:
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = content.decode("gb18030")
            raw = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False,
                              names=range(200), engine="python")
        found = None
        for row in range(config.sources.header_search_rows):
            fields = [spelling.get(_norm(c)) for c in raw.iloc[row]]
            kind = next((k for k, need in kinds.items() if set(need) <= set(fields)), None)
            if kind:
                found = row, kind, fields
                break
        assert found, f"{path}: no header in the first rows"
        row, kind, fields = found
        body = raw.iloc[row + 1:]
        frame = pd.DataFrame({f: body.iloc[:, i].map(_norm).to_numpy()
                              for i, f in enumerate(fields) if f is not None})
        name_date = re.search(r"(\d{4})(\d{2})\d{2}", path.split("/")[-1])
        if "month" in frame:
            assert frame["month"].nunique() == 1
            year, mon = re.match(r"(\d{4})\D*(\d{1,2})", frame["month"].iloc[0]).groups()
            month = f"{year}-{int(mon):02d}"
        elif name_date:
            month = f"{name_date.group(1)}-{name_date.group(2)}"
        else:
            month = None
        if name_date and "month" in frame:
            assert month == f"{name_date.group(1)}-{name_date.group(2)}", path
        out.append((path, kind, month, frame))
    return out


def _persons(tables):
    frames = [f.assign(month=m) for _, k, m, f in tables if k == "persons"]
    return pd.concat(frames, ignore_index=True)


def _months(text: pd.Series) -> pd.Series:
    digits = text.str.replace(r"\D", "", regex=True)
    return digits.str[:4].astype(int) * 12 + digits.str[4:6].astype(int) - 1


def test_latent_ledger_unchanged_by_sources(tmp_path, capsys):
    from riskmodel.cli import main

    run = ["generate", "--households", "25", "--months", "4", "--seed", "5"]
    assert main([*run, "--out", str(tmp_path / "a.parquet")]) == 0
    assert main([*run, "--out", str(tmp_path / "b.parquet"), "--sources",
                 str(tmp_path / "county")]) == 0
    assert "sources:" in capsys.readouterr().out
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    expected = pd.read_parquet(tmp_path / "b_sources_expected.parquet")
    pd.testing.assert_frame_equal(expected, sources_expected(25, 4, seed=5),
                                  check_dtype=False)
    assert not any(p.suffix == ".parquet" for p in (tmp_path / "county").rglob("*"))
    again = main([*run, "--out", str(tmp_path / "c.parquet"), "--sources",
                  str(tmp_path / "county")])
    assert again == 4 and not (tmp_path / "c.parquet").exists()


def test_person_counts_equal_latent_ledger(sources, tables, config):
    persons = _persons(tables)
    values = config.sources.values
    seps = "|".join(re.escape(s) for s in config.sources.separators)
    birth = persons["birth_date"].fillna("")
    birth = birth.where(birth != "", persons["person_id"].str[6:14])
    age = (_months(persons["month"]) - _months(birth)) // 12
    health = persons["health"].str.split(seps)
    has = {c: health.map(lambda parts, c=c: any(values["health"].get(p) == c for p in parts))
           for c in ("chronic_ill", "serious_ill", "disabled")}
    labor = persons["labor_skill"].map(values["labor_skill"])
    school = persons["schooling"].map(values["schooling"])
    assert labor.notna().all() and school.notna().all()
    migrants = pd.concat([f.assign(month=m) for _, k, m, f in tables if k == "migrants"])
    working_away = set(zip(migrants.loc[migrants["working"] == "是", "person_id"],
                           migrants.loc[migrants["working"] == "是", "month"], strict=True))
    working = (persons["working"] == "是") | pd.Series(
        [(p, m) in working_away for p, m in zip(persons["person_id"], persons["month"],
                                                 strict=True)], index=persons.index)
    flags = pd.DataFrame({
        "household_id": persons["household_id"], "month": persons["month"], "members": 1,
        "labor_full": labor == "full", "labor_partial": labor == "partial",
        "elderly": age >= 60, "children": age < 16,
        "students_compulsory": school == "compulsory",
        "students_noncompulsory": school == "noncompulsory",
        **has,
        "disabled_severe": has["disabled"] & persons["disability_grade"].isin(["一级", "二级"]),
        "migrant_workers": working, "dropouts": persons["dropout"] == "是",
    })
    got = flags.groupby(["household_id", "month"]).sum().astype(int)
    latent = generate_ledger(H, M, seed=SEED)
    to_code = dict(zip(sources.household_ids["household_id"],
                       sources.household_ids["source_household_id"], strict=True))
    latent["household_id"] = latent["household_id"].astype(str).map(to_code)
    want = latent.set_index(["household_id", "month"])[COUNTS].astype(int).sort_index()
    assert len(got) == H * M
    pd.testing.assert_frame_equal(got[COUNTS].sort_index(), want)
    # The generator's expected ledger says the same, and its flags are the latent ones.
    exp = sources.expected.set_index(["household_id", "month"]).sort_index()
    pd.testing.assert_frame_equal(exp[COUNTS].astype(int), want)
    lat = latent.set_index(["household_id", "month"]).sort_index()
    for flag in ["dibao", "welfare_job", "housing_safe", "water_safe"]:
        assert (exp[flag].astype(bool).to_numpy() == lat[flag].astype(bool).to_numpy()).all()
    # household_type is the county's: monitored while identified and not eliminated by the
    # observation process (not the simulator's own monitoring); exited/general otherwise.
    monitored = exp["identified_month"].notna() & (
        exp["eliminated_month"].isna() | (exp["eliminated_month"] < exp["identified_month"]))
    assert ((exp["household_type"] == "monitored") == monitored).all()
    both = (exp["household_type"] != "monitored") & (lat["household_type"] != "monitored")
    assert both.sum() > H * M / 2
    assert (exp.loc[both, "household_type"].to_numpy()
            == lat.loc[both, "household_type"].astype(str).to_numpy()).all()
    # Persons never change household; a disability or chronic illness stays with its person.
    assert not persons.duplicated(["person_id", "month"]).any()
    per_person = persons.groupby("person_id")["household_id"].nunique()
    assert (per_person == 1).all() and persons.groupby("month").size().nunique() == 1
    for flag in ("disabled", "chronic_ill"):
        wide = pd.DataFrame({"p": persons["person_id"], "m": persons["month"],
                             "v": has[flag]}).pivot(index="p", columns="m", values="v")
        assert (wide.to_numpy()[:, 1:] >= wide.to_numpy()[:, :-1]).all()
        assert wide.to_numpy().any()


def test_ages_and_identity_numbers(tables):
    persons = _persons(tables)
    ids = persons["person_id"]
    assert ids.str.len().eq(18).all()
    digits = np.array([[int(c) for c in i[:17]] for i in ids.unique()])
    check = np.array(list("10X98765432"))[(digits * WEIGHTS).sum(1) % 11]
    assert (check == np.array([i[17] for i in ids.unique()])).all()
    dated = persons[persons["birth_date"].fillna("") != ""]
    assert len(dated) > 0
    assert (dated["birth_date"].str.replace("-", "") == dated["person_id"].str[6:14]).all()
    age = (_months(persons["month"]) - _months(persons["person_id"].str[6:14])) // 12
    persons = persons.assign(age=age, m=_months(persons["month"]))
    first, last = persons["m"].min(), persons["m"].max()
    ends = persons[persons["m"].isin([first, last])].pivot(index="person_id", columns="m",
                                                            values="age")
    assert ((ends[last] - ends[first]).between(1, 2)).all()   # 15 months: one or two birthdays
    spans = persons.groupby("person_id")["age"].agg(["min", "max"])
    assert not ((spans["min"] < 60) & (spans["max"] >= 60)).any()   # nobody crosses 60


def test_incomes_repeat_and_change_at_verification(sources):
    exp = sources.expected
    money = ["annual_inc_wage", "annual_inc_business", "annual_income_total"]
    months = exp["month"].unique()
    wide = exp.pivot(index="household_id", columns="month", values="annual_income_total")
    # 2022-03 verifies 2021 (the 12 months before the ledger); 2023-03 verifies 2022.
    assert (wide["2023-03"] != wide["2023-02"]).mean() > 0.9
    monitored_change = exp.groupby("household_id")["identified_month"].nunique() > 0
    steady = wide.loc[~monitored_change.reindex(wide.index).to_numpy()]
    quiet = [m for m in months if m not in ("2022-01", "2023-03")]
    for a, b in zip(quiet[:-1], quiet[1:], strict=True):
        assert (steady[a] == steady[b]).all()
    # An identification by the verification keeps the verified figures (the previous year).
    by_check = sources.triggers[sources.triggers["kind"] == "verification"]
    checked = pd.MultiIndex.from_frame(exp[["household_id", "month"]]).isin(
        pd.MultiIndex.from_frame(by_check[["household_id", "month"]]))
    visited = (((exp["identified_month"] == exp["month"]) & ~checked)
               | (exp["eliminated_month"] == exp["month"]))
    verified = exp[(exp["month"] == "2023-03") & ~visited]
    assert len(verified) > 0 and (verified["annual_income_year"] == 2022).all()
    assert (exp.loc[visited, "annual_income_year"] == exp.loc[visited, "month"].str[:4]
            .astype(int)).all()
    pc = (exp[money[-1]] - exp["annual_exp_medical_oop"]) / exp["members"]
    assert (np.rint(pc) == exp["annual_income_pc"]).all()
    assert (exp.loc[exp["month"] == "2023-03", "annual_recorded_month"] == "2023-03").mean() > 0.9
    # Identification after a fall or a warning, and elimination, record the figures anew.
    events = exp[visited]
    assert len(events) > 0 and (events["annual_recorded_month"] == events["month"]).all()


def test_warnings_above_thresholds_and_matched(sources, tables):
    persons = _persons(tables)
    owner = dict(zip(persons["person_id"], persons["household_id"], strict=False))
    warnings = pd.concat([f.assign(month=m) for _, k, m, f in tables if k == "warnings"])
    assert set(warnings["department"]) >= {"医保", "人社"}
    medical = warnings[warnings["department"] == "医保"]
    amount = medical["amount"].str.replace(",", "").str.replace("元", "").astype(float)
    assert (amount >= 5000).all()
    household = medical["person_id"].map(owner)
    listed_low = medical["warning_item"].str.contains("5000")
    assert (amount[~listed_low] >= 20000).all()
    unmatched = warnings["person_id"].ne("") & ~warnings["person_id"].isin(owner)
    assert unmatched.sum() == sources.unmatched > 0
    keyed = warnings[~unmatched]
    assert (keyed["household_id"].ne("") | keyed["person_id"].ne("")).all()
    assert keyed["household_id"].ne("").any() and keyed["person_id"].ne("").any()
    assert household.notna().sum() == (~unmatched[warnings["department"] == "医保"]).sum()
    # Late departments: the list arrives the month after 预警月份.
    late = warnings[warnings["department"].isin(["医保", "人社", "残联"]) & ~unmatched]
    assert (late["month"] > late["warning_month"].str[:4] + "-"
            + late["warning_month"].str[4:6]).all()


def test_migrant_wages_and_formats(sources, tables):
    migrants = pd.concat([f.assign(month=m) for _, k, m, f in tables if k == "migrants"])
    assert set(migrants["working"]) == {"是", "否"}
    working = migrants[migrants["working"] == "是"]
    assert working["migrant_wage"].str.replace(",", "").str.replace("元", "").astype(float).gt(
        0).all()
    paths = list(sources.files)
    assert any(p.endswith(".xlsx") for p in paths) and any(p.endswith(".csv") for p in paths)
    raw = b"".join(sources.files[p] for p in paths if p.endswith(".csv"))
    assert "１".encode("gb18030") in raw or "１".encode() in raw
    assert any(not sources.files[p].startswith(b"\xef\xbb\xbf") for p in paths
               if p.endswith(".csv"))
    assert all(m is not None for _, k, m, _ in tables if k != "warnings")
    exp = sources.expected
    assert exp.columns.tolist() == [*LEDGER_COLUMNS, *EXTRAS]
    assert (exp.dtypes[COUNTS] == "int16").all()
    assert str(exp["annual_income_year"].dtype) == "Int64"
    assert exp["wage_migrant"].gt(0).any() and exp["inc_wage"].isna().all()
    result = validate_ledger(exp)
    assert len(result.quarantine) == 0


def test_deterministic(sources, tmp_path):
    again = county_sources(H, M, seed=SEED)
    assert again.files == sources.files
    assert again.expected.equals(sources.expected)
    written = write_sources(again, tmp_path / "county", tmp_path / "expected.parquet")
    assert written[-1].read_bytes() == write_sources(
        again, tmp_path / "county2", tmp_path / "expected2.parquet")[-1].read_bytes()
    with pytest.raises(OutputExistsError):
        write_sources(again, tmp_path / "county")
    assert county_sources(H, M, seed=SEED + 1).files != sources.files
    # Workbooks carry no time of writing: fixed entry times and document properties.
    book = next(content for path, content in sources.files.items() if path.endswith(".xlsx"))
    with zipfile.ZipFile(io.BytesIO(book)) as z:
        assert {i.date_time for i in z.infolist()} == {(2000, 1, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
    assert re.findall(r"<dcterms:\w+[^>]*>([^<]*)<", core) == ["2000-01-01T00:00:00Z"] * 2


def test_expected_events_are_the_warnings_in_the_month_they_arrive(sources, tables, config):
    persons = _persons(tables)
    keys = zip(persons["person_id"], persons["month"], strict=True)
    owner = dict(zip(keys, persons["household_id"], strict=True))
    rows = []
    for _, kind, month, frame in tables:
        if kind != "warnings":
            continue
        warned = _months(frame["warning_month"])
        known = warned if month is None else np.maximum(warned, _months(pd.Series([month]))[0])
        label = (known // 12).astype(str) + "-" + (known % 12 + 1).astype(str).str.zfill(2)
        household = frame.get("household_id", pd.Series("", index=frame.index)).fillna("")
        by_id = [owner.get((p, m)) for p, m in zip(frame.get("person_id", household), label,
                                                   strict=True)]
        household = household.where(household != "", pd.Series(by_id, index=frame.index))
        rule = {r.department: r.column for r in config.sources.warning_rules}
        rows.append(pd.DataFrame({"household_id": household, "month": label,
                                  "column": frame["department"].map(rule)}))
    marks = pd.concat(rows).dropna()
    exp = sources.expected.set_index(["household_id", "month"])
    for column in ["ev_illness", "ev_accident", "ev_disaster", "ev_job_loss", "ev_education",
                   "ev_disability"]:
        want = set(marks.loc[marks["column"] == column, ["household_id", "month"]]
                   .itertuples(index=False, name=None))
        assert set(exp.index[exp[column].to_numpy()]) == want
    assert not exp["ev_business_loss"].any() and not exp["ev_epidemic"].any()
    dibao = set(marks.loc[marks["column"] == "dibao", ["household_id", "month"]]
                .itertuples(index=False, name=None))
    assert dibao and exp.loc[list(dibao), "dibao"].all()


def test_sources_arguments_refused(tmp_path, capsys):
    from riskmodel.cli import main

    run = ["generate", "--households", "5", "--months", "2", "--out", str(tmp_path / "l.parquet")]
    assert main([*run, "--verification-month", "4"]) == 2
    assert main([*run, "--sources", str(tmp_path / "c"), "--sources-expected",
                 str(tmp_path / "c" / "e.parquet")]) == 2
    assert main([*run, "--sources", str(tmp_path / "c"), "--sources-expected",
                 str(tmp_path / "e.csv")]) == 2
    assert "expected" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
