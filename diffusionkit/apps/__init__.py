"""One small module per command; each exposes ``run(cfg)`` and the CLI dispatches to it."""
