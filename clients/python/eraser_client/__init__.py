"""A Python client for `eraser serve`: inference over the Open Inference
Protocol (numpy in, numpy out, binary tensors by default) and deletions
(by sample or owner, their status, waiting until applied, drain), with
bearer tokens and TLS. Standard library and numpy only.
"""

from .client import Client, Deletion, EraserError, InferResult

__all__ = ["Client", "Deletion", "EraserError", "InferResult"]
__version__ = "0.1.0"
