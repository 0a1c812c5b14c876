"""Make the figures of docs/diagnostics.md and docs/report.md (run from the repository root).

Writes the NETSARC-size analysis report of a simulated registry (4 chains x 1000 draws per
fit; about 10-20 minutes on 2 cores) to ``docs/_build/netsarc_report.html`` and copies the
figures the docs show to ``docs/_static/checks_*.png``.

    python docs/scripts/make_check_figures.py
"""

import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import bayes_sarcoma as bs
from bayes_sarcoma.report.analysis import analysis_report

STATIC = Path("docs/_static")
SHOWN = {
    "ppc_km_LRFS": "checks_km_ppc_lrfs.png",
    "rank_OS": "checks_rank_os.png",
    "loo_RFS": "checks_loo_rfs.png",
    "hazard_ratios_forest": "checks_hazard_ratios.png",
}


def main() -> None:
    df = bs.simulate_registry(random_seed=2026)
    with tempfile.TemporaryDirectory() as tmp:
        report = analysis_report(
            df, Path("docs/_build/netsarc_report.html"), random_seed=1, figures_dir=tmp
        )
        for name, target in SHOWN.items():
            shutil.copy(Path(tmp) / f"{name}.png", STATIC / target)
    print(report.tables["headline"].to_string())


if __name__ == "__main__":
    main()
