"""One small module per command; each exposes ``run(cfg)``, registered in :data:`diffusionkit.commands.COMMANDS`."""
