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
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
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
    plot_standardized,
    standardized_summary,
    standardized_survival,
)
from bayes_sarcoma.report import plots
from bayes_sarcoma.simulate.calibration import calibration_table

__all__ = ["DEFAULT_CANDIDATES", "Report", "analysis_report"]

#: Models fitted per endpoint: the main model and the variants it is compared with.
DEFAULT_CANDIDATES = ("weibull", "exponential", "no centre effects", "expert x margin")
MAIN = "weibull"
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
    """

    path: Path
    html: str
    figures: dict[str, bytes] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    fits: dict[str, dict[str, tuple[Any, xr.DataTree]]] = field(default_factory=dict)


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
    num_draws: int | None = 1000,
    figures_dir: str | Path | None = None,
    title: str | None = None,
    progressbar: bool = False,
) -> Report:
    """Analyse a registry and write the NETSARC-style report as one HTML file.

    Parameters
    ----------
    registry : pandas.DataFrame
        A registry with the columns of :mod:`bayes_sarcoma.data.schema` (validated first;
        endpoints derived from the dates when absent). A simulated registry
        (:func:`bayes_sarcoma.simulate_registry`) also gets its true values shown.
    path : str or Path
        The HTML file to write.
    endpoints : sequence of str
        Endpoints to analyse.
    draws, tune, chains : int
        Sampler settings of every fit.
    random_seed : int, optional
        Seed of every fit (one is drawn and reported when omitted).
    candidates : sequence of str
        Models fitted per endpoint (:data:`bayes_sarcoma.checks.compare.CANDIDATES`):
        ``"weibull"`` is the main model; ``"expert x margin"`` gives the effect by margin;
        with two or more, the models are compared.
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
        Posterior draws used for standardized survival (None: all).
    figures_dir : str or Path, optional
        Also write every figure there as PNG.
    title : str, optional
        Report title.
    progressbar : bool
        Show the sampler's progress.

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
    sections = _sections(out, endpoints, all_fits, times, horizon, num_draws, sampler)
    html = _render(_context(out, sections, sampler, fits, title, horizon))
    path = _write(path, html)
    _warn_flagged(flagged)
    return Report(path, html, out.pngs, sections.tables | out.tables, all_fits)


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
    tables: dict[str, pd.DataFrame]
    standardized: list[dict]
    margin: list[dict]
    diagnostics: list[dict]
    checks: list[dict]
    comparisons: list[dict]
    centres: list[dict]


def _sections(
    out: _Builder,
    endpoints: list[str],
    all_fits: dict[str, dict],
    times: Sequence[float],
    horizon: float,
    num_draws: int | None,
    sampler: dict[str, Any],
) -> _Sections:
    """Compute every section, in the report's order; the headline last, from the others."""
    main = {e: all_fits[e][MAIN] for e in endpoints}
    tables = {
        "table1": out.table1(),
        "outcomes": out.outcomes(),
        "hazard_ratios": out.hazard_ratios(main),
    }
    out.crude_figure(tuple(schema.ENDPOINTS))
    found = _Sections(
        main=main,
        tables=tables,
        standardized=[
            out.standardized(e, main[e][1], times, horizon, num_draws) for e in endpoints
        ],
        margin=[
            out.margin(e, all_fits[e][MARGIN_MODEL][1])
            for e in endpoints
            if MARGIN_MODEL in all_fits[e]
        ],
        diagnostics=[
            out.diagnostics(e, main[e][1], {n: f[1] for n, f in all_fits[e].items() if n != MAIN})
            for e in endpoints
        ],
        checks=[out.ppc(e, main[e][1], times, sampler["random_seed"]) for e in endpoints],
        comparisons=[out.comparison(e, all_fits[e]) for e in endpoints if len(all_fits[e]) > 1],
        centres=[out.centres(e, main[e][1]) for e in endpoints],
    )
    follow_up = {e: float(out.df[schema.endpoint_columns(e)[0]].max()) for e in endpoints}
    tables["headline"] = _headline(
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
) -> dict[str, Any]:
    """Return the template's context: the text, the HTML tables and the figures."""
    tables = sections.tables
    return {
        "title": title or "Does surgery at an expert sarcoma centre lengthen survival?",
        "generated": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "version": __version__,
        "data": _data_summary(out.df, sections.main),
        "simulated": out.truth is not None,
        "settings": _settings_text(sampler, fits),
        "ci_prob_pct": f"{out.ci_prob:.0%}",
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
        "centres": sections.centres,
        "thresholds": sections.diagnostics[0]["thresholds"] if sections.diagnostics else {},
        "methods": _methods(out.ci_prob, horizon),
    }


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
    return table.to_html(classes="t", border=0, index=index, na_rep="", escape=True)


def _interval(median: float, lower: float, upper: float, digits: int = 2) -> str:
    return f"{median:.{digits}f} ({lower:.{digits}f} to {upper:.{digits}f})"


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
    def hazard_ratios(self, main) -> pd.DataFrame:
        cols = {}
        for endpoint, (_, dt) in main.items():
            hr = effects.hazard_ratios(dt, ci_prob=self.ci_prob)
            cols[f"{endpoint} HR"] = [
                _interval(r["median"], r["lower"], r["upper"]) for _, r in hr.iterrows()
            ]
            cols[f"{endpoint} P(HR<1)"] = [f"{p:.3f}" for p in hr["prob_lt_1"]]
            if self.truth is not None:
                beta = self.truth[endpoint]["beta"]
                cols[f"{endpoint} true"] = [
                    f"{np.exp(beta[t]):.2f}" if t in beta else "" for t in hr.index
                ]
            index = hr.index
        table = pd.DataFrame(cols, index=index)
        table.index.name = "term"
        fig = plots.plot_hazard_ratio_forest(
            {e: dt for e, (_, dt) in main.items()}, ci_prob=self.ci_prob
        )
        self.figure("hazard_ratios_forest", fig)
        self.uris["forest"] = self.uris["hazard_ratios_forest"]
        return table

    def standardized(self, endpoint, dt, times, horizon, num_draws) -> dict:
        t_max = float(np.quantile(self.df[schema.endpoint_columns(endpoint)[0]], 0.99))
        grid = np.unique(np.concatenate([np.linspace(0, min(t_max, 120.0), 49), times]))
        std = standardized_survival(dt, self.df, grid, horizon=horizon, num_draws=num_draws)
        summary = standardized_summary(std, ci_prob=self.ci_prob)
        rows = []
        for t in times:
            at = summary[summary.time == t].set_index("quantity")
            row = {
                "quantity": f"survival at {t:g} months",
                "expert centre": _pct(at.loc["treated", "median"]),
                "other centre": _pct(at.loc["control", "median"]),
                "difference": _interval(
                    *(100 * at.loc["difference", ["median", "lower", "upper"]]), 1
                )
                + " pp",
            }
            if self.truth is not None:
                e, o = _true_standardized(self.truth[endpoint], t)
                row["true difference"] = "" if e is None else f"{100 * (e - o):.1f} pp"
            rows.append(row)
        rest = summary[summary.time.isna()].set_index("quantity")
        for name, label in (("median", "median (months)"), ("rmst", f"RMST to {horizon:g} months")):
            row = {
                "quantity": label,
                "expert centre": f"{rest.loc[f'{name}_treated', 'median']:.1f}",
                "other centre": f"{rest.loc[f'{name}_control', 'median']:.1f}",
                "difference": _interval(
                    *rest.loc[f"{name}_difference", ["median", "lower", "upper"]], 1
                )
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
        shown = pd.DataFrame(
            {
                "patients": table["n_patients"].map(lambda v: f"{v:,.0f}"),
                "expert": table["n_treated"].map(lambda v: f"{v:,.0f}"),
                "events": table["n_events"].map(lambda v: f"{v:,.0f}"),
                f"expert HR ({self.ci_prob:.0%} CrI)": [
                    _interval(r["median"], r["lower"], r["upper"]) for _, r in table.iterrows()
                ],
                "P(HR<1)": table["prob_lt_1"].map(lambda p: f"{p:.3f}"),
            },
            index=table.index,
        )
        fig = effects.plot_effect_by_modifier(dt, ci_prob=self.ci_prob)
        uri = self.figure(f"effect_by_margin_{endpoint}", fig)
        return {"endpoint": endpoint, "table": _html(shown, index=True), "figure": uri}

    # Checks --------------------------------------------------------------------------------
    def diagnostics(self, endpoint, dt, others: Mapping[str, xr.DataTree]) -> dict:
        result = fit_diagnosis(dt)
        other_results = {name: fit_diagnosis(other) for name, other in others.items()}
        self.tables[f"diagnostics_{endpoint}"] = result.table
        table = result.table.assign(
            **{
                c: result.table[c].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
                for c in ("mean", "sd", "mcse_mean", "mcse_sd")
            },
            ess_bulk=result.table["ess_bulk"].map(lambda v: f"{v:.0f}"),
            ess_tail=result.table["ess_tail"].map(lambda v: f"{v:.0f}"),
            r_hat=result.table["r_hat"].map(lambda v: f"{v:.3f}"),
            rhat_limit=result.table["rhat_limit"].map(lambda v: f"{v:.3f}"),
            ok=result.table["ok"].map({True: "yes", False: "NO"}),
        )
        chains = result.chains.map(lambda v: f"{v:.3g}" if isinstance(v, float) else v)
        uri = self.figure(f"rank_{endpoint}", plots.plot_trace_rank(dt))
        return {
            "endpoint": endpoint,
            "ok": result.ok,
            "messages": result.messages,
            "table": _html(table),
            "chains": _html(chains.reset_index()),
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
        for col in shown.columns:
            if col.startswith(("S_", "coverage")):
                shown[col] = shown[col].map(_pct)
            elif col.startswith("p("):
                shown[col] = shown[col].map(lambda v: f"{v:.2f}")
        fig = plots.plot_km_check(check, title=f"{endpoint}: observed Kaplan-Meier vs replicates")
        uri = self.figure(f"ppc_km_{endpoint}", fig)
        return {
            "endpoint": endpoint,
            "table": _html(shown, index=True),
            "figure": uri,
            "check": check,
        }

    def comparison(self, endpoint, fits) -> dict:
        dts = {name: dt for name, (_, dt) in fits.items()}
        loo = compare.compare_models(dts, method="loo")
        lco = compare.compare_models(dts, method="lco")
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
        }

    def centres(self, endpoint, dt) -> dict:
        profile = centers.center_profile(dt, ci_prob=self.ci_prob)
        self.tables[f"centres_{endpoint}"] = profile
        return {
            "endpoint": endpoint,
            "caterpillar": self.figure(
                f"caterpillar_{endpoint}",
                centers.plot_caterpillar(profile, title=f"{endpoint}: centre effects"),
            ),
            "funnel": self.figure(
                f"funnel_{endpoint}", centers.plot_funnel(profile, title=f"{endpoint}: funnel plot")
            ),
        }


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


def _headline(endpoints, main, standardized, diagnostics, checks, comparisons, truth, ctx):
    """One column per endpoint: the effect, the standardized contrasts and the checks."""
    ci_prob, landmark, horizon, follow_up = (
        ctx["ci_prob"],
        ctx["landmark"],
        ctx["horizon"],
        ctx["follow_up"],
    )
    best = {c["endpoint"]: c["best"] for c in comparisons}
    columns = {}
    for k, endpoint in enumerate(endpoints):
        _, dt = main[endpoint]
        hr = effects.hazard_ratios(dt, ci_prob=ci_prob).loc[schema.EXPERT]
        summary = standardized[k]["summary"]
        at = summary[summary.time == landmark].set_index("quantity")
        rest = summary[summary.time.isna()].set_index("quantity")
        medians = rest.loc[["median_treated", "median_control"], "median"]
        beyond = bool((medians > follow_up[endpoint]).any())
        col = {
            f"expert HR ({ci_prob:.0%} CrI)": _interval(hr["median"], hr["lower"], hr["upper"]),
            "P(HR < 1)": f"{hr['prob_lt_1']:.3f}",
            f"survival at {landmark:g} months, expert": _pct(at.loc["treated", "median"]),
            f"survival at {landmark:g} months, other": _pct(at.loc["control", "median"]),
            f"difference at {landmark:g} months": _interval(
                *(100 * at.loc["difference", ["median", "lower", "upper"]]), 1
            )
            + " pp",
            "difference in median (months)": _interval(
                *rest.loc["median_difference", ["median", "lower", "upper"]], 1
            )
            + (" *" if beyond else ""),
            f"difference in RMST to {horizon:g} months": _interval(
                *rest.loc["rmst_difference", ["median", "lower", "upper"]], 1
            )
            + " months",
            "sampling diagnostics": ("OK" if diagnostics[k]["ok"] else "PROBLEMS")
            + (
                f" (other models: problems in {', '.join(diagnostics[k]['others_flagged'])})"
                if diagnostics[k]["others_flagged"]
                else ""
            ),
            "observed KM inside the predictive band": _pct(checks[k]["check"].coverage()["all"])
            + " of times",
        }
        if endpoint in best:
            col["best model (PSIS-LOO)"] = best[endpoint]
        if truth is not None:
            t = truth[endpoint]
            col["true expert HR"] = f"{np.exp(t['beta'][schema.EXPERT]):.2f}" + (
                "" if t.get("exact") else " (pseudo-true)"
            )
            e, o = _true_standardized(t, landmark)
            col[f"true difference at {landmark:g} months"] = (
                "" if e is None else f"{100 * (e - o):.1f} pp"
            )
        columns[endpoint] = col
    table = pd.DataFrame(columns)
    table.columns.name = None
    table.index.name = None
    return table


def _methods(ci_prob: float, horizon: float) -> str:
    return (
        "Weibull proportional-hazards model, h(t) = alpha t^(alpha-1) exp(eta), with a "
        "normal random intercept per centre (non-centred where centres are small), fitted "
        "by NUTS (nutpie) with the package's weakly informative default priors; continuous "
        "covariates standardised for sampling and reported per year of age and per cm. "
        "The expert-centre effect is a centre-level attribute, identified between centres. "
        f"Intervals are equal-tailed {ci_prob:.0%} posterior intervals. Standardized survival: "
        "g-computation over the registry's covariates with a new centre's effect integrated "
        f"out (Gauss-Hermite); RMST to {horizon:g} months. Posterior predictive checks "
        "censor replicated times at each patient's censoring time (for patients with an "
        "event, drawn from the reverse Kaplan-Meier estimate beyond their event time, "
        "assuming censoring independent of the covariates). Model comparison: PSIS-LOO "
        "(arviz-stats) with the centre effect integrated out by adaptive Gauss-Hermite "
        "quadrature (exact leave-one-out predictive within a centre), and leave-centre-out "
        "PSIS with a new centre's effect integrated out."
    )


def _render(context: dict) -> str:
    """Render the report's template with ``context``."""
    return _TEMPLATES.get_template("report.html.j2").render(**context)
