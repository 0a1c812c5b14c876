"""Ranks of simulation-based calibration and their uniformity (Talts et al. 2018).

A replicate's posterior draws are thinned to ``L`` evenly spaced draws (:func:`thin`) and
the true value ranked among them (:func:`rank_statistic`, ``0..L``); under calibration
the ranks of many replicates are uniform. Uniformity is tested three ways
(:func:`uniformity_tests`): Pearson's chi-square on the binned ranks
(:func:`binned_counts`, the histogram's test), Kolmogorov-Smirnov on the randomised PIT
values ``(rank + U) / (L + 1)`` (:func:`pit_values`), which are exactly Uniform(0, 1)
under calibration, and ArviZ's ``pot_c`` test on the same PIT values;
:func:`binomial_band` is the band a histogram bin's count stays in. The study itself
(design, replicates, results) is :mod:`bayes_sarcoma.study.sbc`.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "binned_counts",
    "binomial_band",
    "pit_values",
    "rank_statistic",
    "thin",
    "uniformity_tests",
]


def thin(draws: np.ndarray, n: int) -> np.ndarray:
    """Return ``n`` evenly spaced draws of ``draws`` (chains flattened in order).

    Not :func:`arviz_stats.thin`: SBC needs exactly ``n`` draws (the ranks' range), and a
    whole thinning factor gives only ``ceil(draws / factor)``.

    Examples
    --------
    >>> thin(np.arange(20).reshape(2, 10), 4)
    array([ 0,  6, 13, 19])
    """
    flat = np.asarray(draws).reshape(-1)
    if n > flat.size:
        raise ValueError(f"cannot keep {n} of {flat.size} draws")
    return flat[np.linspace(0, flat.size - 1, n).round().astype(int)]


def rank_statistic(draws: np.ndarray, truth: float) -> int:
    """Return the SBC rank: how many ``draws`` lie below ``truth`` (0 to ``len(draws)``).

    Examples
    --------
    >>> rank_statistic(np.array([0.1, 0.5, 0.9]), 0.6)
    2
    """
    return int(np.sum(np.asarray(draws) < truth))


def _check_bins(n_ranks: int, bins: int) -> None:
    if (n_ranks + 1) % bins:
        raise ValueError(f"bins={bins} must divide the {n_ranks + 1} possible ranks")


def binned_counts(ranks: np.ndarray, n_ranks: int, bins: int) -> np.ndarray:
    """Count ranks (``0..n_ranks``) in ``bins`` equal bins.

    Examples
    --------
    >>> binned_counts(np.array([0, 1, 5, 9]), 9, 2)
    array([2, 2])
    """
    _check_bins(n_ranks, bins)
    ranks = np.asarray(ranks, dtype=int)
    if ranks.min(initial=0) < 0 or ranks.max(initial=0) > n_ranks:
        raise ValueError(f"ranks must lie in 0..{n_ranks}")
    return np.bincount(ranks * bins // (n_ranks + 1), minlength=bins)


def pit_values(ranks: np.ndarray, n_ranks: int, rng: np.random.Generator) -> np.ndarray:
    """Return randomised PIT values ``(rank + U) / (L + 1)``: Uniform(0, 1) if calibrated."""
    ranks = np.asarray(ranks, dtype=float)
    return (ranks + rng.uniform(size=ranks.shape)) / (n_ranks + 1)


def uniformity_tests(
    ranks: np.ndarray, n_ranks: int, *, bins: int = 10, random_seed: int = 0
) -> dict[str, float]:
    """Test ranks for uniformity on ``0..n_ranks``.

    Parameters
    ----------
    ranks : array_like
        One rank per replicate.
    n_ranks : int
        ``L``, the number of posterior draws each rank was computed among.
    bins : int
        Bins of the chi-square test (must divide ``L + 1``).
    random_seed : int
        Seed of the PIT randomisation.

    Returns
    -------
    dict
        ``chi2`` and ``chi2_p`` (Pearson, ``bins - 1`` degrees of freedom), ``ks_p``
        (Kolmogorov-Smirnov on randomised PIT values) and ``pot_c_p`` (ArviZ's pointwise
        order test with Cauchy combination, on the same PIT values).

    Examples
    --------
    >>> ranks = np.random.default_rng(1).integers(0, 100, 200)
    >>> out = uniformity_tests(ranks, 99)
    >>> sorted(out)
    ['chi2', 'chi2_p', 'ks_p', 'pot_c_p']
    >>> out["chi2_p"] > 0.01
    True
    """
    from arviz_stats.base import array_stats

    counts = binned_counts(ranks, n_ranks, bins)
    chi2 = stats.chisquare(counts)
    pit = pit_values(ranks, n_ranks, np.random.default_rng(random_seed))
    return {
        "chi2": float(chi2.statistic),
        "chi2_p": float(chi2.pvalue),
        "ks_p": float(stats.kstest(pit, "uniform").pvalue),
        "pot_c_p": float(array_stats.uniformity_test(pit)[0]),
    }


def binomial_band(n_replicates: int, bins: int, ci_prob: float = 0.99) -> tuple[float, float]:
    """Return the central ``ci_prob`` interval of one bin's count, Binomial(N, 1/bins).

    Examples
    --------
    >>> binomial_band(100, 10)
    (3.0, 18.0)
    """
    tail = (1.0 - ci_prob) / 2.0
    dist = stats.binom(n_replicates, 1.0 / bins)
    return float(dist.ppf(tail)), float(dist.ppf(1.0 - tail))
