"""Verifiable tasks: generators, prompts, verifiers, continuous metrics; the corpus builder."""
