"""The structural knobs of the household process, beside the scale parameters of ``Params``.

:class:`Knobs` holds how the process is built rather than how large its rates are: how long
bills and sick leave last, the wage dynamics, spells and return migration, the business cycle,
village-wide shocks, shocks that raise other shocks, changes of household make-up, which
months go unvisited, and the cadres' lines. Its defaults are the default process: with them,
:func:`riskmodel.synthetic.step` does exactly what it did before the knobs existed (same
arithmetic, same random numbers), so a default ledger is byte-identical. The helpers here are
the parts of a month that only a process other than the default runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The cadres' lines of the default process (云南省 in ``configs/default.yaml``).
DEFAULT_LINES = ((2021, 6000.0), (2022, 6600.0), (2023, 6900.0), (2024, 8700.0),
                 (2025, 8700.0))
#: Village disaster hazard by calendar month (floods in summer, drought in spring).
DEFAULT_DISASTER_SEASON = (1.2, 1.2, 1.5, 1.5, 1.5, 2.8, 3.2, 3.2, 2.6, 0.6, 0.3, 0.3)
#: Migrant and local wages by calendar month (year-end pay, Spring Festival, farming season).
MIGRANT_SEASON = (1.3, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.2)
LOCAL_SEASON = (0.8, 0.7, 1, 1.1, 1.1, 1, 1, 1, 1.1, 1.1, 1, 0.9)
# Random numbers only a process other than the default draws (after the default ones).
EXTRA_U = ("settle", "depart", "death", "care", "wave")
EXTRA_N = ("wage",)
EXTRA_V = ("job_wave",)


@dataclass(frozen=True)
class Knobs:
    """Structural knobs of the process; the defaults are the default process.

    ``docs/synthetic.md`` ("Processes") gives each knob's meaning and the section of a process
    specification it is set in.
    """

    # Bills and sick leave.
    illness_bill_sd: float = 0.8
    accident_bill_sd: float = 0.7
    chronic_share: float = 0.15
    sick_recovery: float = 0.25
    injury_recovery: float = 0.3
    serious_recovery: float = 0.15
    # Wages.
    seasonality: float = 1.0
    volatility: float = 0.0
    volatility_spread: float = 0.0
    persistence: float = 0.8
    trend_sd: float = 0.0
    # Employment.
    return_rate: float = 0.0
    cycle_amplitude: float = 0.0
    cycle_wage: float = 0.0
    cycle_months: int = 48
    # Villages.
    disaster_season: tuple[float, ...] = DEFAULT_DISASTER_SEASON
    harvest_shock_rate: float = 0.0
    disaster_months: tuple[int, int] = (6, 12)
    disaster_wage_cut: float = 0.5
    severity_spread: float = 1.0
    business_months: tuple[int, int] = (8, 15)
    job_wave_rate: float = 0.0
    job_wave_loss: float = 0.5
    # Correlated shocks.
    illness_job_loss: float = 0.0
    disaster_illness: float = 1.0
    # Household make-up.
    elderly_death_rate: float = 0.0
    departure_rate: float = 0.0
    # Visits.
    visit_month_odds: tuple[float, ...] = (1.0,) * 12
    visit_migrant_odds: float = 1.0
    visit_village_sd: float = 0.0
    # The cadres' lines: (year, line) pairs.
    lines: tuple[tuple[int, float], ...] = DEFAULT_LINES

    @property
    def extra(self) -> bool:
        """Whether the process draws random numbers of its own (after the default's).

        Knobs that only change arithmetic (durations, seasons, shares, the cycle, the lines)
        keep the default's random numbers: a process that sets only those meets the same
        draws as the default, month by month, so that the two differ only by the knobs.
        """
        return (self.wage_shocks or self.return_rate > 0 or self.job_wave_rate > 0
                or self.illness_job_loss > 0 or self.changes_members
                or self.visit_village_sd > 0)

    @property
    def changes_members(self) -> bool:
        """Whether households lose members (then ``members`` is state, not static)."""
        return self.elderly_death_rate > 0 or self.departure_rate > 0

    @property
    def wage_shocks(self) -> bool:
        return self.volatility > 0 or self.trend_sd > 0

    @property
    def visits_vary(self) -> bool:
        return self.visit_month_odds != (1.0,) * 12 or self.visit_migrant_odds != 1.0


DEFAULT_KNOBS = Knobs()


def populate_more(n: int, village: np.ndarray, villages: int, rng: np.random.Generator,
                  k: Knobs, static: dict, state: dict) -> None:
    """Add what the knobs need to a new population (in place), drawn after the default's."""
    f32 = np.float32
    spread = k.volatility_spread
    static["wage_sd"] = (k.volatility * np.exp(spread * rng.standard_normal(n)
                                               - spread ** 2 / 2)).astype(f32)
    static["wage_trend"] = (k.trend_sd * rng.standard_normal(n)).astype(f32)
    state["wage_x"] = (static["wage_sd"] * rng.standard_normal(n)).astype(f32)
    effect = rng.normal(0, 1, villages)[village] * k.visit_village_sd
    odds = static["visit"] / (1 - static["visit"]) * np.exp(effect)
    static["visit"] = (odds / (1 + odds)).astype(f32)
    if k.changes_members:
        state["members"] = static["members"].copy()


def wage_factor(s: dict, st: dict, t: int, nrm: np.ndarray, k: Knobs,
                reference: int) -> np.ndarray:
    """A household's wage multiplier this month: an AR(1) log shock and its own trend."""
    f32 = np.float32
    rho = f32(k.persistence)
    st["wage_x"] = (rho * st["wage_x"]
                    + f32(np.sqrt(1 - k.persistence ** 2)) * s["wage_sd"] * nrm).astype(f32)
    years = f32((t - reference) / 12)
    return np.exp(st["wage_x"] - s["wage_sd"] ** 2 / 2 + s["wage_trend"] * years).astype(f32)


def cycle(s: dict, t: int, k: Knobs) -> np.ndarray:
    """The business cycle of each path's county: a sine of period ``cycle_months``, in [−1, 1]."""
    phase = 2.0 * s["county"].astype(np.float32)
    return np.sin(np.float32(2 * np.pi * t / k.cycle_months) + phase).astype(np.float32)


def change_members(s: dict, st: dict, u: dict, k: Knobs) -> None:
    """Elderly members die and working adults leave for good (marriage, a split), in place."""
    members = st["members"]
    death = ((st["elderly"] > 0) & (members > 1)
             & (u["death"] < 1 - (1 - k.elderly_death_rate) ** st["elderly"]))
    st["elderly"] = st["elderly"] - death
    members = members - death
    local = (st["a_full"] - st["sick_loc"] - st["sick_mig"] - st["acc_loc"] - st["acc_mig"]
             - st["mig_employed"] - st["mig_unemployed"])
    depart = (local > 0) & (members > 1) & (u["depart"] < k.departure_rate)
    st["a_full"] = st["a_full"] - depart
    members = (members - depart).astype(np.int16)
    st["members"] = members
    for name in ("chronic", "chronic_cost", "disabled", "serious"):
        st[name] = np.minimum(st[name], members).astype(np.int16)
    st["disabled_severe"] = np.minimum(st["disabled_severe"], st["disabled"]).astype(np.int16)


def missed_visit(threshold: np.ndarray, cal: int, st: dict, k: Knobs) -> np.ndarray:
    """The chance each household is not visited this month, by calendar month and absence."""
    odds = threshold / (1 - threshold) * np.float32(k.visit_month_odds[cal])
    away = (st["a_full"] > 0) & (st["mig_employed"] >= st["a_full"])
    odds = odds * np.where(away, np.float32(k.visit_migrant_odds), np.float32(1))
    return (odds / (1 + odds)).astype(np.float32)
