"""Type aliases and the shape-letter glossary used in every docstring.

| letter | meaning |
|---|---|
| B | batch |
| K | classes (K-class softmax everywhere; binary is K = 2) |
| M | members: ensemble members, MC samples, TTA views, the heads of a multi-head network; always its own leading axis |
| A | annotators |
| *S | spatial: (H, W) or (D, H, W) |
| N | cases in an evaluation set |

Canonical forms: image ``(B, C, *S)`` float32; logits and probabilities ``(B, K, *S)``; member outputs
``(M, B, K, *S)``, never folded into B (a multi-head network's ``forward(x, heads=True)`` gives its heads this way,
deepest first, the full-resolution head last); label map ``(B, *S)`` int64 in [0, K); uncertainty map ``(B, *S)``,
higher = less sure. ``confidence`` (higher = surer) and ``uncertainty``
(higher = less sure) are never mixed up in a name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = Sequence[float] | np.ndarray | torch.Tensor
"""A 1-D sequence of numbers: a list, a numpy array or a torch tensor."""

ImageArray = np.ndarray | torch.Tensor
"""One image's array of any spatial shape ``(*S)``."""

__all__ = ["ArrayLike", "ImageArray"]
