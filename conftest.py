"""Settings for every test session (the core's tests and the plugins')."""

import torch

# One intra-op thread: the tests' tensors are small, and `pytest -n 2` on 2 cores (or any busy
# machine) makes two threads per process wait on each other, 5-100x slower for small ops.
torch.set_num_threads(1)
