from __future__ import annotations

import pytest
import yaml

from riskmodel.config import CAUSE_CODES, DEFAULT_CONFIG, load_aliases, load_config
from riskmodel.errors import ConfigError
from riskmodel.ledger import LEDGER_COLUMNS


def _write(tmp_path, data):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def raw():
    return yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def test_default_config_loads_with_the_fixed_keys():
    cfg = load_config()
    assert cfg.label.horizon_months == 6
    assert cfg.line_for(2021) == 6000
    assert [c.code for c in cfg.causes] == list(CAUSE_CODES)
    assert all(c.measures_zh for c in cfg.causes)


def test_most_specific_region_wins(tmp_path, raw):
    raw["poverty_lines"] = [
        {"year": 2024, "line": 7000},
        {"year": 2024, "line": 8700, "region": "云南省"},
        {"year": 2024, "line": 9000, "region": "甲县"},
    ]
    cfg = load_config(_write(tmp_path, raw))
    assert cfg.line_for(2024) == 7000
    assert cfg.line_for(2024, province="云南省") == 8700
    assert cfg.line_for(2024, province="云南省", county="甲县") == 9000
    assert cfg.line_for(2024, province="福建省", county="乙县") == 7000
    with pytest.raises(ConfigError, match="No poverty line for year 2030"):
        cfg.line_for(2030)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["label"].update(horizon_mnths=6), "unknown key 'label.horizon_mnths'"),
        (lambda r: r.update(tiers_typo={}), "unknown key 'tiers_typo'"),
        (lambda r: r["label"].update(horizon_months=0), "label.horizon_months"),
        (lambda r: r["label"].update(horizon_months="six"), "label.horizon_months"),
        (lambda r: r["poverty_lines"].append({"year": 2021, "line": 1}), "twice"),
        (lambda r: r["poverty_lines"].insert(0, {"year": 2029, "line": -5}),
         "poverty_lines.0.line"),
        (lambda r: r["causes"][0].update(code="sickness"), "Got cause code 'sickness'"),
        (lambda r: r["tiers"].update(medium=0.5), "expected medium < high"),
        (lambda r: r.update(features={"x": {"cause": "luck"}}), "Feature 'x' names cause 'luck'"),
        (lambda r: r["causes"][0].pop("name_zh"), "causes.0.name_zh: Field required"),
    ],
)
def test_config_errors_name_the_key(tmp_path, raw, edit, message):
    edit(raw)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(_write(tmp_path, raw))
    assert "\n" not in str(info.value)


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("label: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    # Edited in a Chinese Windows editor: GBK, or UTF-8 with a byte-order mark.
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    bad.write_bytes(text.encode("gb18030"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)
    bad.write_bytes(text.encode("utf-8-sig"))
    assert load_config(bad) == load_config()


def test_a_header_under_two_columns_is_refused(tmp_path):
    path = tmp_path / "aliases.yaml"
    path.write_text("inc_wage: [工资性收入, 务工收入]\ninc_business: [经营性收入, 务工收入 ]\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="header '务工收入' is listed under both 'inc_wage' "
                                          "and 'inc_business'"):
        load_aliases(path)
    path.write_text("inc_wage: 工资性收入\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping of each column to a list"):
        load_aliases(path)
    path.write_text("inc_wage: [工资性收入, 工资性收入]\n", encoding="utf-8")
    assert load_aliases(path) == {"工资性收入": "inc_wage"}


def test_aliases_cover_every_contract_column():
    aliases = load_aliases()
    assert set(aliases.values()) == set(LEDGER_COLUMNS)
    assert aliases["户编号"] == "household_id"
    assert aliases["合规自付医疗费用"] == "exp_medical_oop"


def test_a_key_given_twice_is_an_error_naming_it_and_its_lines(tmp_path, capsys):
    from riskmodel.cli import main

    # A block pasted twice: YAML alone would keep only the second `label:` block.
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    first = text.splitlines().index("label:") + 1
    last = len(text.splitlines()) + 2
    path = tmp_path / "twice.yaml"
    path.write_text(text + "\nlabel:\n  horizon_months: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"key 'label' appears twice, on lines {first} and "
                                          rf"{last}; expected each key once"):
        load_config(path)
    assert main(["train", "--ledger", str(tmp_path / "absent.parquet"),
                 "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'label' appears twice" in err[0]


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("label:\n  horizon_months: 6\n  horizon_months: 3\n", "label.horizon_months", (2, 3)),
        ("poverty_lines:\n  - year: 2024\n    line: 7000\n  - year: 2024\n    line: 8700\n"
         "    line: 9000\n", "poverty_lines.1.line", (5, 6)),
    ],
)
def test_a_nested_key_given_twice_is_named_by_its_path(tmp_path, text, key, lines):
    path = tmp_path / "twice.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"key '{key}' appears twice, on lines "
                                          rf"{lines[0]} and {lines[1]}"):
        load_config(path)


def test_keys_brought_by_a_merge_may_be_overridden(tmp_path):
    # `<<:` then an own key is how YAML overrides a merged key, not a key given twice.
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
        "label:\n", "label:\n  <<: {horizon_months: 3, min_observed_months: 4}\n", 1)
    path = tmp_path / "merged.yaml"
    path.write_text(text, encoding="utf-8")
    label = load_config(path).label
    assert (label.horizon_months, label.min_observed_months) == (6, 6)


def test_a_partial_config_is_laid_over_the_defaults(tmp_path):
    default = load_config()
    path = tmp_path / "county.yaml"
    path.write_text("poverty_lines:\n  - {year: 2024, line: 9000, region: 甲县}\n"
                    "  - {year: 2024, line: 8700}\n"
                    "label:\n  horizon_months: 3\n"
                    "reasons:\n  text:\n    income: {zh: 收入低, en: low income}\n",
                    encoding="utf-8")
    cfg = load_config(path)
    assert cfg.line_for(2024, county="甲县") == 9000
    # Keys the file does not give keep their defaults, inside a block it overrides too.
    assert cfg.causes == default.causes and cfg.tiers == default.tiers
    assert cfg.label.horizon_months == 3
    assert cfg.label.min_observed_months == default.label.min_observed_months
    assert cfg.reasons.text["income"].zh == "收入低"
    assert cfg.reasons.text["illness"] == default.reasons.text["illness"]
    # A list replaces the default's whole: only the county's lines are left.
    assert cfg.line_table() == {(2024, "甲县"): 9000.0, (2024, None): 8700.0}
    # The default file itself, named explicitly, is the default.
    assert load_config(DEFAULT_CONFIG) == default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("label:\n  horizon_mnths: 3\n", "unknown key 'label.horizon_mnths'"),
        ("poverty_line:\n  - {year: 2024, line: 9000}\n", "unknown key 'poverty_line'"),
        ("tiers:\n  medium: 0.5\n", "expected medium < high"),
        ("label:\n  horizon_months: 3\n  horizon_months: 4\n",
         "key 'label.horizon_months' appears twice, on lines 2 and 3"),
    ],
)
def test_a_partial_config_is_still_checked_key_by_key(tmp_path, text, message):
    path = tmp_path / "county.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize("loader", [load_config, load_aliases])
def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path, loader):
    path = tmp_path / "broken.yaml"
    path.write_text("label:\n  horizon_months: 3\n  - six\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        loader(path)
    assert str(info.value) == (f"{path}, line 3, column 3: not valid YAML: expected <block end>, "
                               "but found '-' (ParserError).")
    path.write_text("label:\n\thorizon_months: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.yaml, line 2, column 1: not valid YAML: "
                                          r"found character '\\t' that cannot start any token"):
        loader(path)
