"""Behaviour metrics from the trials table, as AllenSDK 2.16.2 computes them.

Vectorised: AllenSDK's per-trial ``apply`` and windows loop become array arithmetic, and
``scipy.stats.norm.ppf`` is Wichura's AS241 (the algorithm of Python's
``statistics.NormalDist.inv_cdf``) in numpy, which agrees with scipy to ~1e-15.

One deliberate difference: when a file stores ``lick_times`` as one float per trial (the
writer does so when every trial has exactly one lick), AllenSDK's metrics raise TypeError;
here each float counts as that trial's one lick (NaN as none).
"""

from __future__ import annotations

import numpy as np

SLIDING_WINDOW = 100  # trials, for the rolling hit and false-alarm rates
DPRIME_LIMITS = (1 / SLIDING_WINDOW, 1 - 1 / SLIDING_WINDOW)

# AS241 coefficients, highest power first (for np.polyval)
_CENTRAL = (
    (2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4,
     4.5921953931549871457e4, 1.3731693765509461125e4, 1.9715909503065514427e3,
     1.3314166789178437745e2, 3.3871328727963666080e0),
    (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4,
     2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2,
     4.2313330701600911252e1, 1.0),
)  # fmt: skip
_INTERMEDIATE = (
    (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
     1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
     4.63033784615654529590e0, 1.42343711074968357734e0),
    (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
     1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
     2.05319162663775882187e0, 1.0),
)  # fmt: skip
_TAIL = (
    (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
     2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
     5.46378491116411436990e0, 6.65790464350110377720e0),
    (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
     7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
     5.99832206555887937690e-1, 1.0),
)  # fmt: skip


def norm_ppf(p) -> np.ndarray:
    """The standard normal quantile function (``scipy.stats.norm.ppf``), vectorised.

    NaN stays NaN; 0 and 1 give -inf and inf.
    """
    p = np.asarray(p, dtype=float)
    q = p - 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 0.180625 - q * q
        central = q * np.polyval(_CENTRAL[0], r) / np.polyval(_CENTRAL[1], r)
        s = np.sqrt(-np.log(np.where(q <= 0, p, 1 - p)))
        mid = np.polyval(_INTERMEDIATE[0], s - 1.6) / np.polyval(_INTERMEDIATE[1], s - 1.6)
        tail = np.polyval(_TAIL[0], s - 5.0) / np.polyval(_TAIL[1], s - 5.0)
        outer = np.where(s <= 5.0, mid, tail)
        outer = np.where(q < 0, -outer, outer)
        x = np.where(np.abs(q) <= 0.425, central, outer)
    x = np.where(p == 0, -np.inf, np.where(p == 1, np.inf, x))
    return np.where(np.isnan(p) | (p < 0) | (p > 1), np.nan, x)


def _licks(trials) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, lick_time, licks_per_row)`` for every lick, in row then file order."""
    column = trials["lick_times"].to_numpy()
    if column.dtype != object:  # one float per trial (see module notes)
        times = column.astype(float)
        counts = (~np.isnan(times)).astype(np.int64)
        return np.flatnonzero(counts), times[counts > 0], counts
    counts = np.fromiter((len(v) for v in column), dtype=np.int64, count=len(column))
    times = np.concatenate(column).astype(float) if counts.sum() else np.empty(0)
    return np.repeat(np.arange(len(column)), counts), times, counts


def response_latency(trials, response_window_start: float) -> np.ndarray:
    """Per trial: first lick later than ``response_window_start`` after the change, minus it.

    ``inf`` when there is no such lick or no change time.
    """
    rows, times, _ = _licks(trials)
    change = trials["change_time"].to_numpy(dtype=float)
    latency = np.full(len(trials), np.inf)
    delta = times - change[rows]
    valid = delta > response_window_start
    first_rows, first = np.unique(rows[valid], return_index=True)
    latency[first_rows] = delta[valid][first]
    return latency


def reward_rate(
    trials, response_window_start: float, window=0.75, trial_window=25, initial_trials=10
) -> np.ndarray:
    """Rewards per minute over the trials ``[i-25, i+25)``; NaN for the first 10 trials.

    AllenSDK's ``calculate_reward_rate``: a trial counts when its response latency is
    below ``window`` seconds.
    """
    n = len(trials)
    correct = response_latency(trials, response_window_start) < window
    starts = trials["start_time"].to_numpy(dtype=float)
    rate = np.full(n, np.nan)
    rows = np.arange(initial_trials, n)
    if rows.size:
        low = np.maximum(0, rows - trial_window)
        high = np.minimum(rows + trial_window, n)
        counted = np.concatenate([[0], np.cumsum(correct)])
        with np.errstate(divide="ignore", invalid="ignore"):
            values = (counted[high] - counted[low]) / (starts[high - 1] - starts[low]) * 60
        rate[rows] = np.where(np.isinf(values), np.nan, values)
    return rate


def _responses(trials, one: str, zero: str) -> np.ndarray:
    """1 where ``one``, 0 where ``zero``, else NaN, over non-aborted trials."""
    kept = ~trials["aborted"].to_numpy(dtype=bool)
    out = np.full(int(kept.sum()), np.nan)
    out[trials[one].to_numpy(dtype=bool)[kept]] = 1
    out[trials[zero].to_numpy(dtype=bool)[kept]] = 0
    return out


def _rolling_rates(responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw rolling rate and the trial-count-corrected one (AllenSDK's trial_number_limit)."""
    import pandas as pd

    rolling = pd.Series(responses).rolling(window=SLIDING_WINDOW, min_periods=0)
    raw, count = rolling.mean().to_numpy(), rolling.count().to_numpy()
    with np.errstate(divide="ignore"):
        floor, ceiling = 1.0 / (2 * count), 1 - 1.0 / (2 * count)
    corrected = np.minimum(np.maximum(raw, floor), ceiling)
    corrected = np.where(np.isnan(raw), raw, corrected)
    return raw, np.where(count == 0, np.nan, corrected)


def _is_passive(trials) -> bool:
    _, _, counts = _licks(trials)
    return bool((trials["reward_volume"] == 0).all() and (counts == 0).all())


def rolling_performance(trials, response_window_start: float):
    """AllenSDK's ``get_rolling_performance_df()``: rates per trial, NaN on aborted trials."""
    import pandas as pd

    hit_raw, hit = _rolling_rates(_responses(trials, "hit", "miss"))
    fa_raw, fa = _rolling_rates(_responses(trials, "false_alarm", "correct_reject"))
    if _is_passive(trials):  # d' means nothing without a task: AllenSDK gives zeros
        dprime = np.zeros(len(hit))
    else:
        limited = [np.clip(rate, *DPRIME_LIMITS) for rate in (hit, fa)]
        dprime = norm_ppf(limited[0]) - norm_ppf(limited[1])
    kept = trials.index[~trials["aborted"].to_numpy(dtype=bool)]
    frame = pd.DataFrame(index=trials.index.copy())
    frame["reward_rate"] = reward_rate(trials, response_window_start)
    columns = {
        "hit_rate_raw": hit_raw,
        "hit_rate": hit,
        "false_alarm_rate_raw": fa_raw,
        "false_alarm_rate": fa,
        "rolling_dprime": dprime,
    }
    for name, values in columns.items():
        frame[name] = pd.Series(values, index=kept, dtype=float)
    return frame


def _nan_max(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.max()) if finite.size else float("nan")


def performance_metrics(
    trials, rewards, response_window_start: float, engaged_threshold: float = 2.0
) -> dict:
    """AllenSDK's ``get_performance_metrics()``: counts, reward totals, mean and max rates."""
    performance = rolling_performance(trials, response_window_start)
    engaged = (performance["reward_rate"] > engaged_threshold).to_numpy()

    def count(column: str) -> int:
        return int(trials[column].to_numpy(dtype=bool).sum())

    metrics = {
        "trial_count": len(trials),
        "go_trial_count": count("go"),
        "catch_trial_count": count("catch"),
        "hit_trial_count": count("hit"),
        "miss_trial_count": count("miss"),
        "false_alarm_trial_count": count("false_alarm"),
        "correct_reject_trial_count": count("correct_reject"),
        "auto_reward_count": count("auto_rewarded"),
        "earned_reward_count": count("hit"),
        "total_reward_count": len(rewards),
        "total_reward_volume": float(rewards["volume"].to_numpy(dtype=float).sum()),
        "maximum_reward_rate": _nan_max(performance["reward_rate"].to_numpy()),
        "engaged_trial_count": int(engaged.sum()),
    }
    for label, column in (("hit_rate", "hit_rate"), ("false_alarm_rate", "false_alarm_rate")):
        metrics[f"mean_{label}"] = float(performance[column].mean())
        metrics[f"mean_{label}_uncorrected"] = float(performance[f"{column}_raw"].mean())
        metrics[f"mean_{label}_engaged"] = float(performance[column][engaged].mean())
    dprime = performance["rolling_dprime"]
    metrics["mean_dprime"] = float(dprime.mean())
    metrics["mean_dprime_engaged"] = float(dprime[engaged].mean())
    metrics["max_dprime"] = float(dprime.max())
    metrics["max_dprime_engaged"] = float(dprime[engaged].max())
    return metrics
