"""The Jinja2 template of :func:`bayes_sarcoma.report.analysis.analysis_report` (one HTML file).

Kept as a Python string (not a package-data file) so that an installed package always
finds it. Figures arrive as ``data:`` URIs and tables as pre-rendered HTML, so the output
is one self-contained file with no external resource.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
         max-width: 1180px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
  h1 { font-size: 1.7em; margin-bottom: .2em; }
  h2 { border-bottom: 2px solid #4a6fa5; padding-bottom: .2em; margin-top: 2.2em; }
  h3 { margin-top: 1.4em; color: #2b4a75; }
  .meta { color: #555; font-size: .92em; }
  table.t { border-collapse: collapse; margin: .6em 0 1em; font-size: .88em; }
  table.t th, table.t td { border: 1px solid #ccd; padding: .25em .6em; text-align: right; }
  table.t th { background: #eef2f8; }
  table.t td:first-child, table.t th:first-child { text-align: left; }
  img { max-width: 100%; border: 1px solid #eee; margin: .4em 0; }
  .ok { color: #1a7f37; font-weight: bold; }
  .bad { color: #b42318; font-weight: bold; }
  .note { background: #f6f8fa; border-left: 4px solid #4a6fa5; padding: .5em 1em;
          font-size: .92em; }
  ul.msg li { margin: .25em 0; }
  details { margin: .6em 0; }
  summary { cursor: pointer; font-weight: 600; color: #2b4a75; }
  nav a { margin-right: 1em; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }} by bayes_sarcoma {{ version }}.
{{ data.n_patients }} patients in {{ data.n_centers }} centres ({{ data.n_expert_centers }}
expert); {{ data.expert_share }} operated at an expert centre.
{% if simulated %}<b>Simulated registry</b>: the true values it was drawn from are shown
beside the estimates.{% endif %}</p>
<p class="meta">Model: Weibull proportional hazards with a random intercept per centre;
terms {{ data.terms }}. Sampler: {{ settings }}.</p>
<nav>
  <a href="#headline">Headline</a><a href="#table1">Table 1</a><a href="#crude">Crude survival</a>
  <a href="#hr">Hazard ratios</a><a href="#standardized">Standardized survival</a>
  <a href="#margin">Effect by margin</a><a href="#diagnostics">Diagnostics</a>
  <a href="#ppc">Predictive checks</a><a href="#comparison">Model comparison</a>
  <a href="#centres">Centres</a><a href="#methods">Methods</a>
</nav>

<h2 id="headline">Headline: does surgery at an expert centre lengthen survival?</h2>
{{ headline | safe }}
<p class="note">Adjusted hazard ratio: expert vs other centre at equal age, sex, tumour size,
grade, depth and margin, within a typical centre ({{ ci_prob_pct }} credible interval);
P(HR&nbsp;&lt;&nbsp;1) is the posterior probability that the expert centre lowers the
hazard. Standardized survival: every patient of the registry operated at an expert centre
vs at none, averaged over the patients' own covariates and over a new centre's effect
(g-computation). Differences in percentage points (pp) and months. * A median beyond the
longest follow-up is an extrapolation of the Weibull model. {% if simulated %}"true"
columns: the simulator's values (the LRFS/RFS hazard ratios are pseudo-true: the best
Weibull PH approximation of a sum of hazards).{% endif %}</p>

<h2 id="table1">Table 1: patients by expert status</h2>
<p>Expert centres treat older patients with larger, higher-grade and deeper tumours:
confounding by indication, against the expert centres, that the adjusted analysis removes.</p>
{{ table1 | safe }}

<h2 id="crude">Crude survival</h2>
{{ outcomes | safe }}
<img src="{{ figures.crude }}" alt="Kaplan-Meier curves by expert status">

<h2 id="hr">Adjusted hazard ratios</h2>
{{ hr_table | safe }}
<img src="{{ figures.forest }}" alt="Forest plot of hazard ratios">

<h2 id="standardized">Standardized survival and differences in months</h2>
{% for s in standardized %}
<h3>{{ s.endpoint }}</h3>
{{ s.table | safe }}
<img src="{{ s.figure }}" alt="Standardized survival, {{ s.endpoint }}">
{% endfor %}

<h2 id="margin">Effect of the expert centre by resection margin</h2>
{% if margin %}
<p>Model with a partially pooled expert-by-margin interaction: the expert log hazard ratio
of each margin is the common one plus a deviation ~ Normal(0, interaction_sd).</p>
{% for m in margin %}
<h3>{{ m.endpoint }}</h3>
{{ m.table | safe }}
<img src="{{ m.figure }}" alt="Expert effect by margin, {{ m.endpoint }}">
{% endfor %}
{% else %}<p>Not estimated (no effect-modifier model was fitted).</p>{% endif %}

<h2 id="diagnostics">Sampling diagnostics</h2>
<p>Rank-normalised split R-hat (&lt; {{ "%g" % thresholds.rhat_max }}), bulk and tail
effective sample sizes (&ge; {{ "%g" % thresholds.ess_min }}), Monte Carlo standard errors,
divergences, tree depth and E-BFMI (&ge; {{ "%g" % thresholds.bfmi_min }}) per chain.
Centre effects are summarised by their worst value, against a limit corrected for their
number.</p>
{% for d in diagnostics %}
<h3>{{ d.endpoint }}: {% if d.ok %}<span class="ok">OK</span>
{% else %}<span class="bad">PROBLEMS</span>{% endif %}</h3>
<ul class="msg">{% for m in d.messages %}<li>{{ m }}</li>{% endfor %}</ul>
{% if d.others %}<p>Other models fitted for {{ d.endpoint }}:</p>
<ul class="msg">{% for o in d.others %}<li>{{ o.name }}: {% if o.ok %}<span class="ok">OK</span>
{% else %}<span class="bad">PROBLEMS</span>: {{ o.messages | join(" ") }}{% endif %}</li>
{% endfor %}</ul>{% endif %}
<details{% if not d.ok %} open{% endif %}><summary>Table, chains and rank plots</summary>
{{ d.table | safe }}
{{ d.chains | safe }}
<img src="{{ d.figure }}" alt="Rank plots, {{ d.endpoint }}">
</details>
{% endfor %}

<h2 id="ppc">Posterior predictive checks (censored like the data)</h2>
<p>For each posterior draw, every patient gets a new event time from the model (own
covariates, own centre), censored at the patient's own censoring time (a draw from the
censoring distribution beyond the event time for patients with an event). The observed
Kaplan-Meier curve should lie in the {{ ci_prob_pct }} band of the replicated curves.
p(t) = P(replicated S(t) &le; observed S(t)); values near 0 or 1 flag a misfit.</p>
{% for p in ppc %}
<h3>{{ p.endpoint }}</h3>
{{ p.table | safe }}
<img src="{{ p.figure }}" alt="Kaplan-Meier posterior predictive check, {{ p.endpoint }}">
{% endfor %}

<h2 id="comparison">Model comparison</h2>
{% if comparison %}
<p>PSIS-LOO over patients, with the centre effects integrated out (so patients alone in
their hospital are predicted exactly as left out, without Pareto k problems), and
leave-centre-out cross-validation (a new centre's effect integrated out, PSIS over centres)
for the question whether centres differ. ELPD: expected log predictive density, higher is
better; differences below 4, or below 2 standard errors, are not meaningful.</p>
{% for c in comparison %}
<h3>{{ c.endpoint }}</h3>
<ul class="msg">{% for m in c.messages %}<li>{{ m }}</li>{% endfor %}</ul>
<b>Leave-one-patient-out</b>{{ c.loo | safe }}
<b>Leave-one-centre-out</b>{{ c.lco | safe }}
<details><summary>Pareto k diagnostics and plot</summary>
{{ c.pareto | safe }}
<img src="{{ c.figure }}" alt="Model comparison, {{ c.endpoint }}">
</details>
{% endfor %}
{% else %}<p>Not run.</p>{% endif %}

<h2 id="centres">Centres</h2>
<p>Centre effects beyond case mix and expert status (log hazard ratio against a typical
centre): most hospitals treat one or two patients, so their estimates shrink towards 0.</p>
{% for c in centres %}
<details{% if loop.first %} open{% endif %}><summary>{{ c.endpoint }}</summary>
<img src="{{ c.caterpillar }}" alt="Caterpillar plot, {{ c.endpoint }}">
<img src="{{ c.funnel }}" alt="Funnel plot, {{ c.endpoint }}">
</details>
{% endfor %}

<h2 id="methods">Methods</h2>
<p class="note">{{ methods }}</p>
</body>
</html>
"""
