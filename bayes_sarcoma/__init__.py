"""Bayesian hierarchical Weibull survival models for multi-centre cancer registries.

The first question it answers is NETSARC's: does surgery at an expert sarcoma centre
lengthen local-relapse-free, relapse-free and overall survival, once you account for who
gets operated where?

Examples
--------
>>> import bayes_sarcoma as bs
>>> df = bs.simulate_registry(2000, seed=1)
>>> sorted(df.attrs["truth"])
['LRFS', 'OS', 'RFS']
"""

__version__ = "0.1.0"

from bayes_sarcoma.calibration import calibration_table, format_calibration
from bayes_sarcoma.compare import compare_models, leave_center_out, loo
from bayes_sarcoma.diagnostics import Diagnosis, diagnose
from bayes_sarcoma.endpoints import derive_endpoints
from bayes_sarcoma.errors import DataWarning, Problem, RegistryError
from bayes_sarcoma.io import DataMismatchError, FitFileError, load, save
from bayes_sarcoma.model import HierarchicalWeibull, SamplerWarning
from bayes_sarcoma.priors import DEFAULT_PRIORS, Prior, PriorError
from bayes_sarcoma.report import analysis_report
from bayes_sarcoma.sensitivity import SensitivityResult, prior_sensitivity
from bayes_sarcoma.simulate import simulate_registry
from bayes_sarcoma.specs import ModelSpec, PriorSet, SpecError, load_model_spec, load_prior_set
from bayes_sarcoma.survival_data import ZeroTimeWarning
from bayes_sarcoma.validation import validate_registry

__all__ = [
    "DEFAULT_PRIORS",
    "DataMismatchError",
    "DataWarning",
    "Diagnosis",
    "FitFileError",
    "HierarchicalWeibull",
    "ModelSpec",
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
    "analysis_report",
    "calibration_table",
    "compare_models",
    "derive_endpoints",
    "diagnose",
    "format_calibration",
    "leave_center_out",
    "load",
    "load_model_spec",
    "load_prior_set",
    "loo",
    "prior_sensitivity",
    "save",
    "simulate_registry",
    "validate_registry",
]
