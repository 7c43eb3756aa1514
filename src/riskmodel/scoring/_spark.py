"""Scoring on Apache Spark: the same scoring function applied per partition of households.

The ledger is split into buckets by a hash of ``household_id`` so that every row of a
household lands in one bucket; each bucket is validated and scored by exactly the functions
the pandas engine uses (:func:`riskmodel.ledger.validate_chunk`,
:func:`riskmodel.scoring.score_frame`), and the driver adds the parts up as the pandas engine
does (:class:`riskmodel.ledger.LedgerCounts`), so a household gets the same score, tier and
reasons whichever engine runs. Ranks are global and assigned on the driver after the parts are
put together, as in the pandas engine.

pyspark is an optional extra (``pip install '.[spark]'``); Java 17 is the only system
requirement. The executors' Python is this interpreter unless ``PYSPARK_PYTHON`` says
otherwise.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..config import Config
from ..ledger import month_files, normalise_columns, validate_chunk
from ._core import ChunkResult, score_frame

ROW = "__source_row"
BUCKET = "__bucket"


def spark_session(app_name: str = "riskmodel", cores: int | None = None):
    """The active Spark session, or a new local one configured for scoring.

    Parameters
    ----------
    app_name : str
    cores : int, optional
        Local cores (``local[N]``); all cores by default.

    Returns
    -------
    pyspark.sql.SparkSession
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    return (
        SparkSession.builder.appName(app_name)
        .master(f"local[{cores or '*'}]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", os.environ.get("RISKMODEL_SPARK_DRIVER_MEMORY", "4g"))
        .getOrCreate()
    )


def read_ledger_spark(source: str | Path, spark=None):
    """A ledger as a Spark DataFrame with the file's row numbers, from Parquet or a table.

    A Parquet path keeps each row's position in the file (so quarantined rows name the same
    ``source_row`` as the pandas engine); in a ledger folder, its position in the month files
    read in name order (:func:`riskmodel.ledger.month_files`): the file's row plus the rows of
    the files before it. A table name gets increasing row ids instead.
    """
    from pyspark.sql import functions as F

    spark = spark or spark_session()
    path = Path(str(source))
    if path.is_dir():
        files = month_files(path)
        before = np.concatenate([[0], np.cumsum([pq.ParquetFile(f).metadata.num_rows
                                                 for f in files])])
        offsets = F.create_map(*[x for f, n in zip(files, before, strict=False)
                                 for x in (F.lit(f.name), F.lit(int(n)).cast("long"))])
        frame = spark.read.parquet(*[str(f) for f in files])
        return frame.withColumn(ROW, F.col("_metadata.row_index")
                                + offsets[F.col("_metadata.file_name")])
    if str(source).lower().endswith(".parquet") or path.exists():
        frame = spark.read.parquet(str(source))
        return frame.withColumn(ROW, F.col("_metadata.row_index"))
    return spark.table(str(source)).withColumn(ROW, F.monotonically_increasing_id())


def _contract_names(frame) -> dict[str, str]:
    """Spark column → contract column, through the same header aliases as the pandas reader."""
    columns = [c for c in frame.columns if c != ROW]
    head = frame.select(*columns).limit(1).toPandas()
    renamed = normalise_columns(head, source="spark ledger").columns
    return dict(zip(columns, renamed, strict=True))


def _score_bucket(pdf: pd.DataFrame, model, config: Config, month: str, version: str):
    rows = pdf[ROW].to_numpy(dtype="int64")
    chunk = validate_chunk(pdf.drop(columns=[ROW, BUCKET]).reset_index(drop=True), rows, month)
    frames = score_frame(chunk.valid, model, config, month, model_version=version)
    return ChunkResult.of(chunk, frames)


def score_spark(frame, model, config: Config, month: str, version: str,
                partitions: int = 8, unfilled: Sequence[str] = ()) -> Iterator:
    """Validate and score one month of a Spark ledger, bucket by bucket of households.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        Ledger rows, with Chinese headers or contract names, and the row-number column
        added by :func:`read_ledger_spark`.
    model : RiskModel
    config : Config
    month : str
        ``YYYY-MM``.
    version : str
        Model version recorded on every row.
    partitions : int
        Buckets of households, each scored in one pandas call on an executor.
    unfilled : sequence of str
        Optional count columns the file leaves empty in every row, read as absent
        (:attr:`riskmodel.ledger.LedgerChunks.unfilled`), as the pandas engine reads them.

    Yields
    ------
    ChunkResult
        One per bucket, in bucket order, as the pandas engine yields per chunk.
    """
    from pyspark.sql import functions as F

    names = _contract_names(frame)
    frame = frame.withColumnsRenamed({k: v for k, v in names.items() if k != v})
    frame = frame.drop(*[c for c in unfilled if c in frame.columns])
    household = F.trim(F.col("household_id").cast("string"))
    frame = frame.withColumn(BUCKET, F.pmod(F.xxhash64(household), F.lit(partitions)))

    def score_group(pdf: pd.DataFrame) -> pd.DataFrame:
        bucket = int(pdf[BUCKET].iloc[0])
        part = _score_bucket(pdf, model, config, month, version)
        return pd.DataFrame({"bucket": [bucket], "payload": [pickle.dumps(part)]})

    parts = (frame.groupBy(BUCKET)
             .applyInPandas(score_group, schema="bucket long, payload binary")
             .orderBy("bucket"))
    for row in parts.toLocalIterator():
        yield pickle.loads(row["payload"])


def score_chunks(ledger_path: str | Path, model, config: Config, month: str, version: str,
                 partitions: int | None = None, unfilled: Sequence[str] = ()) -> Iterator:
    """The Spark engine of :func:`riskmodel.scoring.score_month`: a Parquet file or a table."""
    spark = spark_session()
    n = partitions or int(os.environ.get("RISKMODEL_SPARK_PARTITIONS", "8"))
    frame = read_ledger_spark(ledger_path, spark)
    yield from score_spark(frame, model, config, month, version, partitions=n,
                           unfilled=unfilled)
