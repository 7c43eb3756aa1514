"""Makes this folder with the package as it was before its modules moved into subpackages.

Run from a checkout of that version (its classes are ``riskmodel.models.RiskModel``,
``riskmodel.models.Calibrator`` and ``riskmodel.scorecard.Scorecard``)::

    PYTHONPATH=<old checkout>/src python make_model.py tests/data/legacy_model

It fits a small model on a synthetic ledger (600 households, 24 months, 12 features, 8 trees),
saves it as the registry saves models (``save_model``: skops inside an MLflow model folder) and
writes 40 rows of features with the old code's probabilities and log-odds beside it. The skops
file is then packed with deflate compression (its members unchanged) to keep the folder small.
"""

import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from riskmodel.features import build_features
from riskmodel.labels import make_labels
from riskmodel.models import RiskModel
from riskmodel.tracking import save_model

from riskmodel.config import load_config
from riskmodel.ledger import validate_ledger
from riskmodel.synthetic import generate_ledger

out = Path(sys.argv[1])
cfg = load_config()
ledger = validate_ledger(generate_ledger(600, 24, seed=3)).valid
labels = make_labels(ledger, cfg)
rows = np.flatnonzero(labels["target"].notna().to_numpy())
target = labels["target"].to_numpy()[rows].astype(int)
months = labels["month"].to_numpy(dtype=object)[rows]
feats = build_features(ledger, cfg, months=sorted(set(months)))
names = list(cfg.features)[:12]
X = feats.loc[ledger.index[rows], names].reset_index(drop=True)
model = RiskModel.from_config(cfg, names, max_iter=8, max_leaf_nodes=6, min_samples_leaf=20,
                              calibration="sigmoid", n_iter_no_change=5)
model.fit(X, target, months=months)
save_model(model, out / "model")
sample = X.iloc[:40].copy()
sample.to_csv(out / "features.csv", index=False)
pd.DataFrame({"risk": model.predict_proba(sample)[:, 1], "raw": model.decision_function(sample)}
             ).to_csv(out / "predictions.csv", index=False, float_format="%.17g")

skops_file = out / "model" / "model.skops"
packed = skops_file.with_suffix(".packed")
with zipfile.ZipFile(skops_file) as src, zipfile.ZipFile(
        packed, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
    for info in src.infolist():
        dst.writestr(info.filename, src.read(info.filename))
packed.replace(skops_file)
