"""XOR needs a hidden layer (essay 003): a perceptron fails, the essay's hand-set 2-layer network and a
trained one succeed. Run: python examples/xor.py [OUT_DIR]"""

import json
import sys

from emergelab.science.classics import XOR_X, essay_xor_network
from emergelab.science.experiments import run_experiment

out = sys.argv[1] if len(sys.argv) > 1 else "runs/examples/xor"
for x, (y, h) in zip(XOR_X, zip(*essay_xor_network(XOR_X))):
    print(f"input {x.astype(int).tolist()} -> hidden {h.astype(int).tolist()} -> output {int(y)}")
verdict = run_experiment("xor", out)
print(json.dumps({k: v for k, v in verdict.items() if k != "essay_hidden_features"}, indent=1))
sys.exit(0 if verdict["claim_holds"] else 1)
