"""emergelab: build a language model from scratch and measure where its abilities come from."""

__version__ = "0.1.0"
