"""Settings for every test session (the core's tests and the plugins')."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` on 2 cores: one thread per worker. Two workers with two threads each
    # oversubscribe the cores, which makes small tensor ops 10-100x slower.
    torch.set_num_threads(1)
