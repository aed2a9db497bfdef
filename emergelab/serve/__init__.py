"""OpenAI-compatible HTTP server and the web page to chat with and inspect a model."""
