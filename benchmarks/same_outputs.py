"""Fingerprint what the product publishes, to show that a change of structure changed nothing.

Runs the command line on the committed sample (``data/synthetic/ledger.parquet``) in a fresh
temporary folder with its own SQLite tracking store: ``train`` (alias forced, so the sample's
model is scored whatever the gate says), ``score`` of the last two months, ``report`` of the
last, ``plan`` with a grant and with visits. Then writes one JSON fingerprint: a digest of every
published table (as its values, so Parquet metadata and file order do not count), of the watch
list and plan CSV files byte for byte, and the bulletin's visible text with the run id and
timestamps masked, beside the figures of ``summary.json`` and ``plan_summary.json`` that do not
depend on the clock.

``--ledger`` runs it on another Parquet ledger (a regime-b ledger from ``riskmodel ingest``,
say) instead of the sample.

Run it on two versions of the code and compare::

    python benchmarks/same_outputs.py --out before.json      # on the old commit
    python benchmarks/same_outputs.py --out after.json       # on the new one
    python benchmarks/same_outputs.py --compare before.json after.json

``--compare`` prints each entry that differs and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import hashlib
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "synthetic" / "ledger.parquet"
COMMAND = "import sys; from riskmodel.cli import main; sys.exit(main(sys.argv[1:]))"
# Keys of the JSON summaries that name a run, a time or a duration.
VOLATILE_KEYS = re.compile(r"run_id|time|seconds|started|finished|elapsed|duration|created"
                           r"|host|pid|path|folder|uri|_at$|^cpu_s$|^timings_s$", re.IGNORECASE)
# A run id is 32 hex digits on its own: the 64 of a SHA-256 digest are compared, not masked.
VOLATILE_TEXT = [re.compile(p) for p in (r"\b[0-9a-f]{32}\b", r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}"
                                         r"(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?",
                                         r"\d+(\.\d+)? ?(s|秒)\b")]


def _run(*args: str, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", COMMAND, *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"riskmodel {' '.join(args)} exited {done.returncode}:\n"
                         f"{done.stdout}\n{done.stderr}")


def _frame_digest(path: Path) -> str:
    frame = pd.read_parquet(path)
    frame = frame.reindex(sorted(frame.columns), axis=1)
    values = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    return hashlib.sha256(values.tobytes() + "|".join(frame.columns).encode()).hexdigest()


def _bytes_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def _page_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    text = "\n".join(parser.parts)
    for pattern in VOLATILE_TEXT:
        text = pattern.sub("<masked>", text)
    return text


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if not VOLATILE_KEYS.search(k)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str):
        for pattern in VOLATILE_TEXT:
            value = pattern.sub("<masked>", value)
    return value


def fingerprint(work: Path, sample: Path = SAMPLE) -> dict:
    """Run the commands in ``work`` on the ledger ``sample`` and return the fingerprint of what
    they published."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlruns.db'}"}
    ledger = pd.read_parquet(sample, columns=["month", "township"])
    months = sorted(ledger["month"].unique())
    last, before = months[-1], months[-2]
    visits = pd.DataFrame({"township": sorted(ledger["township"].unique()), "visits": 5})
    visits.to_csv(work / "visits.csv", index=False)
    _run("train", "--ledger", str(sample), "--alias", "champion", "--force-alias",
         cwd=work, env=env)
    for month in (before, last):
        _run("score", "--ledger", str(sample), "--month", month, "--out", "out",
             cwd=work, env=env)
    _run("report", "--scores", f"out/{last}", "--previous", f"out/{before}",
         "--out", "bulletin.html", cwd=work, env=env)
    _run("plan", "--ledger", str(sample), "--budget", "150000", "--grant", "1500",
         "--visits", "visits.csv", "--out", "plan", cwd=work, env=env)
    _run("plan", "--ledger", str(sample), "--budget", "150000", "--out", "plan-measures",
         cwd=work, env=env)

    found: dict[str, object] = {}
    for folder in ("out", "plan", "plan-measures"):
        for path in sorted((work / folder).rglob("*")):
            name = str(path.relative_to(work))
            if path.suffix == ".parquet":
                found[name] = _frame_digest(path)
            elif path.suffix == ".csv":
                found[name] = _bytes_digest(path)
            elif path.suffix == ".json":
                found[name] = _stable(json.loads(path.read_text(encoding="utf-8")))
            elif path.suffix == ".html":
                found[name] = hashlib.sha256(_page_text(path).encode()).hexdigest()
    found["bulletin.html"] = _page_text(work / "bulletin.html")
    return found


def compare(before: dict, after: dict) -> list[str]:
    """Names of the entries that differ or exist on one side only (volatile keys left out)."""
    return [k for k in sorted(set(before) | set(after))
            if _stable(before.get(k)) != _stable(after.get(k))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the fingerprint here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--ledger", type=Path, default=SAMPLE,
                        help="the Parquet ledger to run on (default: the committed sample)")
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (json.loads(p.read_text(encoding="utf-8")) for p in args.compare)
        differ = compare(before, after)
        for name in differ:
            print(f"differs: {name}")
        print(f"{len(set(before) | set(after)) - len(differ)} entries equal, "
              f"{len(differ)} differ")
        return 1 if differ else 0
    with tempfile.TemporaryDirectory(prefix="same-outputs-") as tmp:
        found = fingerprint(Path(tmp), args.ledger.resolve())
    text = json.dumps(found, ensure_ascii=False, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
