"""TinyTorch: a deep-learning framework built from scratch in NumPy, one lesson at a time.

The framework lives in `tinytorch.core`, whose files are exported from the lessons in `modules/`
(`make complete MODULE=02_tensor`). Import what you need from there, e.g.
`from tinytorch.core.tensor import Tensor`.
"""

__version__ = "0.1.0"
