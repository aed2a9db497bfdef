"""Measurements only a pretrained language model can show, run on a real one (SmolLM2-135M-Instruct).

One module per idea: `disambiguation` (word sense by context, the attention claim), `syllogisms` (form vs
content), `icl` (0-shot vs k-shot), `hallucination` (confident wrong answers vs abstentions), `lens` (the
logit lens on real sentences); `scoring` holds the shared option log-probabilities and intervals and
`stage` runs them all for the demo. Inference only; the items ship in `data/`.
"""
