"""``PredictionMethods``: the prediction and summary verbs on a fitted model.

A mixin of :class:`~bayes_sarcoma.HierarchicalWeibull`. Each method is a thin call of a
free function (:mod:`bayes_sarcoma.predict`, :mod:`~bayes_sarcoma.standardize`,
:mod:`~bayes_sarcoma.effects`, :mod:`~bayes_sarcoma.centers`) with the fit's DataTree,
which carries the model's specification and coding; see those functions for the
parameters. So ``model.predict_survival(dt, df, [12, 60])`` and
``bayes_sarcoma.predict.predict_survival(dt, df, [12, 60])`` are the same.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from bayes_sarcoma import centers, effects, predict, standardize


class PredictionMethods:
    """Prediction, effect and centre-profiling methods (all take the fit's DataTree).

    Examples
    --------
    >>> model = bs.HierarchicalWeibull("OS")                              # doctest: +SKIP
    >>> dt = model.fit(df)                                                 # doctest: +SKIP
    >>> model.predict_survival(dt, df.head(), [12, 24, 60], center="new")  # doctest: +SKIP
    >>> model.standardized_survival(dt, df, [12, 24, 60])                  # doctest: +SKIP
    >>> model.hazard_ratios(dt)                                            # doctest: +SKIP
    """

    # -- patient-level predictions ---------------------------------------------------------
    def predict_survival(
        self,
        dt: xr.DataTree,
        data: pd.DataFrame,
        times: ArrayLike,
        *,
        center: str = "new",
        **kwargs: Any,
    ) -> xr.DataArray:
        """Survival ``S(t)``, dims (chain, draw, patient, time): :func:`~bayes_sarcoma.predict.predict_survival`."""  # noqa: E501
        return predict.predict_survival(dt, data, times, center=center, **kwargs)

    def predict_hazard(
        self,
        dt: xr.DataTree,
        data: pd.DataFrame,
        times: ArrayLike,
        *,
        center: str = "new",
        **kwargs: Any,
    ) -> xr.DataArray:
        """Hazard ``h(t)``: :func:`~bayes_sarcoma.predict.predict_hazard`."""
        return predict.predict_hazard(dt, data, times, center=center, **kwargs)

    def predict_cumulative_hazard(
        self,
        dt: xr.DataTree,
        data: pd.DataFrame,
        times: ArrayLike,
        *,
        center: str = "new",
        **kwargs: Any,
    ) -> xr.DataArray:
        """Cumulative hazard: :func:`~bayes_sarcoma.predict.predict_cumulative_hazard`."""
        return predict.predict_cumulative_hazard(dt, data, times, center=center, **kwargs)

    def predict_median(
        self, dt: xr.DataTree, data: pd.DataFrame, *, center: str = "new", **kwargs: Any
    ) -> xr.DataArray:
        """Median event-free time: :func:`~bayes_sarcoma.predict.predict_median`."""
        return predict.predict_median(dt, data, center=center, **kwargs)

    def predict_quantile(
        self,
        dt: xr.DataTree,
        data: pd.DataFrame,
        q: ArrayLike,
        *,
        center: str = "new",
        **kwargs: Any,
    ) -> xr.DataArray:
        """Quantiles of the event-free time: :func:`~bayes_sarcoma.predict.predict_quantile`."""
        return predict.predict_quantile(dt, data, q, center=center, **kwargs)

    def predict_rmst(
        self,
        dt: xr.DataTree,
        data: pd.DataFrame,
        horizon: float | ArrayLike,
        *,
        center: str = "new",
        **kwargs: Any,
    ) -> xr.DataArray:
        """Restricted mean survival time: :func:`~bayes_sarcoma.predict.predict_rmst`."""
        return predict.predict_rmst(dt, data, horizon, center=center, **kwargs)

    def predict_conditional_survival(
        self,
        dt: xr.DataTree,
        data: pd.DataFrame,
        times: ArrayLike,
        *,
        landmark: float,
        center: str = "new",
        **kwargs: Any,
    ) -> xr.DataArray:
        """``P(T > t | T > landmark)``: :func:`~bayes_sarcoma.predict.predict_conditional_survival`."""  # noqa: E501
        return predict.predict_conditional_survival(
            dt, data, times, landmark=landmark, center=center, **kwargs
        )

    # -- standardized (g-computation) contrasts ----------------------------------------------
    def standardized_survival(
        self,
        dt: xr.DataTree,
        data: pd.DataFrame,
        times: ArrayLike,
        *,
        treatment: str | None = None,
        **kwargs: Any,
    ) -> xr.Dataset:
        """Every patient treated vs none: :func:`~bayes_sarcoma.standardize.standardized_survival`.

        ``treatment`` defaults to the model's treatment term (``expert_center``).
        """
        return standardize.standardized_survival(dt, data, times, treatment=treatment, **kwargs)

    def standardized_summary(self, std: xr.Dataset, *, prob: float = 0.94) -> pd.DataFrame:
        """Tidy table of a standardized result: :func:`~bayes_sarcoma.standardize.standardized_summary`."""  # noqa: E501
        return standardize.standardized_summary(std, prob=prob)

    def plot_standardized(self, std: xr.Dataset, **kwargs: Any):
        """Standardized curves and difference: :func:`~bayes_sarcoma.standardize.plot_standardized`."""  # noqa: E501
        return standardize.plot_standardized(std, **kwargs)

    # -- effects -------------------------------------------------------------------------------
    def hazard_ratios(self, dt: xr.DataTree, *, prob: float = 0.94, **kwargs: Any) -> pd.DataFrame:
        """Hazard ratio per term: :func:`~bayes_sarcoma.effects.hazard_ratios`."""
        return effects.hazard_ratios(dt, prob=prob, **kwargs)

    def time_ratios(self, dt: xr.DataTree, *, prob: float = 0.94, **kwargs: Any) -> pd.DataFrame:
        """Time ratio per term: :func:`~bayes_sarcoma.effects.time_ratios`."""
        return effects.time_ratios(dt, prob=prob, **kwargs)

    def effect_by_modifier(
        self, dt: xr.DataTree, *, prob: float = 0.94, **kwargs: Any
    ) -> pd.DataFrame:
        """Treatment HR per modifier level: :func:`~bayes_sarcoma.effects.effect_by_modifier`."""
        return effects.effect_by_modifier(dt, prob=prob, **kwargs)

    def plot_hazard_ratios(self, dt: xr.DataTree, **kwargs: Any):
        """Forest plot of hazard ratios: :func:`~bayes_sarcoma.effects.plot_hazard_ratios`."""
        return effects.plot_hazard_ratios(dt, **kwargs)

    def plot_effect_by_modifier(self, dt: xr.DataTree, **kwargs: Any):
        """Forest plot per modifier level: :func:`~bayes_sarcoma.effects.plot_effect_by_modifier`."""  # noqa: E501
        return effects.plot_effect_by_modifier(dt, **kwargs)

    # -- centres ---------------------------------------------------------------------------------
    def center_profile(self, dt: xr.DataTree, **kwargs: Any) -> pd.DataFrame:
        """Centre effects, ranks, P(best/worst): :func:`~bayes_sarcoma.centers.center_profile`."""
        return centers.center_profile(dt, **kwargs)

    def plot_caterpillar(self, dt: xr.DataTree, **kwargs: Any):
        """Caterpillar plot of the centres: :func:`~bayes_sarcoma.centers.plot_caterpillar`."""
        return centers.plot_caterpillar(centers.center_profile(dt, **kwargs))

    def plot_funnel(self, dt: xr.DataTree, **kwargs: Any):
        """Funnel plot of the centres: :func:`~bayes_sarcoma.centers.plot_funnel`."""
        return centers.plot_funnel(centers.center_profile(dt, **kwargs))
