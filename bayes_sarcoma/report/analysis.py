"""One call from a registry to a self-contained HTML report of the NETSARC-style analysis.

:func:`analysis_report` validates the registry, fits the hierarchical Weibull model for
each endpoint (LRFS, RFS, OS) and the candidate variants it is compared with, and writes
one HTML file (figures embedded as PNG ``data:`` URIs) with:

1. the headline: adjusted expert-centre hazard ratio with its interval and P(HR < 1),
   standardized survival at 5 years and the differences in months, per endpoint;
2. Table 1 by expert status (the confounding by indication made visible);
3. crude Kaplan-Meier medians and log-rank tests, beside the published NETSARC figures
   when the registry is the simulator's (``df.attrs["truth"]``);
4. adjusted hazard ratios of every term across endpoints;
5. standardized survival curves, differences at 12/24/60 months, median and RMST
   differences in months (g-computation over the registry's patients and a new centre);
6. the expert effect by resection margin (partially pooled interaction model);
7. sampling diagnostics (:func:`~bayes_sarcoma.inference.diagnose.diagnose`, rank plots);
8. posterior predictive Kaplan-Meier checks (:func:`~bayes_sarcoma.checks.ppc.km_check`);
9. model comparison by integrated PSIS-LOO and leave-centre-out
   (:mod:`bayes_sarcoma.checks.compare`);
10. centre caterpillar and funnel plots; and the methods.

Every number comes from the package's own functions; this module only orchestrates,
formats and renders (Jinja2, the template ``report/templates/report.html.j2``).
"""

from __future__ import annotations

import base64
import datetime
import io
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma._version import __version__
from bayes_sarcoma.checks import compare, ppc
from bayes_sarcoma.data import schema
from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.data.validation import validate_registry
from bayes_sarcoma.inference.diagnose import fit_diagnosis
from bayes_sarcoma.model.hierarchical import HierarchicalWeibull, SamplerWarning
from bayes_sarcoma.predict import centers, effects
from bayes_sarcoma.predict.standardize import (
    arm_labels,
    plot_standardized,
    standardized_summary,
    standardized_survival,
)
from bayes_sarcoma.predict.survival import fitted_design, model_spec
from bayes_sarcoma.report import plots, workers
from bayes_sarcoma.report.headline import (
    contrast_cells,
    cri,
    effect_name,
    format_interval,
    hazard_ratio_cells,
)
from bayes_sarcoma.report.methods import (
    baselines_text,
    draws_text,
    methods_text,
    n_draws,
    priors_text,
)
from bayes_sarcoma.simulate.calibration import calibration_table

__all__ = ["DEFAULT_CANDIDATES", "Report", "analysis_report"]

#: Models fitted per endpoint: the main model and the variants it is compared with.
DEFAULT_CANDIDATES = ("weibull", "exponential", "no centre effects", "expert x margin")
MAIN = "weibull"
#: Posterior draws of each model that PSIS-LOO and leave-centre-out use (every k-th draw of
#: each chain; the report says how many): the integrated pointwise log-likelihood and the
#: Pareto smoothing of 10,000 patients take most of a report's time. With S = 1,000 draws
#: arviz-stats flags Pareto k above min(1 - 1/log10(S), 0.7) = 0.67 (0.7 from 2,155 draws
#: on): slightly stricter than with all draws, and the report shows the threshold used.
LOO_DRAWS = 1000
MARGIN_MODEL = "expert x margin"
#: The report's Jinja2 templates, package data in ``report/templates/`` (HTML escaped).
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("bayes_sarcoma.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass
class Report:
    """What :func:`analysis_report` wrote and computed.

    Attributes
    ----------
    path : pathlib.Path
        The HTML file.
    html : str
        Its content.
    figures : dict
        Figure name -> PNG bytes (also written to ``figures_dir`` when given).
    tables : dict
        Table name -> pandas.DataFrame (``headline``, ``table1``, ``hazard_ratios`` ...).
    fits : dict
        Endpoint -> {candidate name -> (model, DataTree)}.
    timings : dict
        Per section, where it ran (this process or a worker), its wall and CPU seconds
        (:class:`bayes_sarcoma.report.workers.Timing`; sections on several cores overlap);
        and the wall seconds of all sections and of the whole report after fitting.
    """

    path: Path
    html: str
    figures: dict[str, bytes] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    fits: dict[str, dict[str, tuple[Any, xr.DataTree]]] = field(default_factory=dict)
    timings: dict[str, workers.Timing] = field(default_factory=dict)


def analysis_report(
    registry: pd.DataFrame,
    path: str | Path,
    *,
    endpoints: Sequence[str] = ("LRFS", "RFS", "OS"),
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    fits: Mapping[str, tuple[Any, xr.DataTree]] | None = None,
    times: Sequence[float] = (12.0, 24.0, 60.0),
    horizon: float = 60.0,
    ci_prob: float = CI_PROB,
    num_draws: int | None = None,
    figures_dir: str | Path | None = None,
    title: str | None = None,
    progressbar: bool = False,
    cores: int | None = None,
) -> Report:
    """Analyse a registry and write the NETSARC-style report as one HTML file.

    Parameters
    ----------
    registry : pandas.DataFrame
        A registry (:mod:`bayes_sarcoma.data.schema`; validated, endpoints derived from the
        dates when absent); a simulated one also gets its true values shown.
    path : str or Path
        The HTML file to write.
    endpoints : sequence of str
        Endpoints to analyse.
    draws, tune, chains : int
        Sampler settings of every fit.
    random_seed : int, optional
        Seed of every fit (one is drawn and reported when omitted).
    candidates : sequence of str
        Models fitted per endpoint (:data:`~bayes_sarcoma.checks.compare.CANDIDATES`): the
        main ``"weibull"``, ``"expert x margin"`` (effect by margin) ...; two are compared.
    fits : mapping, optional
        Already fitted models, not refitted: ``{endpoint: (model, dt)}`` for the main
        model, or ``{endpoint: {candidate: (model, dt)}}`` for any of the candidates'
        names (a given fit is reported even when its name is not in ``candidates``).
    times : sequence of float
        Months at which survival is tabulated.
    horizon : float
        Horizon (months) of the restricted mean survival time.
    ci_prob : float
        Probability of every interval.
    num_draws : int or None
        Draws for standardized survival (None: all; else thinned within chains, as stated).
    figures_dir : str or Path, optional
        Also write every figure there as PNG.
    title : str, optional
        Report title.
    progressbar : bool
        Show the sampler's progress.
    cores : int, optional
        Cores for the sections: this process and ``cores - 1`` workers (default all).

    Returns
    -------
    Report
        The path, the HTML, the figures, the tables and the fits.

    Examples
    --------
    >>> import bayes_sarcoma as bs
    >>> df = bs.simulate_registry(random_seed=1)                                  # doctest: +SKIP
    >>> report = analysis_report(df, "netsarc.html", random_seed=1)        # doctest: +SKIP
    >>> report.tables["headline"]                                          # doctest: +SKIP
    """
    endpoints, df, fits = _inputs(registry, endpoints, fits)
    sampler = _sampler_settings(draws, tune, chains, random_seed, progressbar)
    all_fits, flagged = _fit_all(df, endpoints, candidates, fits, sampler)
    out = _Builder(df, df.attrs.get("truth"), ci_prob, figures_dir)
    sections = _sections(out, endpoints, all_fits, times, horizon, num_draws, sampler, cores)
    html = _render(_context(out, sections, sampler, fits, title, horizon, num_draws))
    path = out.write(path, html)
    _warn_flagged(flagged)
    return Report(path, html, out.pngs, sections.tables | out.tables, all_fits, out.timings)


# -- the steps of analysis_report --------------------------------------------------------------
def _inputs(
    registry: pd.DataFrame, endpoints: Sequence[str], fits: Mapping | None
) -> tuple[list[str], pd.DataFrame, dict]:
    """Check the endpoints; return them, the validated registry and the given fits by endpoint."""
    endpoints = [str(e).upper() for e in endpoints]
    unknown = [e for e in endpoints if e not in schema.ENDPOINTS]
    if unknown or not endpoints:
        raise ValueError(f"endpoints {unknown or endpoints}: choose from {list(schema.ENDPOINTS)}")
    fits = {str(k).upper(): v for k, v in (fits or {}).items()}
    df = validate_registry(registry)
    if not all(c in df.columns for c in schema.DERIVED_COLUMNS):
        df = derive_endpoints(df)
    df.attrs = dict(registry.attrs)
    return endpoints, df, fits


def _sampler_settings(
    draws: int, tune: int, chains: int, random_seed: int | None, progressbar: bool
) -> dict[str, Any]:
    """Return the keyword arguments of every fit (a seed is drawn when none is given)."""
    if random_seed is None:
        random_seed = int(np.random.default_rng().integers(2**31 - 1))
    return dict(
        draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar
    )


@dataclass
class _Sections:
    """The report's computed sections: the main fits, the tables, one entry per endpoint."""

    main: dict[str, tuple[Any, xr.DataTree]]
    all: dict[str, dict[str, tuple[Any, xr.DataTree]]]
    tables: dict[str, pd.DataFrame]
    standardized: list[dict]
    margin: list[dict]
    diagnostics: list[dict]
    checks: list[dict]
    comparisons: list[dict]
    centres: list[dict]


#: Relative cost of each section at NETSARC size: workers take the costliest first.
_COST = {
    "elpd": 5.0,
    "standardized": 3.0,
    "ppc": 2.0,
    "diagnostics": 2.0,
    "centres": 2.0,
    "hazard_ratios": 1.0,
    "margin": 1.0,
    "crude": 1.0,
    "table1": 0.5,
    "outcomes": 0.5,
}


@dataclass(frozen=True)
class _Task:
    """One section of the report (of one endpoint, for the per-endpoint ones)."""

    section: str
    endpoint: str | None = None
    model: str | None = None

    @property
    def label(self) -> str:
        return " ".join(x for x in (self.section, self.endpoint, self.model) if x)


@dataclass
class _Job:
    """What every section reads: the registry, the fits (DataTrees) and the settings."""

    df: pd.DataFrame
    fits: dict[str, dict[str, xr.DataTree]]
    ci_prob: float
    figures_dir: Path | None
    times: tuple[float, ...]
    horizon: float
    num_draws: int | None
    random_seed: int
    rc: dict[str, Any]


def _tasks(endpoints: list[str], all_fits: dict[str, dict]) -> list[_Task]:
    """Return the report's sections, in its order.

    A model comparison is preceded by one ``elpd`` task per model (its cross-validation,
    the costly part), so that two models' are computed at once; the comparison itself
    then only tabulates and plots them.
    """
    tasks = [_Task("table1"), _Task("outcomes"), _Task("hazard_ratios"), _Task("crude")]
    for section in ("standardized", "margin", "diagnostics", "ppc", "comparison", "centres"):
        for e in endpoints:
            if section == "margin" and MARGIN_MODEL not in all_fits[e]:
                continue
            if section == "comparison":
                if len(all_fits[e]) < 2:
                    continue
                tasks += [_Task("elpd", e, name) for name in all_fits[e]]
            tasks.append(_Task(section, e))
    return tasks


def _light(dt: xr.DataTree) -> xr.DataTree:
    """Return ``dt`` without its stored log-likelihood (no section reads it; workers get less)."""
    light = xr.DataTree.from_dict(
        {name: dt[name].dataset for name in dt.children if name != "log_likelihood"}
    )
    light.attrs = dict(dt.attrs)
    return light


def _compute(job: _Job, task: _Task, found: Mapping | None = None) -> tuple[Any, dict, dict, dict]:
    """Compute one section; return its value and the figures, URIs and tables it made.

    Runs in this process or in a worker (:mod:`bayes_sarcoma.report.workers`), with the
    caller's matplotlib settings either way. ``found``: a comparison's ``elpd`` results.
    """
    out = _Builder(job.df, job.df.attrs.get("truth"), job.ci_prob, job.figures_dir)
    e = task.endpoint
    fits = job.fits.get(e, {}) if e is not None else {}
    with matplotlib.rc_context(job.rc):
        match task.section:
            case "table1":
                value = out.table1()
            case "outcomes":
                value = out.outcomes()
            case "hazard_ratios":
                value = out.hazard_ratios({k: named[MAIN] for k, named in job.fits.items()})
            case "crude":
                value = out.crude_figure(tuple(schema.ENDPOINTS))
            case "standardized":
                value = out.standardized(e, fits[MAIN], job.times, job.horizon, job.num_draws)
            case "margin":
                value = out.margin(e, fits[MARGIN_MODEL])
            case "diagnostics":
                value = out.diagnostics(e, fits[MAIN], {n: f for n, f in fits.items() if n != MAIN})
            case "ppc":
                value = out.ppc(e, fits[MAIN], job.times, job.random_seed)
            case "elpd":
                centers = compare.patient_centers(fits)
                value = compare.loo_and_lco(fits[task.model], centers=centers, num_draws=LOO_DRAWS)
            case "comparison":
                value = out.comparison(e, fits, found)
            case "centres":
                value = out.centres(e, fits[MAIN])
            case _:
                raise ValueError(f"unknown section {task.section!r}")
    return value, out.pngs, out.uris, out.tables


def _sections(
    out: _Builder,
    endpoints: list[str],
    all_fits: dict[str, dict],
    times: Sequence[float],
    horizon: float,
    num_draws: int | None,
    sampler: dict[str, Any],
    cores: int | None,
) -> _Sections:
    """Compute every section (on ``cores`` cores); the headline last, from the others.

    Figures and tables are gathered in the report's order wherever they were computed.
    """
    main = {e: all_fits[e][MAIN] for e in endpoints}
    job = _Job(
        df=out.df,
        fits={e: {n: _light(f[1]) for n, f in named.items()} for e, named in all_fits.items()},
        ci_prob=out.ci_prob,
        figures_dir=out.figures_dir,
        times=tuple(float(t) for t in times),
        horizon=float(horizon),
        num_draws=num_draws,
        random_seed=sampler["random_seed"],
        rc={k: v for k, v in matplotlib.rcParams.items() if k != "backend"},
    )
    start, tasks = time.perf_counter(), _tasks(endpoints, {e: all_fits[e] for e in endpoints})
    shared = sorted(
        (t for t in tasks if t.section != "comparison"), key=lambda t: -_COST[t.section]
    )
    done = dict(zip(shared, workers.share(shared, _compute, job, cores=cores), strict=True))
    values = {}
    for task in tasks:
        if task.section == "comparison":  # from its models' elpd tasks, done by now
            found = {n: values[_Task("elpd", task.endpoint, n)] for n in job.fits[task.endpoint]}
            done[task] = workers.run_here(_compute, job, task, found)
        (value, pngs, uris, tables), timing = done[task]
        out.pngs |= pngs
        out.uris |= uris
        out.tables |= tables
        out.timings[task.label] = timing
        values[task] = value
    out.timings["all sections"] = workers.Timing("", time.perf_counter() - start, math.nan)

    def per_endpoint(section: str) -> list:
        return [values[t] for t in tasks if t.section == section]

    found = _Sections(
        main=main,
        all=all_fits,
        tables={k: values[_Task(k)] for k in ("table1", "outcomes", "hazard_ratios")},
        standardized=per_endpoint("standardized"),
        margin=per_endpoint("margin"),
        diagnostics=per_endpoint("diagnostics"),
        checks=per_endpoint("ppc"),
        comparisons=per_endpoint("comparison"),
        centres=per_endpoint("centres"),
    )
    follow_up = {e: float(out.df[schema.endpoint_columns(e)[0]].max()) for e in endpoints}
    found.tables["headline"] = _headline(
        endpoints,
        main,
        found.standardized,
        found.diagnostics,
        found.checks,
        found.comparisons,
        out.truth,
        {
            "ci_prob": out.ci_prob,
            "landmark": max(times),
            "horizon": horizon,
            "follow_up": follow_up,
        },
    )
    return found


def _settings_text(sampler: dict[str, Any], fits: Mapping) -> str:
    """Describe the sampler settings, naming the fits given with their own settings."""
    text = (
        f"nutpie NUTS, {sampler['chains']} chains x {sampler['draws']} draws after "
        f"{sampler['tune']} tuning steps, random_seed {sampler['random_seed']}"
    )
    if not fits:
        return text
    given = ", ".join(
        f"{e} {name}"
        for e, v in fits.items()
        for name in (v if isinstance(v, Mapping) else {MAIN: v})
    )
    return text + f" (fits given with their own settings: {given})"


def _context(
    out: _Builder,
    sections: _Sections,
    sampler: dict[str, Any],
    fits: Mapping,
    title: str | None,
    horizon: float,
    num_draws: int | None,
) -> dict[str, Any]:
    """Return the template's context: the text, the HTML tables and the figures."""
    tables = sections.tables
    fits_by_endpoint = {e: {n: f[1] for n, f in named.items()} for e, named in sections.all.items()}
    draws_used = _draws_used(sections, num_draws)
    return {
        "title": title or "Does surgery at an expert sarcoma centre lengthen survival?",
        "generated": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "version": __version__,
        "data": _data_summary(out.df, sections.main),
        "simulated": out.truth is not None,
        "settings": _settings_text(sampler, fits),
        "ci_prob_pct": f"{out.ci_prob:.0%}",
        "cri": cri(out.ci_prob),
        "draws": draws_used,
        "headline": _html(tables["headline"], index=True),
        "table1": _html(tables["table1"]),
        "outcomes": _html(tables["outcomes"]),
        "hr_table": _html(tables["hazard_ratios"], index=True),
        "figures": out.uris,
        "standardized": [s["context"] for s in sections.standardized],
        "margin": sections.margin,
        "diagnostics": sections.diagnostics,
        "ppc": sections.checks,
        "comparison": sections.comparisons,
        "no_comparison": [
            e for e in sections.main if e not in {c["endpoint"] for c in sections.comparisons}
        ],
        "centres": sections.centres,
        "thresholds": sections.diagnostics[0]["thresholds"] if sections.diagnostics else {},
        "methods": methods_text(
            ci_prob=out.ci_prob,
            horizon=horizon,
            draws_used=draws_used,
            priors=priors_text(fits_by_endpoint),
            baselines=baselines_text(fits_by_endpoint),
            patient_level=_patient_level_treatments(sections.main),
        ),
    }


def _draws_used(sections: _Sections, num_draws: int | None) -> dict[str, str]:
    """Return, per computation of the report, how many posterior draws it used (per fit)."""

    def per_fit(texts: dict[str, str]) -> str:
        if len(set(texts.values())) == 1:
            return next(iter(texts.values())) + " of each main fit"
        return "; ".join(f"{e}: {t}" for e, t in texts.items())

    main = {e: dt for e, (_, dt) in sections.main.items()}
    used = {
        "standardized survival": per_fit({e: draws_text(dt, num_draws) for e, dt in main.items()}),
        "posterior predictive checks": per_fit(
            {e: draws_text(dt, ppc.NUM_DRAWS) for e, dt in main.items()}
        ),
    }
    if sections.comparisons:
        used["PSIS-LOO and leave-centre-out"] = "; ".join(
            f"{c['endpoint']}: {c['loo_draws']}" for c in sections.comparisons
        )
    return used


def _write(path: str | Path, html: str) -> Path:
    """Write the HTML file (and its folder); return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _warn_flagged(flagged: list[str]) -> None:
    """Warn, once and at analysis_report's caller, about the fits whose sampling was flagged."""
    if flagged:
        warnings.warn(
            f"sampling problems in {', '.join(flagged)}: see the report's Diagnostics "
            "section (or fit with more draws)",
            SamplerWarning,
            stacklevel=3,
        )


# -- fitting -----------------------------------------------------------------------------------
def _fit_all(df, endpoints, candidates, given, fit_kwargs):
    """Fit every candidate of every endpoint; name the fits whose sampling was flagged."""
    all_fits: dict[str, dict] = {}
    flagged: list[str] = []
    given = {e: v if isinstance(v, Mapping) else {MAIN: v} for e, v in given.items()}
    for endpoint, known in given.items():  # checked before anything is fitted
        unknown = set(known) - set(compare.CANDIDATES)
        if unknown:
            raise ValueError(
                f"fits[{endpoint!r}]: unknown candidates {sorted(unknown)}; "
                f"choose from {list(compare.CANDIDATES)}"
            )
    for endpoint in endpoints:
        base = HierarchicalWeibull(endpoint)
        known = given.get(endpoint, {})
        all_fits[endpoint] = {}
        for name in dict.fromkeys([MAIN, *candidates, *known]):
            if name in known:
                all_fits[endpoint][name] = tuple(known[name])
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SamplerWarning)
                fitted = compare.fit_candidates(df, model=base, candidates=[name], **fit_kwargs)
            all_fits[endpoint][name] = fitted[name]
            for w in caught:
                if issubclass(w.category, SamplerWarning):
                    flagged.append(f"{endpoint} ({name})")
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return all_fits, list(dict.fromkeys(flagged))


# -- formatting --------------------------------------------------------------------------------
def _html(table: pd.DataFrame, *, index: bool = False) -> str:
    """Return ``table`` as HTML with one header row: the index, when shown, is a column.

    pandas writes a named index (or a MultiIndex) as a second, mostly empty header row;
    moving the index into the columns leaves one header row and no empty header cells.
    """
    if index:
        names = [n or "" for n in table.index.names]
        table = table.reset_index(names=names if len(names) > 1 or names[0] else [""])
    table = table.copy()
    table.columns = [
        " ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c) for c in table.columns
    ]
    return table.to_html(classes="t", border=0, index=False, na_rep="", escape=True)


_interval = format_interval


def _pct(value: float) -> str:
    return "" if pd.isna(value) else f"{100 * value:.1f}%"


def _number(value: float, unit: str) -> str:
    if pd.isna(value):
        return ""
    if unit == "n":
        return f"{value:,.0f}"
    if unit == "proportion":
        return _pct(value)
    if unit == "p":
        return f"{value:.3g}" if value >= 1e-4 else "< 0.0001"
    return f"{value:.1f}"


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


class _Builder:
    """Computes the report's sections; keeps the figures (PNG) and extra tables."""

    def __init__(self, df: pd.DataFrame, truth: dict | None, ci_prob: float, figures_dir):
        self.df, self.truth, self.ci_prob = df, truth, ci_prob
        self.figures_dir = None if figures_dir is None else Path(figures_dir)
        self.pngs: dict[str, bytes] = {}
        self.uris: dict[str, str] = {}
        self.tables: dict[str, pd.DataFrame] = {}
        self.timings: dict[str, workers.Timing] = {}
        self.start = time.perf_counter()

    def write(self, path: str | Path, html: str) -> Path:
        """Write the report's HTML (:func:`_write`); time the report since this builder began."""
        written = _write(path, html)
        self.timings["report"] = workers.Timing("", time.perf_counter() - self.start, math.nan)
        return written

    def figure(self, name: str, fig) -> str:
        data = _png(fig)
        self.pngs[name] = data
        if self.figures_dir is not None:
            self.figures_dir.mkdir(parents=True, exist_ok=True)
            (self.figures_dir / f"{name}.png").write_bytes(data)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        self.uris[name] = uri
        return uri

    # Table 1 and crude outcomes -----------------------------------------------------------
    def table1(self) -> pd.DataFrame:
        cal = calibration_table(self.df, published=self.truth is not None)
        rows = cal[cal.section.isin(["registry", "centres", "patients"])]
        out = pd.DataFrame({"quantity": rows.quantity.str.cat(rows.unit, sep=" (") + ")"})
        for col in ("expert", "other", "overall"):
            out[col] = [_number(v, u) for v, u in zip(rows[col], rows.unit, strict=True)]
        if self.truth is not None:
            for col in ("published_expert", "published_other"):
                out[col.replace("_", " ")] = [
                    _number(v, u) for v, u in zip(rows[col], rows.unit, strict=True)
                ]
        return out.reset_index(drop=True)

    def outcomes(self) -> pd.DataFrame:
        """Crude KM medians, log-rank p and follow-up of every endpoint of the registry."""
        cal = calibration_table(self.df, published=self.truth is not None)
        rows = cal[cal.section == "outcome"]
        out = pd.DataFrame({"quantity": rows.quantity.to_numpy()})
        for col in ("expert", "other", "overall"):
            out[col] = [_number(v, u) for v, u in zip(rows[col], rows.unit, strict=True)]
        if self.truth is not None:
            out["published expert"] = [
                _number(v, u) for v, u in zip(rows.published_expert, rows.unit, strict=True)
            ]
            out["published other"] = [
                _number(v, u) for v, u in zip(rows.published_other, rows.unit, strict=True)
            ]
        return out

    def crude_figure(self, endpoints) -> None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(
            1, len(endpoints), figsize=(4.2 * len(endpoints), 3.4), squeeze=False, sharey=True
        )
        expert = self.df[schema.EXPERT].astype(bool).to_numpy()
        for ax, endpoint in zip(axes[0], endpoints, strict=True):
            tcol, ecol = schema.endpoint_columns(endpoint)
            for mask, label, colour in ((expert, "expert centre", "C0"), (~expert, "other", "C1")):
                t = self.df.loc[mask, tcol].to_numpy(float)
                e = self.df.loc[mask, ecol].to_numpy(bool)
                sf = stats.ecdf(stats.CensoredData.right_censored(t, ~e)).sf
                ci = sf.confidence_interval(confidence_level=self.ci_prob)
                ax.step(sf.quantiles, sf.probabilities, where="post", color=colour, label=label)
                ax.fill_between(
                    sf.quantiles,
                    ci.low.probabilities,
                    ci.high.probabilities,
                    step="post",
                    color=colour,
                    alpha=0.2,
                    linewidth=0,
                )
            ax.set_title(f"{endpoint}: crude Kaplan-Meier ({self.ci_prob:.0%} CI)", fontsize=10)
            ax.set_xlabel("months since surgery")
            ax.set_ylim(0, 1.02)
        axes[0, 0].set_ylabel("survival probability")
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        self.figure("crude_km", fig)
        self.uris["crude"] = self.uris["crude_km"]

    # Effects ------------------------------------------------------------------------------
    def hazard_ratios(self, main: Mapping[str, xr.DataTree]) -> pd.DataFrame:
        cols = {}
        for endpoint, dt in main.items():
            hr = plots.hazard_ratios_per_unit(dt, ci_prob=self.ci_prob)
            cols[f"{endpoint} HR, {cri(self.ci_prob)}"] = [
                format_interval(r["median"], r["lower"], r["upper"]) for _, r in hr.iterrows()
            ]
            cols[f"{endpoint} P(HR<1)"] = [f"{p:.3f}" for p in hr["prob_lt_1"]]
            if self.truth is not None:
                beta = self.truth[endpoint]["beta"]
                cols[f"{endpoint} true"] = [
                    f"{np.exp(beta[t] * k):.2f}" if t in beta else ""
                    for t, k in zip(hr.index, hr["per"], strict=True)
                ]
            index = [plots.term_label(t) for t in hr.index]
        table = pd.DataFrame(cols, index=pd.Index(index, name="term"))
        fig = plots.plot_hazard_ratio_forest(dict(main), ci_prob=self.ci_prob)
        self.figure("hazard_ratios_forest", fig)
        self.uris["forest"] = self.uris["hazard_ratios_forest"]
        return table

    def standardized(self, endpoint, dt, times, horizon, num_draws) -> dict:
        t_max = float(np.quantile(self.df[schema.endpoint_columns(endpoint)[0]], 0.99))
        grid = np.unique(np.concatenate([np.linspace(0, min(t_max, 120.0), 49), times]))
        std = standardized_survival(dt, self.df, grid, horizon=horizon, num_draws=num_draws)
        summary = standardized_summary(std, ci_prob=self.ci_prob)
        label = f"difference, {cri(self.ci_prob)}"
        treated, control = arm_labels(std.attrs["treatment"])
        rows = []
        for t in times:
            at = summary[summary.time == t].set_index("quantity")
            row = {
                "quantity": f"survival at {t:g} months",
                treated: _pct(at.loc["treated", "median"]),
                control: _pct(at.loc["control", "median"]),
                label: _interval(*(100 * at.loc["difference", ["median", "lower", "upper"]]), 1)
                + " pp",
            }
            if self.truth is not None:
                e, o = _true_standardized(self.truth[endpoint], t)
                row["true difference"] = "" if e is None else f"{100 * (e - o):.1f} pp"
            rows.append(row)
        rest = summary[summary.time.isna()].set_index("quantity")
        for name, what in (("median", "median (months)"), ("rmst", f"RMST to {horizon:g} months")):
            row = {
                "quantity": what,
                treated: f"{rest.loc[f'{name}_treated', 'median']:.1f}",
                control: f"{rest.loc[f'{name}_control', 'median']:.1f}",
                label: _interval(*rest.loc[f"{name}_difference", ["median", "lower", "upper"]], 1)
                + " months",
            }
            rows.append(row)
        table = pd.DataFrame(rows).fillna("")
        self.tables[f"standardized_{endpoint}"] = summary
        fig = plot_standardized(
            std, ci_prob=self.ci_prob, title=f"{endpoint}: standardized survival"
        )
        uri = self.figure(f"standardized_{endpoint}", fig)
        context = {"endpoint": endpoint, "table": _html(table), "figure": uri}
        return {"context": context, "summary": summary}

    def margin(self, endpoint, dt) -> dict:
        table = effects.effect_by_modifier(dt, ci_prob=self.ci_prob)
        self.tables[f"effect_by_margin_{endpoint}"] = table
        name = effect_name(table.attrs["treatment"])
        shown = pd.DataFrame(
            {
                "patients": table["n_patients"].map(lambda v: f"{v:,.0f}"),
                name: table["n_treated"].map(lambda v: f"{v:,.0f}"),
                "events": table["n_events"].map(lambda v: f"{v:,.0f}"),
                f"{name} HR, {cri(self.ci_prob)}": [
                    _interval(r["median"], r["lower"], r["upper"]) for _, r in table.iterrows()
                ],
                "P(HR<1)": table["prob_lt_1"].map(lambda p: f"{p:.3f}"),
            },
            index=table.index,
        )
        fig = plots.legend_below(effects.plot_effect_by_modifier(dt, ci_prob=self.ci_prob))
        uri = self.figure(f"effect_by_margin_{endpoint}", fig)
        return {"endpoint": endpoint, "table": _html(shown, index=True), "figure": uri}

    # Checks --------------------------------------------------------------------------------
    def diagnostics(self, endpoint, dt, others: Mapping[str, xr.DataTree]) -> dict:
        result = fit_diagnosis(dt)
        p_values, alpha = plots.rank_test(dt)
        flagged = {k: p for k, p in p_values.items() if p < alpha}
        other_results = {name: fit_diagnosis(other) for name, other in others.items()}
        self.tables[f"diagnostics_{endpoint}"] = result.table
        self.tables[f"rank_test_{endpoint}"] = pd.Series(p_values, name="p").to_frame()
        uri = self.figure(f"rank_{endpoint}", plots.plot_trace_rank(dt))
        return {
            "endpoint": endpoint,
            "ok": result.ok and not flagged,
            "verdict": _verdict(result.ok, flagged, alpha),
            "messages": result.messages + _rank_messages(p_values, flagged, alpha),
            "table": _html(_diagnostics_table(result.table)),
            "chains": _html(
                result.chains.map(lambda v: f"{v:.3g}" if isinstance(v, float) else v), index=True
            ),
            "figure": uri,
            "thresholds": result.thresholds,
            "result": result,
            "others": [
                {"name": name, "ok": r.ok, "messages": r.messages}
                for name, r in other_results.items()
            ],
            "others_flagged": [name for name, r in other_results.items() if not r.ok],
        }

    def ppc(self, endpoint, dt, times, random_seed) -> dict:
        check = ppc.km_check(dt, ci_prob=self.ci_prob, random_seed=random_seed)
        table = check.table(times)
        self.tables[f"ppc_{endpoint}"] = table
        shown = table.copy()
        lo, hi = (1 - self.ci_prob) / 2, (1 + self.ci_prob) / 2
        for col in shown.columns:
            if col.startswith(("S_", "coverage")):
                shown[col] = shown[col].map(_pct)
            elif col.startswith("p("):
                shown[col] = shown[col].map(lambda v: f"{v:.2f}" + (" *" * (not lo <= v <= hi)))
        shown = shown.rename(columns={"coverage": f"inside the {self.ci_prob:.0%} band"})
        fig = plots.plot_km_check(check, title=f"{endpoint}: observed Kaplan-Meier vs replicates")
        uri = self.figure(f"ppc_km_{endpoint}", fig)
        return {
            "endpoint": endpoint,
            "table": _html(shown, index=True),
            "figure": uri,
            "check": check,
        }

    def comparison(self, endpoint, dts: Mapping[str, xr.DataTree], found=None) -> dict:
        if found is None:
            both = compare.compare_loo_and_lco(dts, num_draws=LOO_DRAWS)
        else:  # each model's loo_and_lco, computed as tasks of their own
            both = compare.compare_results(found, fits=dts)
        loo, lco = both["loo"], both["lco"]
        self.tables[f"loo_{endpoint}"] = loo.table
        self.tables[f"lco_{endpoint}"] = lco.table
        uri = self.figure(f"loo_{endpoint}", plots.plot_model_comparison(loo))
        pareto = pd.concat({"LOO": loo.pareto, "leave-centre-out": lco.pareto}, names=["method"])
        return {
            "endpoint": endpoint,
            "messages": loo.messages
            + lco.messages[:1]
            + [f"Leave-centre-out, {m}" for m in lco.messages[1:]],
            "loo": _html(_comparison_table(loo.table), index=True),
            "lco": _html(_comparison_table(lco.table), index=True),
            "pareto": _html(pareto.round(3), index=True),
            "figure": uri,
            "best": loo.best,
            "best_lco": lco.best,
            "loo_draws": _loo_draws(loo, dts),
        }

    def centres(self, endpoint, dt) -> dict:
        profile = centers.center_profile(dt, ci_prob=self.ci_prob)
        self.tables[f"centres_{endpoint}"] = profile
        shown, rest = centers.caterpillar_rows(profile)
        caterpillar = centers.plot_caterpillar(
            profile, title=f"{endpoint}: centres' hazard ratios vs a typical centre (shrunken)"
        )
        funnel = centers.plot_funnel(
            profile, title=f"{endpoint}: funnel plot, raw O/E and shrunken hazard ratios"
        )
        return {
            "endpoint": endpoint,
            "n_shown": len(shown),
            "n_rest": len(rest),
            "threshold": f"{profile.attrs['threshold']:g}",
            "table": _html(_centre_table(shown, self.ci_prob), index=True),
            "caterpillar": self.figure(f"caterpillar_{endpoint}", caterpillar),
            "funnel": self.figure(f"funnel_{endpoint}", funnel),
        }


def _diagnostics_table(table: pd.DataFrame) -> pd.DataFrame:
    """Format diagnose()'s table: 4 significant digits, whole ESS, R-hat to 3 decimals."""
    return table.assign(
        **{
            c: table[c].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
            for c in ("mean", "sd", "mcse_mean", "mcse_sd")
        },
        ess_bulk=table["ess_bulk"].map(lambda v: f"{v:.0f}"),
        ess_tail=table["ess_tail"].map(lambda v: f"{v:.0f}"),
        r_hat=table["r_hat"].map(lambda v: f"{v:.3f}"),
        rhat_limit=table["rhat_limit"].map(lambda v: f"{v:.3f}"),
        ok=table["ok"].map({True: "yes", False: "NO"}),
    )


def _verdict(ok: bool, flagged: Mapping[str, float], alpha: float) -> str:
    """Return the diagnostics verdict, agreeing with the rank plots' test."""
    if not ok:
        return "PROBLEMS"
    if flagged:
        names = ", ".join(f"{k} (p = {p:.3f})" for k, p in flagged.items())
        return f"CHECK: R-hat and ESS pass, but the rank test flags {names} at < {alpha:g}"
    return "OK"


def _rank_messages(p_values: Mapping[str, float], flagged: Mapping, alpha: float) -> list[str]:
    """Return the rank test's sentence for the diagnostics list."""
    if flagged:
        return [
            f"The multi-chain rank test (beside each rank plot) finds the chains' ranks "
            f"non-uniform for {', '.join(flagged)} (p < {alpha:g}): the chains disagree there; "
            "run longer chains before trusting its tails."
        ]
    low = min(p_values.values(), default=1.0)
    return [
        f"The multi-chain rank test passes for every key parameter (lowest p = {low:.2f}, "
        f"flagged below {alpha:g})."
    ]


def _loo_draws(comparison, dts: Mapping[str, xr.DataTree]) -> str:
    """Return how many posterior draws PSIS-LOO used, per model (from its results)."""
    parts = []
    for name, dt in dts.items():
        used, total = int(comparison.results[name].n_samples), n_draws(dt)
        parts.append(f"{name} {used} of {total}" if used < total else f"{name} all {total}")
    return "; ".join(parts) + " posterior draws (every k-th draw of each chain)"


def _centre_table(shown: pd.DataFrame, ci_prob: float) -> pd.DataFrame:
    """Format the caterpillar's centres: O, E, O/E, the shrunken HR and P(HR > threshold)."""
    threshold = shown.attrs.get("threshold", centers.THRESHOLD)
    out = pd.DataFrame(
        {
            "patients": shown["n_patients"].map(lambda v: f"{v:,.0f}"),
            "events (O)": shown["n_events"].map(lambda v: f"{v:,.0f}"),
            "expected (E)": shown["expected"].map(lambda v: f"{v:.1f}"),
            "O/E": shown["o_e"].map(lambda v: f"{v:.2f}"),
            f"HR vs typical centre, {cri(ci_prob)}": [
                _interval(r["ratio"], r["ratio_lower"], r["ratio_upper"])
                for _, r in shown.iterrows()
            ],
            f"P(HR > {threshold:g})": shown["p_above"].map(lambda v: f"{v:.2f}"),
            f"P(HR < 1/{threshold:g})": shown["p_below"].map(lambda v: f"{v:.2f}"),
        },
        index=shown.index,
    )
    treatment = shown.attrs.get("treatment")
    if treatment in shown:
        out.insert(0, "expert", shown[treatment].map(lambda v: "yes" if v else ""))
    return out


def _patient_level_treatments(main: Mapping[str, tuple[Any, xr.DataTree]]) -> list[str]:
    """Return the main fits' treatments that vary within centres (patient-level terms)."""
    out = []
    for _, dt in main.values():
        treatment = model_spec(dt).get("treatment")
        clustered = "center" in dt["constant_data"]
        term = treatment in fitted_design(dt).labels
        if term and clustered and centers.center_level_treatment(dt) is None:
            out.append(treatment)
    return out


def _true_standardized(truth: dict, t: float) -> tuple[float | None, float | None]:
    """Return the simulator's standardized survival (expert, other) at ``t`` months."""
    s = truth.get("standardized", {})
    out = []
    for arm in ("expert", "other"):
        values = {float(k): v for k, v in s.get(arm, {}).items()}
        out.append(values.get(float(t)))
    return out[0], out[1]


def _comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in ("elpd", "se", "elpd_diff", "dse", "p", "weight") if c in table]
    return (
        table[cols]
        .astype(float)
        .round({"elpd": 1, "se": 1, "elpd_diff": 1, "dse": 1, "p": 1, "weight": 3})
    )


def _data_summary(df: pd.DataFrame, main) -> dict:
    expert = df[schema.EXPERT].astype(bool)
    n_expert_centers = df.loc[expert, schema.CENTER_ID].nunique()
    _, dt = next(iter(main.values()))
    terms = ", ".join(map(str, dt["posterior"]["term"].to_numpy()))
    return {
        "n_patients": f"{len(df):,}",
        "n_centers": f"{df[schema.CENTER_ID].nunique():,}",
        "n_expert_centers": f"{n_expert_centers}",
        "expert_share": _pct(expert.mean()),
        "terms": terms,
    }


#: The headline's cell where only one model was fitted for an endpoint.
NO_COMPARISON = "one model fitted: no comparison"


def _headline(endpoints, main, standardized, diagnostics, checks, comparisons, truth, ctx):
    """One column per endpoint: the effect, the standardized contrasts and the checks.

    The hazard ratio and contrast cells come from :mod:`bayes_sarcoma.report.headline`,
    the same functions as the demo's ``headline.txt``.
    """
    ci_prob, landmark, horizon = ctx["ci_prob"], ctx["landmark"], ctx["horizon"]
    best = {c["endpoint"]: c["best"] for c in comparisons}
    columns = {}
    for k, endpoint in enumerate(endpoints):
        summary = standardized[k]["summary"]
        col = hazard_ratio_cells(main[endpoint][1], ci_prob=ci_prob) | contrast_cells(
            summary, landmark=landmark, horizon=horizon, ci_prob=ci_prob
        )
        rest = summary[summary.time.isna()].set_index("quantity")
        medians = rest.loc[["median_treated", "median_control"], "median"]
        if bool((medians > ctx["follow_up"][endpoint]).any()):
            col[f"difference in median survival time, {cri(ci_prob)}"] += " *"
        others = diagnostics[k]["others_flagged"]
        col["sampling diagnostics"] = diagnostics[k]["verdict"] + (
            f" (other models: problems in {', '.join(others)})" if others else ""
        )
        col[f"observed KM inside the {ci_prob:.0%} predictive band"] = (
            _pct(checks[k]["check"].coverage()["all"]) + " of times"
        )
        col["best model (PSIS-LOO)"] = best.get(endpoint, NO_COMPARISON)
        if truth is not None:
            col |= _truth_cells(truth[endpoint], landmark)
        columns[endpoint] = col
    table = pd.DataFrame(columns)
    table.columns.name = None
    table.index.name = None
    return table


def _truth_cells(t: dict, landmark: float) -> dict[str, str]:
    """Return the simulator's expert HR and standardized difference at ``landmark``."""
    e, o = _true_standardized(t, landmark)
    return {
        "true expert HR": f"{np.exp(t['beta'][schema.EXPERT]):.2f}"
        + ("" if t.get("exact") else " (pseudo-true)"),
        f"true difference at {landmark:g} months": "" if e is None else f"{100 * (e - o):.1f} pp",
    }


def _render(context: dict) -> str:
    """Render the report's template with ``context``."""
    return _TEMPLATES.get_template("report.html.j2").render(**context)
