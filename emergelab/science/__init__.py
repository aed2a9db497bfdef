"""The science: sweeps, scaling-law fits, emergence and mirage analysis, experiments."""
