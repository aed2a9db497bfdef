"""The science: sweeps, scaling-law fits, emergence and mirage analysis, experiments.

- `scaling`     L = E + A·X^(−α) and Chinchilla's L(N, D) fits, bootstrap CIs, compute-optimal N, D
                (`emergelab scaling-fit`)
- `emergence`   emergent-or-smooth verdicts per ability and the mirage verdict (`emergelab emergence`)
- `sweep`       sizes × budgets × seeds → sweep.csv / emergence.csv, resumable, local or Ray (`emergelab sweep`)
- experiments   (`emergelab experiment NAME`, registry in `experiments`): `icl_phase` (induction heads),
                `grokking`, `classics` (XOR, FGSM), `cot_bridge` (CoT as an information bridge)
"""
