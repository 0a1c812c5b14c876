"""Bayesian hierarchical survival models for multi-centre cancer registries.

The first question it answers is NETSARC's: does surgery at an expert sarcoma centre
lengthen local-relapse-free, relapse-free and overall survival, once you account for who
gets operated where?

The package is layered (DEVELOPERS.md): ``math`` -> ``data`` -> ``simulate`` ->
``inference`` -> ``model`` -> ``predict`` / ``checks`` -> ``study`` / ``report`` -> ``cli``.
A model class specifies and fits; everything after the fit is a free function of the fit's
``xarray.DataTree`` (``dt``), exported here.

Examples
--------
>>> import bayes_sarcoma as bs
>>> df = bs.simulate_registry(2000, random_seed=1)
>>> sorted(df.attrs["truth"])
['LRFS', 'OS', 'RFS']
"""

from bayes_sarcoma._version import __version__
from bayes_sarcoma.checks.compare import compare_models, leave_center_out, loo
from bayes_sarcoma.checks.ppc import add_posterior_predictive, km_check
from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.data.errors import DataWarning, Problem, RegistryError
from bayes_sarcoma.data.prepare import ZeroTimeWarning
from bayes_sarcoma.data.validation import validate_registry
from bayes_sarcoma.inference.diagnose import Diagnosis, diagnose
from bayes_sarcoma.model.hierarchical import HierarchicalWeibull, SamplerWarning
from bayes_sarcoma.model.io import DataMismatchError, FitFileError, check_data, load, save
from bayes_sarcoma.model.multistate import MultiStateModel
from bayes_sarcoma.model.priors import DEFAULT_PRIORS, Prior, PriorError
from bayes_sarcoma.model.specs import (
    ModelSpec,
    PriorSet,
    SpecError,
    load_model_spec,
    load_prior_set,
)
from bayes_sarcoma.predict.centers import center_profile, plot_caterpillar, plot_funnel
from bayes_sarcoma.predict.effects import (
    effect_by_modifier,
    hazard_ratios,
    plot_effect_by_modifier,
    plot_hazard_ratios,
    time_ratios,
)
from bayes_sarcoma.predict.multistate import predict_endpoints, standardized_endpoints
from bayes_sarcoma.predict.standardize import (
    plot_standardized,
    standardized_summary,
    standardized_survival,
)
from bayes_sarcoma.predict.survival import (
    predict_conditional_survival,
    predict_cumulative_hazard,
    predict_hazard,
    predict_median,
    predict_quantile,
    predict_rmst,
    predict_survival,
)
from bayes_sarcoma.report.analysis import analysis_report
from bayes_sarcoma.report.plots import plot_km_check, plot_ppc_censored, plot_trace_rank
from bayes_sarcoma.simulate.calibration import calibration_table, format_calibration
from bayes_sarcoma.simulate.multistate import population_survival, simulate_histories
from bayes_sarcoma.simulate.registry import simulate_registry
from bayes_sarcoma.study.sensitivity import (
    CellFailureWarning,
    GridError,
    SensitivityResult,
    prior_sensitivity,
)

__all__ = [
    "DEFAULT_PRIORS",
    "CellFailureWarning",
    "DataMismatchError",
    "DataWarning",
    "Diagnosis",
    "FitFileError",
    "GridError",
    "HierarchicalWeibull",
    "ModelSpec",
    "MultiStateModel",
    "Prior",
    "PriorError",
    "PriorSet",
    "Problem",
    "RegistryError",
    "SamplerWarning",
    "SensitivityResult",
    "SpecError",
    "ZeroTimeWarning",
    "__version__",
    "add_posterior_predictive",
    "analysis_report",
    "calibration_table",
    "center_profile",
    "check_data",
    "compare_models",
    "derive_endpoints",
    "diagnose",
    "effect_by_modifier",
    "format_calibration",
    "hazard_ratios",
    "km_check",
    "leave_center_out",
    "load",
    "load_model_spec",
    "load_prior_set",
    "loo",
    "plot_caterpillar",
    "plot_effect_by_modifier",
    "plot_funnel",
    "plot_hazard_ratios",
    "plot_km_check",
    "plot_ppc_censored",
    "plot_standardized",
    "plot_trace_rank",
    "population_survival",
    "predict_conditional_survival",
    "predict_cumulative_hazard",
    "predict_endpoints",
    "predict_hazard",
    "predict_median",
    "predict_quantile",
    "predict_rmst",
    "predict_survival",
    "prior_sensitivity",
    "save",
    "simulate_histories",
    "simulate_registry",
    "standardized_endpoints",
    "standardized_summary",
    "standardized_survival",
    "time_ratios",
    "validate_registry",
]
