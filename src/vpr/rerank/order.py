"""How the final order combines verified inliers with the global similarity."""

from __future__ import annotations

import numpy as np

from vpr.rerank.names import RULES


def rerank_order(similarities: np.ndarray, inliers: np.ndarray, rule: str = "blend",
                 inlier_scale: float = 50.0) -> np.ndarray:
    """The new order of K candidates (indices into them, best first).

    ``blend`` is the default: on the synthetic test sets it gave the higher R@1 after
    re-ranking for 5 of the 6 method x set pairs (docs/BENCHMARKS.md, re-ranking): a pure
    inlier count lets a candidate with a few chance inliers jump a far more similar one.

    Rules:
        ``inliers``: most inliers first; equal counts keep the global order (similarity).
        ``blend``: by ``similarity + inliers / inlier_scale``: a candidate needs
            ``inlier_scale`` more inliers to overtake one 1.0 more similar.

    Args:
        similarities: (K,) global similarities, in the global order (best first).
        inliers: (K,) verified inlier counts.
        rule: see above.
        inlier_scale: the ``blend`` rule's exchange rate.
    """
    similarities = np.asarray(similarities, np.float64).reshape(-1)
    inliers = np.asarray(inliers, np.float64).reshape(-1)
    if len(similarities) != len(inliers):
        raise ValueError(f"{len(similarities)} similarities but {len(inliers)} inlier counts")
    if rule == "inliers":
        # lexsort's last key is the primary one; the rank breaks remaining ties stably.
        return np.lexsort((np.arange(len(inliers)), -similarities, -inliers))
    if rule == "blend":
        if inlier_scale <= 0:
            raise ValueError(f"inlier_scale must be positive, got {inlier_scale}")
        return np.argsort(-(similarities + inliers / inlier_scale), kind="stable")
    raise ValueError(f"unknown re-ranking rule {rule!r}; valid: {', '.join(RULES)}")
