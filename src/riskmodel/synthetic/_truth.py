"""The truth a real ledger hides: true risk, true cause and the effect of help, by Monte Carlo.

At a truth month every household's full latent state is copied to ``replicas`` paths and run
forward over the horizon with :func:`riskmodel.synthetic._simulate.step` — the very code that
wrote the ledger, under the same process — once as it is, once with each cause taken away, and
with each form of help added to the simulated months (common random numbers throughout).
"""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..ledger import INCOME, SPENDING
from ._knobs import Knobs
from ._simulate import CAUSES, PROVINCE, Draws, Params, _Run, draw, paths, places, step

# Paths simulated at once in the Monte Carlo: bounds its memory (about 1 GB), not its results.
_CHUNK_PATHS = 250_000


def net_income(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Complete monthly net disposable income, months × households."""
    income = sum(columns[c].astype(np.float64) for c in INCOME)
    return income - sum(columns[c].astype(np.float64) for c in SPENDING)


def _remove(cause: str, st: dict) -> None:
    """Take a cause's running burden away from a state (in place)."""
    if cause == "illness":
        st["pend_ill"][:] = 0
        st["mig_employed"] += st["sick_mig"]
        st["sick_loc"][:] = st["sick_mig"][:] = st["chronic_cost"][:] = 0
    elif cause == "accident":
        st["pend_acc"][:] = 0
        st["mig_employed"] += st["acc_mig"]
        st["acc_loc"][:] = st["acc_mig"][:] = 0
    elif cause == "disability":
        st["a_full"] += st["dis_sev_adults"] + st["dis_mild_adults"]
        st["dis_sev_adults"][:] = st["dis_mild_adults"][:] = 0
    elif cause == "education":
        st["fee_free"] = st["school"].copy()
    elif cause == "disaster":
        st["dis_left"][:] = 0
    elif cause == "employment":
        st["mig_employed"] += st["mig_unemployed"]
        st["mig_unemployed"][:] = 0
    else:
        st["biz_left"][:] = 0


def _burdened(cause: str, st: dict) -> np.ndarray:
    """Households whose state carries a running burden of the cause."""
    return {
        "illness": lambda: (st["pend_ill"] > 0) | (st["sick_loc"] + st["sick_mig"] > 0)
        | (st["chronic_cost"] > 0),
        "accident": lambda: (st["pend_acc"] > 0) | (st["acc_loc"] + st["acc_mig"] > 0),
        "disability": lambda: st["dis_sev_adults"] + st["dis_mild_adults"] > 0,
        "education": lambda: st["school"].any(0),
        "disaster": lambda: st["dis_left"] > 0,
        "employment": lambda: st["mig_unemployed"] > 0,
        "business": lambda: st["biz_left"] > 0,
    }[cause]()


_COUNTY_LEVEL = ("epidemic", "price")


def _select(st: dict, index: np.ndarray, replicas: int) -> dict:
    """Per-path copies of the households' state (county-level arrays tiled per replica)."""
    return {k: np.tile(v, replicas) if k in _COUNTY_LEVEL
            else np.repeat(v[..., index], replicas, axis=-1) for k, v in st.items()}


def _forward(pth: dict, st: dict, t: int, draws: list[Draws], params: Params, knobs: Knobs,
             mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Simulate the months after ``t``; the flows that poverty and the measures need (and the
    members of each month, where they change)."""
    out: dict[str, list] = {"net": [], "inc_wage": [], "inc_transfer": [],
                            "exp_medical_oop": [], "exp_education": []}
    if knobs.changes_members:
        out["members"] = []
    for k, d in enumerate(draws):
        if mask is not None:
            d = Draws({a: b[mask] for a, b in d.u.items()}, {a: b[mask] for a, b in d.n.items()},
                      d.v, d.c)
        f = step(pth, st, t + 1 + k, d, params, knobs)
        f["members"] = st.get("members")
        out["net"].append(sum(f[c] for c in INCOME) - sum(f[c] for c in SPENDING))
        for name in list(out)[1:]:
            out[name].append(f[name])
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def _falls(cum: np.ndarray, gap: np.ndarray, replicas: int) -> np.ndarray:
    """Share of replicas whose window income drops under the line in some month ahead.

    ``cum`` is the running sum of the simulated months; a window holds at most twelve of them.
    """
    window = cum.copy()
    window[12:] -= cum[:-12]
    return (window < gap).any(0).reshape(-1, replicas).mean(1)


def monte_carlo(run: _Run, t: int, config: Config, grants: tuple[float, ...], replicas: int,
                seed: int, params: Params, knobs: Knobs) -> dict[str, np.ndarray]:
    """True risk at month ``t`` under the base, each cause removed, and each form of help."""
    horizon = config.label.horizon_months
    i = t - run.start
    n = run.static["members"].shape[0]
    counties, _, villages = places(params)
    net = net_income(run.columns)
    members = run.static["members"].astype(np.float64)
    gap = np.empty((horizon, n))
    # Where members change, the line each path must clear scales with its own members.
    per_member = np.empty((horizon, n))
    history_k = np.empty((horizon, n))
    loss_back = np.zeros((len(CAUSES), horizon, n))
    for k in range(horizon):
        month = t + 1 + k
        low = max(run.start, month - 11)
        observed = month - low + 1
        line = np.array([config.line_for(month // 12, province=PROVINCE, county=c)
                         for c in counties])[run.static["county"]]
        history = net[low - run.start: i + 1].sum(0)
        known = observed >= config.label.min_observed_months
        gap[k] = line * members * observed / 12 - history if known else -np.inf
        per_member[k] = line * observed / 12 if known else -np.inf
        history_k[k] = history
        loss_back[:, k] = run.losses[low - run.start: i + 1].sum(0)
    snap = run.snapshots[t]
    present = {c: (loss_back[j, 0] > 0) | _burdened(c, snap) for j, c in enumerate(CAUSES)}
    adjustments = [(f"true_risk_grant_{a:g}", "inc_transfer", a, None, 1) for a in grants]
    adjustments += [(f"true_risk_{m.code}", m.effect.column, m.effect.amount, m.effect.share,
                     m.effect.months) for m in config.measures]
    out = {name: np.empty(n) for name in
           ["true_risk", *[f"true_risk_without_{c}" for c in CAUSES], *[a[0] for a in adjustments]]}
    per_chunk = max(1, _CHUNK_PATHS // replicas)
    for chunk, lo in enumerate(range(0, n, per_chunk)):
        hh = np.arange(lo, min(n, lo + per_chunk))
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, t, chunk)))
        static = {k: v[..., hh] for k, v in run.static.items()}
        pth = paths(static, replicas, len(villages), params.counties)
        n_paths = len(hh) * replicas
        draws = [draw(rng, n_paths, replicas * len(villages), replicas * params.counties,
                      knobs.extra) for _ in range(horizon)]
        base = _forward(pth, _select(snap, hh, replicas), t, draws, params, knobs)
        cum = np.cumsum(base["net"], axis=0)
        g = (np.repeat(gap[:, hh], replicas, axis=1) if not knobs.changes_members else
             np.repeat(per_member[:, hh], replicas, axis=1) * base["members"]
             - np.repeat(history_k[:, hh], replicas, axis=1))
        risk = _falls(cum, g, replicas)
        out["true_risk"][hh] = risk
        for name, column, amount, share, months in adjustments:
            active = (np.arange(horizon) < months)[:, None]
            change = amount if amount is not None else share * base[column]
            sign = 1 if column.startswith("inc_") else -1
            out[name][hh] = _falls(cum + np.cumsum(sign * change * active, axis=0), g, replicas)
        for j, cause in enumerate(CAUSES):
            sub = hh[present[cause][hh]]
            result = risk.copy()
            if len(sub):
                mask = np.repeat(present[cause][hh], replicas)
                st = _select(snap, sub, replicas)
                _remove(cause, st)
                sub_paths = {k: v[..., mask] for k, v in pth.items()}
                fwd = _forward(sub_paths, st, t, draws, params, knobs, mask)
                g_sub = np.repeat(gap[:, sub] - loss_back[j][:, sub], replicas, axis=1)
                if knobs.changes_members:
                    g_sub = (np.repeat(per_member[:, sub], replicas, axis=1) * fwd["members"]
                             - np.repeat(history_k[:, sub] + loss_back[j][:, sub], replicas,
                                         axis=1))
                result[present[cause][hh]] = _falls(np.cumsum(fwd["net"], axis=0), g_sub, replicas)
            out[f"true_risk_without_{cause}"][hh] = result
    return out


def qualify(values: dict[str, np.ndarray], run: _Run, k: int, config: Config) -> None:
    """Blank the measures a household does not qualify for at ledger month ``k`` (in place)."""
    cols = run.columns
    medical = cols["exp_medical_oop"][max(0, k - 11): k + 1].sum(0)
    qualifies = {
        "labor": (cols["labor_full"][k] + cols["labor_partial"][k]) > 0,
        "medical_bills": medical > 0,
        "students": (cols["students_compulsory"][k] + cols["students_noncompulsory"][k]) > 0,
    }
    for m in config.measures:
        if m.requires is not None:
            values[f"true_risk_{m.code}"][~qualifies[m.requires]] = np.nan


def true_cause(values: dict[str, np.ndarray]) -> np.ndarray:
    """The cause whose removal lowers the risk most, if it removes at least half of it."""
    base = values["true_risk"]
    drops = np.stack([base - values[f"true_risk_without_{c}"] for c in CAUSES])
    best = drops.argmax(0)
    strong = (base > 0) & (drops.max(0) >= 0.5 * base)
    return np.where(strong, np.asarray(CAUSES, dtype=object)[best], "structural")


