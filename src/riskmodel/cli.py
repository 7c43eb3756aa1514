"""The ``riskmodel`` command line: parses arguments and calls the library's jobs.

Exit codes: 0 done; 1 unexpected error; 2 bad input (ledger, config, training data);
3 model not found or incompatible; 4 output exists or another run holds it; 5 the tracking
server cannot be reached; 6 nothing (or too little) of the month could be scored;
7 (train) trained and registered, but the alias gate left the alias where it was.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from .config import DEFAULT_MODEL_URI
from .errors import RiskModelError
from .months import check_month

ALLOW_UNSCORED_HELP = ("publish even when no household, or fewer than scoring.min_scored_share "
                       "of the month's, can be scored (default: exit 6, nothing published)")


def _cmd_generate(args: argparse.Namespace) -> int:
    from .errors import ArgumentError
    from .synthetic import check_paths, generate, load_process, write

    if args.truth_months and not args.truth:
        raise ArgumentError("Got --truth-months without --truth, expected --truth FILE too "
                            "(where the true risks go).")
    check_paths(args.out, args.truth)
    if not args.sources and (args.sources_expected or args.verification_month):
        raise ArgumentError("Got --sources-expected or --verification-month without --sources, "
                            "expected --sources DIR too (where the county's exports go).")
    if args.sources:
        from .synthetic import check_sources_paths
        expected = args.sources_expected or _sources_expected_path(args.out)
        check_sources_paths(args.sources, expected, [args.out, args.truth])
    truth_months = ([m.strip() for m in args.truth_months.split(",")] if args.truth_months
                    else None)
    process = load_process(args.process)
    if args.sources and not process.is_default:
        raise ArgumentError(f"Got --sources with --process {args.process}: the county's exports "
                            "are written from the default process; drop one of them.")
    data = generate(households=args.households, months=args.months, start=args.start,
                    seed=args.seed, truth_months=truth_months, with_truth=bool(args.truth),
                    process=process)
    sources = None
    if args.sources:
        from .synthetic import county_sources
        sources = county_sources(args.households, args.months, args.start, args.seed,
                                 verification_month=args.verification_month or 3)
    # Everything that can fail comes before the files: a failed run writes nothing.
    lines = [f"process {process.name}{' (held out)' if process.held_out else ''}",
             *data.describe()]
    write(data, args.out, args.truth)
    if sources is not None:
        from .synthetic import write_sources
        write_sources(sources, args.sources, expected)
        lines.append(f"sources: {len(sources.files)} files in {args.sources} ({sources.persons:,} "
                     f"persons a month, {sources.warnings:,} warnings, {sources.unmatched} about "
                     f"nobody in the person tables); expected ingest ledger: {expected}")
    for line in lines:
        print(line)
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .sources import ingest

    result = ingest(args.sources, args.out, config=args.config, force=args.force)
    print(result.describe())
    return 0


def _sources_expected_path(out: str) -> str:
    """Where ``generate --sources`` puts the expected ingest ledger by default: beside --out."""
    path = Path(out)
    return str(path.with_name(f"{path.stem}_sources_expected.parquet"))


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_config
    from .ledger import split_empty_columns, validate_file

    # Chunk by chunk of households, as the scoring job reads the file: memory stays bounded.
    result = validate_file(args.ledger, load_config().scoring.chunk_households, out=args.out,
                           sheet=args.sheet)
    print(f"{args.ledger}: {result.n_in} rows read, {result.n_valid} valid, "
          f"{len(result.quarantine)} quarantined")
    for rule, count in result.counts_by_rule.items():
        print(f"  {rule}: {count}")
    if result.missing_optional:
        print("  optional columns absent (treated as unknown): "
              + ", ".join(result.missing_optional))
    unknown, needed = split_empty_columns(result.empty_columns)
    if unknown:
        print("  columns present but empty in every row (treated as unknown): "
              + ", ".join(unknown))
    if needed:
        print("  columns present but empty in every row, which every row needs a value in "
              "(each row quarantined): " + ", ".join(needed))
    if result.n_blank:
        shown = ", ".join(str(r) for r in result.blank_rows[:5])
        print(f"  blank rows skipped (every field empty; no household): {result.n_blank} "
              f"(source_row {shown}{' …' if result.n_blank > 5 else ''})")
    if args.out:
        out = Path(args.out)
        print(f"wrote {out / 'valid.parquet'}, {out / 'quarantine.parquet'} and "
              f"{out / 'quarantine.xlsx'}")
    return 0


# Exit code of `train` when the version is registered but did not earn --alias.
NOT_PROMOTED = 7


def _cmd_train(args: argparse.Namespace) -> int:
    from .explain import explain_month
    from .model import train_from_path

    result = train_from_path(args.ledger, config_path=args.config,
                             tracking_uri=args.tracking_uri, alias=args.alias,
                             force_alias=args.force_alias, reasons=explain_month)
    return NOT_PROMOTED if result.promotion is not None and not result.promotion.promoted else 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .jobs import score_month

    result = score_month(args.ledger, args.out, month=args.month, model_uri=args.model,
                         config_path=args.config, force=args.force, engine=args.engine,
                         tracking_uri=args.tracking_uri, allow_unscored=args.allow_unscored)
    print(result.describe())
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_household

    print(explain_household(args.ledger, args.household, month=args.month,
                            model_uri=args.model, config_path=args.config,
                            tracking_uri=args.tracking_uri))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .bulletin import write_bulletin

    path = write_bulletin(args.scores, args.out, previous=args.previous)
    print(f"wrote {path}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from .plan import plan_month

    result = plan_month(args.ledger, args.out, budget=args.budget, grant=args.grant,
                        month=args.month, model_uri=args.model, config_path=args.config,
                        visits=args.visits, tracking_uri=args.tracking_uri, force=args.force,
                        allow_unscored=args.allow_unscored)
    print(result.describe())
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a positive integer")
    return value


def _amount(text: str) -> float:
    """Yuan as a ledger cell may write them: ``30000``, ``30,000``, ``３００００``."""
    from .ledger import parse_amount

    try:
        return parse_amount(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected an amount in yuan such as 30000 or 30,000") from None


def _add_sheet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sheet", metavar="NAME",
                   help="the workbook sheet holding the ledger (default: the first "
                        "whose header names every required column)")


def _month(text: str) -> str:
    return check_month(text, None, argparse.ArgumentTypeError)


class _HelpFormatter(argparse.HelpFormatter):
    """Appends an option's default to its help line, unless the line already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # Identity, not equality: a default of 0 is shown, as False and None are not.
        if ("default" not in text and action.option_strings
                and not any(action.default is v for v in (None, False, argparse.SUPPRESS))):
            text += " (default: %(default)s)"
        return text


CONFIG_HELP = "YAML file of the keys that differ from the packaged configs/default.yaml " \
              "(default: the packaged defaults alone)"
TRACKING_HELP = "MLflow tracking store (default: $MLFLOW_TRACKING_URI, else " \
                "sqlite:///mlruns.db in the working folder)"
MODEL_HELP = "registered model URI or model folder"
MONTH_HELP = "month YYYY-MM (default: the ledger's last month)"
LEDGER_HELP = "ledger file: .parquet, .csv or .xlsx (required)"


def build_parser() -> argparse.ArgumentParser:
    # Accepted before the command and after it: `riskmodel -v score` and `riskmodel score -v`.
    # SUPPRESS keeps a command's parser from resetting the flag given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging, and the traceback of a file error (default: off)")
    parser = argparse.ArgumentParser(
        prog="riskmodel",
        description="Risk of rural households falling back into poverty: ingest, generate, "
                    "validate, train, score, explain, report, plan.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and the traceback of a file error (default: off)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common],
                              formatter_class=_HelpFormatter)

    p = command("generate", "write a synthetic ledger (and its truth)")
    p.add_argument("--households", type=_positive_int, required=True, metavar="N",
                   help="households to generate (required)")
    p.add_argument("--months", type=_positive_int, required=True, metavar="N",
                   help="months per household (required)")
    p.add_argument("--start", type=_month, default="2022-01", metavar="YYYY-MM",
                   help="first month")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the "
                                                       "same ledger")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="ledger file: .parquet, or .csv (UTF-8) (required)")
    p.add_argument("--process", default="default", metavar="NAME|PATH",
                   help="the household process: a packaged name (seasonal, long-bills, "
                        "volatile-wages, return-migration, village-shocks, sparse-visits) or a "
                        "process specification's YAML file (default: default)")
    p.add_argument("--truth", metavar="PATH", help="also write the truth file (.parquet or "
                                                   ".csv) (default: none)")
    p.add_argument("--truth-months", metavar="YYYY-MM,...",
                   help="comma-separated YYYY-MM months for the Monte Carlo "
                        "truth (default: last month with a full horizon)")
    p.add_argument("--sources", metavar="DIR",
                   help="also write the county's exports of the same households into DIR, a new "
                        "or empty folder: person, migrant-work and warning tables per month "
                        "(default: none)")
    p.add_argument("--sources-expected", metavar="PATH",
                   help="with --sources: where the ledger an ingest of DIR must give goes, "
                        "outside DIR (default: beside --out, <name>_sources_expected.parquet)")
    p.add_argument("--verification-month", type=int, choices=range(1, 13), metavar="1-12",
                   help="with --sources: calendar month of the yearly income verification "
                        "(default: 3)")
    p.set_defaults(func=_cmd_generate)

    p = command("ingest", "read a county's sources folder (person tables, migrant tables, "
                          "warnings) into the ledger")
    p.add_argument("--sources", required=True, metavar="DIR",
                   help="folder of the monthly downloads (.csv, .xlsx; any depth) (required)")
    p.add_argument("--out", required=True, metavar="LEDGER.parquet",
                   help="the ledger to write, a folder of one YYYY-MM.parquet per month; "
                        "ingest_report.json and ingest_quarantine.parquet/"
                        ".xlsx go beside it (required)")
    p.add_argument("--config", metavar="YAML", help=CONFIG_HELP)
    p.add_argument("--force", action="store_true", help="replace an existing ledger: the "
                                                        "months added since the last ingest "
                                                        "are appended when its record allows, "
                                                        "else the whole folder is read "
                                                        "(default: refuse it, exit code 4)")
    p.set_defaults(func=_cmd_ingest)

    p = command("validate", "check a ledger; write valid rows and the quarantine")
    p.add_argument("--ledger", required=True, metavar="PATH", help=LEDGER_HELP)
    p.add_argument("--out", metavar="DIR",
                   help="folder for valid.parquet, quarantine.parquet and quarantine.xlsx "
                        "(default: none; only the counts are printed)")
    _add_sheet(p)
    p.set_defaults(func=_cmd_validate)

    p = command("train", "train, backtest, track in MLflow, register")
    p.add_argument("--ledger", required=True, metavar="PATH", help=LEDGER_HELP)
    p.add_argument("--config", metavar="YAML", help=CONFIG_HELP)
    p.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    p.add_argument("--alias", help="set this registry alias on the new version, e.g. champion "
                                   "(default: none; the version is registered without one)")
    p.add_argument("--force-alias", action="store_true",
                   help="set --alias even when the model does not pass the alias gate "
                        "(training.promotion); recorded on the run (default: off)")
    _add_sheet(p)
    p.set_defaults(func=_cmd_train)

    p = command("score", "score one month of the ledger: watch list and outputs")
    p.add_argument("--ledger", required=True, metavar="PATH", help=LEDGER_HELP)
    p.add_argument("--month", type=_month, metavar="YYYY-MM", help=MONTH_HELP)
    p.add_argument("--model", default=DEFAULT_MODEL_URI, metavar="URI", help=MODEL_HELP)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder; the month is written to DIR/YYYY-MM (required)")
    p.add_argument("--config", metavar="YAML", help=CONFIG_HELP)
    p.add_argument("--engine", choices=["pandas", "spark"], default="pandas",
                   help="what scores the chunks")
    p.add_argument("--force", action="store_true", help="replace an existing month's output "
                                                        "(default: refuse it, exit code 4)")
    p.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    p.add_argument("--allow-unscored", action="store_true", help=ALLOW_UNSCORED_HELP)
    _add_sheet(p)
    p.set_defaults(func=_cmd_score)

    p = command("explain", "one household's score, causes, reasons and what-if")
    p.add_argument("--ledger", required=True, metavar="PATH", help=LEDGER_HELP)
    p.add_argument("--household", required=True, metavar="ID", help="household id (required)")
    p.add_argument("--month", type=_month, metavar="YYYY-MM", help=MONTH_HELP)
    p.add_argument("--model", default=DEFAULT_MODEL_URI, metavar="URI", help=MODEL_HELP)
    p.add_argument("--config", metavar="YAML", help=CONFIG_HELP)
    p.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    _add_sheet(p)
    p.set_defaults(func=_cmd_explain)

    p = command("report", "the month's bulletin (一月一通报) as one HTML file")
    p.add_argument("--scores", required=True, metavar="DIR",
                   help="a month's output folder, DIR/YYYY-MM of `score` (required)")
    p.add_argument("--previous", metavar="DIR", help="the previous month's output folder "
                                                     "(default: the month before beside "
                                                     "--scores, when it exists)")
    p.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write "
                                                                "(required)")
    p.set_defaults(func=_cmd_report)

    p = command("plan", "budget and visit plans that prevent the most falls")
    p.add_argument("--ledger", required=True, metavar="PATH", help=LEDGER_HELP)
    p.add_argument("--month", type=_month, metavar="YYYY-MM", help=MONTH_HELP)
    p.add_argument("--model", default=DEFAULT_MODEL_URI, metavar="URI", help=MODEL_HELP)
    p.add_argument("--budget", type=_amount, required=True, metavar="YUAN",
                   help="yuan available (required)")
    p.add_argument("--grant", type=_amount, metavar="YUAN",
                   help="one-off amount each chosen household receives (default: none; the "
                        "configured measures)")
    p.add_argument("--visits", metavar="CSV", help="CSV of visits available per township; "
                                                   "writes visits.csv (default: none)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder; the plan is written to DIR/YYYY-MM (required)")
    p.add_argument("--config", metavar="YAML", help=CONFIG_HELP)
    p.add_argument("--force", action="store_true", help="replace an existing month's plan "
                                                        "(default: refuse it, exit code 4)")
    p.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    p.add_argument("--allow-unscored", action="store_true", help=ALLOW_UNSCORED_HELP)
    _add_sheet(p)
    p.set_defaults(func=_cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``riskmodel`` console script."""
    args = build_parser().parse_args(argv)
    # pandera imports pyspark.pandas when the spark extra is installed, which warns about the
    # pandas version on every command; scoring on Spark does not use pyspark.pandas.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .ledger import keep_freed_memory, ledger_sheet, use_memory_pool

    use_memory_pool()
    keep_freed_memory()
    try:
        with ledger_sheet(getattr(args, "sheet", None)):
            return args.func(args)
    except RiskModelError as exc:
        print(f"riskmodel {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # The machine, not the input: a full disk, no permission, a file where --out wants a
        # folder. One line for the operator; the traceback with --verbose.
        logging.getLogger("riskmodel").debug("file error", exc_info=True)
        print(f"riskmodel {args.command}: cannot read or write a file: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"riskmodel {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
