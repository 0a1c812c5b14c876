"""One model for LRFS, RFS and OS: the registry's multi-state model (DESIGN.md 3.4).

The states, transitions and derived endpoints are those of
:mod:`bayes_sarcoma.math.multistate`; the transition records come from the registry's dates
(:func:`bayes_sarcoma.data.transitions.transition_records`). Each transition ``k`` has its
own Weibull proportional-hazards model,

    h_k(t) = alpha_k t^(alpha_k - 1) exp(eta_ik),   eta_ik = beta0_k + x_i . beta_k + u_ck,

with the same terms in every transition and a centre effect per transition, correlated
across transitions::

    u_c = (u_c,local, u_c,distant, u_c,death, u_c,after) ~ MvNormal(0, diag(s) R diag(s)),
    R ~ LKJ(eta), s_k ~ center_sd prior.

The likelihood of a history is the product over its transition records of
``h_k(t)^d exp(-(H_k(t) - H_k(entry)))`` (delayed entry for death after relapse on the
forward clock), which is the product of the transition densities and survivor functions
(tested against a direct computation).

**Why the centre effects are sampled here.** The single-endpoint model integrates its one
centre effect out by one-dimensional adaptive quadrature (DESIGN.md 3.2). Here each centre
carries a four-dimensional effect: product quadrature with ``q`` nodes per dimension costs
``q**4`` evaluations per centre (625 at ``q = 5``) plus a 4 x 4 Hessian per centre to adapt
the grid, and the effects no longer enter through two sums per centre because the four
transitions' records differ. So the effects are sampled, non-centred (``u_c = L z_c``,
``z_c ~ Normal(0, I)``, ``L`` the Cholesky factor of the covariance), which suits the many
small centres of a registry.

Times enter divided by a reference time ``t_ref`` (the median follow-up), as in the
single-endpoint model; posterior intercepts are reported on the user's time scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.design import Design
from bayes_sarcoma.data.transitions import transition_records
from bayes_sarcoma.inference.sampling import CompiledModel, run_sampler
from bayes_sarcoma.math.multistate import CLOCKS, TRANSITIONS
from bayes_sarcoma.model.priors import Prior, as_prior

#: Default priors of the multi-state model (times scaled by the median follow-up and
#: continuous terms by their SD, so the intercept is the log cumulative hazard at the
#: median follow-up of an average patient). ``center_corr`` is the LKJ concentration:
#: 2 favours weak correlations, 1 is uniform over correlation matrices.
MULTISTATE_PRIORS = {
    "intercept": Prior("Normal", mu=0.0, sigma=2.5),
    "shape": Prior("LogNormal", mu=0.0, sigma=0.5),
    "beta": Prior("Normal", mu=0.0, sigma=2.5),
    "center_sd": Prior("HalfNormal", sigma=0.5),
}
CENTER_CORR_ETA = 2.0
#: What a time of 0 (an event on the day of surgery) becomes: half a day, in months.
ZERO_TIME = 0.5 / schema.DAYS_PER_MONTH
#: Name of the second transition dimension of ``center_corr``.
TRANSITION_B = "transition_b"


@dataclass(frozen=True)
class Records:
    """A registry's transition records, coded for the model."""

    design: Design
    x: np.ndarray  # (patients, terms), centred and scaled
    patient: np.ndarray  # record -> patient position
    transition: np.ndarray  # record -> transition index
    center: np.ndarray  # record -> centre index
    centers: np.ndarray  # centre labels
    entry: np.ndarray  # months (0: no delayed entry)
    time: np.ndarray  # months
    event: np.ndarray  # 0/1
    t_ref: float
    patient_ids: np.ndarray


class MultiStateModel:
    """Transition-specific Weibull PH models with correlated centre effects.

    Parameters
    ----------
    terms : sequence of str
        Covariates, the same for every transition (the registry's by default).
    cluster : str
        Centre column.
    clock : {"forward", "reset"}
        Clock of death after relapse: time since surgery (Markov) or since the relapse.
    priors : mapping, optional
        Priors by slot (``intercept``, ``shape``, ``beta``, ``center_sd``) over
        :data:`MULTISTATE_PRIORS`; :class:`~bayes_sarcoma.model.priors.Prior` or dicts.
    center_corr_eta : float
        LKJ concentration of the centre effects' correlation matrix.

    Examples
    --------
    >>> model = MultiStateModel(terms=["expert_center", "age"])
    >>> model.clock, model.terms
    ('forward', ('expert_center', 'age'))
    """

    def __init__(
        self,
        terms: Sequence[str] = schema.DEFAULT_TERMS,
        *,
        cluster: str = schema.CENTER_ID,
        clock: str = "forward",
        priors: Mapping | None = None,
        center_corr_eta: float = CENTER_CORR_ETA,
    ) -> None:
        if clock not in CLOCKS:
            raise ValueError(f"clock={clock!r}: choose one of {CLOCKS}")
        if not center_corr_eta > 0:
            raise ValueError(f"center_corr_eta must be > 0, got {center_corr_eta}")
        unknown = set(priors or {}) - set(MULTISTATE_PRIORS)
        if unknown:
            raise ValueError(
                f"unknown prior slots {sorted(unknown)}; use {list(MULTISTATE_PRIORS)}"
            )
        self.terms = tuple(terms)
        self.cluster = cluster
        self.clock = clock
        self.priors = {
            slot: as_prior((priors or {}).get(slot, default), slot)
            for slot, default in MULTISTATE_PRIORS.items()
        }
        self.center_corr_eta = float(center_corr_eta)

    def records(self, data: pd.DataFrame) -> Records:
        """Check ``data`` and code its histories as transition records."""
        rec = transition_records(data, clock=self.clock)
        design = Design.learn(data, self.terms, id_column=schema.PATIENT_ID)
        if self.cluster not in data.columns:
            raise ValueError(f"data lacks the centre column {self.cluster!r}")
        codes, centers = pd.factorize(data[self.cluster], sort=True)
        patient = rec["row"].to_numpy()
        ids = data[schema.PATIENT_ID] if schema.PATIENT_ID in data else pd.Series(data.index)
        time = rec["time_months"].to_numpy()
        return Records(
            design=design,
            x=design.matrix(data),
            patient=patient,
            transition=pd.Categorical(rec["transition"], TRANSITIONS).codes.astype(np.int64),
            center=codes[patient],
            centers=np.asarray(centers),
            entry=rec["entry_months"].to_numpy(),
            time=np.where(time > 0, time, ZERO_TIME),
            event=rec["event"].to_numpy(),
            t_ref=float(np.median(time[rec["transition"].to_numpy() == TRANSITIONS[0]])),
            patient_ids=ids.to_numpy(),
        )

    def build_model(self, rec: Records) -> pm.Model:
        """Return the PyMC model of ``rec`` (data baked in as constants)."""
        k, n_terms, n_centers = len(TRANSITIONS), rec.x.shape[1], rec.centers.size
        coords = {"transition": TRANSITIONS, "term": rec.design.labels, "center": rec.centers}
        with pm.Model(coords=coords) as model:
            intercept = _rv("intercept_c", self.priors["intercept"], ("transition",))
            shape = _rv("shape", self.priors["shape"], ("transition",), initval=np.ones(k))
            beta = _rv("beta_std", self.priors["beta"], ("transition", "term"))
            prior_sd = self.priors["center_sd"]
            sd_dist = getattr(pm, prior_sd.distribution).dist(**prior_sd.parameters, shape=k)
            # An explicit start (sd 0.3, no correlation): PyMC's default start of an LKJ
            # factor is a matrix expression that PyTensor's C backend compiles with BLAS.
            start = np.diag(np.full(k, 0.3))[np.tril_indices(k)]
            chol, _, _ = pm.LKJCholeskyCov(
                "center_chol",
                n=k,
                eta=self.center_corr_eta,
                sd_dist=sd_dist,
                compute_corr=True,
                initval=start,
            )
            z = pm.Normal("center_raw", 0.0, 1.0, shape=(n_centers, k))
            # Elementwise products, not matrix products: PyTensor's C backend would call
            # BLAS (absent from pip installs) for a matrix-matrix dot.
            u = (z[:, None, :] * chol[None, :, :]).sum(axis=-1)  # (centres, transitions)
            eta = intercept[rec.transition] + u[rec.center, rec.transition]
            if n_terms:
                eta = eta + (rec.x[rec.patient] * beta[rec.transition]).sum(axis=-1)
            pm.Potential("loglik", pt.sum(_record_loglik(rec, shape[rec.transition], eta)))
        return model

    def fit(
        self,
        data: pd.DataFrame,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        progressbar: bool = True,
        sampler: str = "nutpie",
        target_accept: float = 0.9,
        cores: int | None = None,
    ) -> xr.DataTree:
        """Sample the posterior; return a DataTree (DESIGN.md section 4, per transition).

        Posterior: ``intercept``, ``shape`` (``transition``), ``beta`` and ``hazard_ratio``
        (``transition``, ``term``; per unit of each term), ``center_sd`` (``transition``),
        ``center_corr`` (``transition``, ``transition_b``) and ``center_effect``
        (``center``, ``transition``); ``log_likelihood`` per patient (all of a patient's
        records), so PSIS-LOO works on it.
        """
        rec = self.records(data)
        model = self.build_model(rec)
        entry = CompiledModel("multistate", model, free_names=[rv.name for rv in model.free_RVs])
        if random_seed is None:
            random_seed = int(np.random.default_rng().integers(2**31 - 1))
        out = run_sampler(
            entry,
            {},
            sampler=sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=random_seed,
            progressbar=progressbar,
            target_accept=target_accept,
        )
        posterior = posterior_dataset(out.draws, rec)
        tree = {
            "posterior": posterior,
            "sample_stats": out.sample_stats,
            "log_likelihood": xr.Dataset({"history": pointwise_log_likelihood(posterior, rec)}),
        }
        dt = xr.DataTree.from_dict(tree)
        dt.attrs.update(self.spec(rec, random_seed, out.sampler))
        return dt

    def spec(self, rec: Records, random_seed: int, sampler: str) -> dict:
        """Return the attributes that describe the fit."""
        return {
            "model": "MultiStateModel",
            "terms": list(self.terms),
            "cluster": self.cluster,
            "clock": self.clock,
            "priors": {slot: p.to_dict() for slot, p in self.priors.items()},
            "center_corr_eta": self.center_corr_eta,
            "design": rec.design.to_dict(),
            "t_ref": rec.t_ref,
            "random_seed": random_seed,
            "sampler": sampler,
        }


def _rv(name: str, prior: Prior, dims: tuple[str, ...], initval=None):
    return getattr(pm, prior.distribution)(name, **prior.parameters, dims=dims, initval=initval)


def _record_loglik(rec: Records, shape, eta):
    """Weibull PH log-likelihood of each record, times in units of ``t_ref`` (PyTensor)."""
    log_t = np.log(rec.time / rec.t_ref)
    has_entry = rec.entry > 0
    log_a = np.log(np.where(has_entry, rec.entry, rec.t_ref) / rec.t_ref)
    exposure = pt.exp(shape * log_t + eta) - has_entry * pt.exp(shape * log_a + eta)
    return rec.event * (pt.log(shape) + (shape - 1.0) * log_t + eta) - exposure


def record_loglik_numpy(rec: Records, shape: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Return :func:`_record_loglik` on the user's time scale (``eta`` per month)."""
    log_t = np.log(rec.time)
    has_entry = rec.entry > 0
    log_a = np.log(np.where(has_entry, rec.entry, 1.0))
    exposure = np.exp(shape * log_t + eta) - has_entry * np.exp(shape * log_a + eta)
    return rec.event * (np.log(shape) + (shape - 1.0) * log_t + eta) - exposure


def _unpack_chol(packed: np.ndarray, k: int) -> np.ndarray:
    """Return the lower-triangular Cholesky factors ``(..., k, k)`` from PyMC's packing."""
    rows, cols = np.tril_indices(k)
    out = np.zeros((*packed.shape[:-1], k, k))
    out[..., rows, cols] = packed
    return out


def posterior_dataset(draws: Mapping[str, np.ndarray], rec: Records) -> xr.Dataset:
    """Return the posterior on the user's scale from the sampler's internal draws."""
    k = len(TRANSITIONS)
    scale, mean = rec.design.scale, rec.design.mean
    shape = draws["shape"]
    beta = draws["beta_std"] / scale  # per unit of each term
    intercept = draws["intercept_c"] - beta @ mean - shape * np.log(rec.t_ref)
    chol = _unpack_chol(draws["center_chol"], k)
    cov = chol @ np.swapaxes(chol, -1, -2)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    corr = cov / (sd[..., :, None] * sd[..., None, :])
    effects = draws["center_raw"] @ np.swapaxes(chol, -1, -2)
    dims = ("chain", "draw")
    coords = {
        "transition": list(TRANSITIONS),
        TRANSITION_B: list(TRANSITIONS),
        "term": rec.design.labels,
        "center": rec.centers,
    }
    return xr.Dataset(
        {
            "intercept": ((*dims, "transition"), intercept),
            "shape": ((*dims, "transition"), shape),
            "beta": ((*dims, "transition", "term"), beta),
            "hazard_ratio": ((*dims, "transition", "term"), np.exp(beta)),
            "center_sd": ((*dims, "transition"), sd),
            "center_corr": ((*dims, "transition", TRANSITION_B), corr),
            "center_effect": ((*dims, "center", "transition"), effects),
        },
        coords=coords,
    )


def pointwise_log_likelihood(posterior: xr.Dataset, rec: Records) -> xr.DataArray:
    """Return each patient's log-likelihood (the sum over its records), per draw."""
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    x_raw = rec.x * rec.design.scale + rec.design.mean
    out = np.zeros((n_chain * n_draw, rec.patient_ids.size))
    flat = {
        name: posterior[name].to_numpy().reshape(n_chain * n_draw, *posterior[name].shape[2:])
        for name in ("intercept", "shape", "beta", "center_effect")
    }
    for s in range(n_chain * n_draw):
        xb = x_raw @ flat["beta"][s].T  # (patients, transitions)
        eta = flat["intercept"][s][rec.transition] + xb[rec.patient, rec.transition]
        eta = eta + flat["center_effect"][s][rec.center, rec.transition]
        ll = record_loglik_numpy(rec, flat["shape"][s][rec.transition], eta)
        out[s] = np.bincount(rec.patient, weights=ll, minlength=rec.patient_ids.size)
    return xr.DataArray(
        out.reshape(n_chain, n_draw, -1),
        dims=("chain", "draw", "patient"),
        coords={"patient": rec.patient_ids},
    )
