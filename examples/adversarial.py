"""An adversarial example (FGSM, Goodfellow et al. 2015) on a small classifier whose data lie on a known
2-D plane inside R^D, with the perturbation split into its on- and off-manifold parts (essay 003).
Run: python examples/adversarial.py [OUT_DIR] [--tiny]"""

import json
import sys

from emergelab.science.experiments import run_experiment

args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = args[0] if args else "runs/examples/adversarial"
verdict = run_experiment("fgsm", out, profile="tiny" if "--tiny" in sys.argv else "quick")
a = verdict["attack"]
print(f"clean accuracy {verdict['clean_accuracy']:.3f}; FGSM with eps={a['eps_linf']} per coordinate "
      f"(L2 {a['l2']:.3f}, {a['l2_relative_to_input']:.0%} of the input norm) -> {a['acc_fgsm']:.3f}; "
      f"random noise of the same size -> {a['acc_random_sign']:.3f}")
print(f"off-manifold part alone -> {a['acc_fgsm_normal_part_only']:.3f}; "
      f"on-manifold part alone -> {a['acc_fgsm_manifold_part_only']:.3f}")
print(json.dumps({k: v for k, v in verdict.items() if k != "curve"}, indent=1))
