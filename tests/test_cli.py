"""The command line: options, help and flags, as an operator types them."""

from __future__ import annotations

import argparse

import pytest

from riskmodel.cli import build_parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


REQUIRED = {
    "generate": ["--households", "10", "--months", "3", "--out", "l.parquet"],
    "ingest": ["--sources", "county", "--out", "l.parquet"],
    "validate": ["--ledger", "l.csv"],
    "train": ["--ledger", "l.csv"],
    "score": ["--ledger", "l.csv", "--out", "o"],
    "explain": ["--ledger", "l.csv", "--household", "H1"],
    "report": ["--scores", "o/2024-12", "--out", "b.html"],
    "plan": ["--ledger", "l.csv", "--budget", "1000", "--out", "o"],
}


def test_every_command_is_covered():
    assert set(_commands()) == set(REQUIRED)


@pytest.mark.parametrize("command", sorted(REQUIRED))
@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_verbose_is_accepted_before_and_after_the_command(command, flag):
    parser = build_parser()
    assert parser.parse_args([command, *REQUIRED[command]]).verbose is False
    assert parser.parse_args([flag, command, *REQUIRED[command]]).verbose is True
    assert parser.parse_args([command, *REQUIRED[command], flag]).verbose is True
    assert parser.parse_args([command, flag, *REQUIRED[command]]).verbose is True


def test_verbose_after_the_command_runs_it(tmp_path, capsys):
    missing = tmp_path / "absent.csv"
    assert main(["validate", "--ledger", str(missing), "--verbose"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("riskmodel validate: ") and "absent.csv" in err[0]


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_every_option_has_a_help_line_with_its_default(command):
    parser = _commands()[command]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[-1]
        assert action.help, f"{command} {name} has no help line"
        if action.required:
            assert "(required)" in action.help, f"{command} {name}"
        elif not any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            assert f"(default: {action.default})" in text, f"{command} {name}"
        else:
            assert "(default: " in action.help, f"{command} {name} does not say its default"
