"""diffusionkit audio plugin: spectrogram model spaces for one-shots and phrases."""

#: the diffusionkit plugin contract this plugin is written for (diffusionkit.modality.CONTRACT_VERSION).
DIFFUSIONKIT_CONTRACT = 1
