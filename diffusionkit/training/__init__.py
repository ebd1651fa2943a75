"""The Lightning side: modules, data module, callbacks and the model builder."""
