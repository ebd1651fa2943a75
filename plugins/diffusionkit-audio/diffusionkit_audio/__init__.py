"""diffusionkit audio plugin: spectrogram model spaces for one-shots and phrases."""
