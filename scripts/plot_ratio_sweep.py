"""Snakemake job: muDeltaREL and perplexity against the synthetic ratio, from a table's CSV."""

from cdsynth.jobs import run_job
from cdsynth.report.figures import plot_ratio_sweep
from cdsynth.report.tables import read_table

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: plot_ratio_sweep(
        [
            (smk.params.ratios[row["experiment"]], float(row["muDeltaREL"]), float(row["perplexity_mean"]))
            for row in read_table(smk.input[0])
        ],
        [smk.output.png, smk.output.pdf],
    ),
)
