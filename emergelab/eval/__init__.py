"""Evaluation: task harness, perplexity, test-time scaling, probes."""
