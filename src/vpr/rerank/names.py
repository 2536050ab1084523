"""The names the ``--rerank*`` options accept, in a module that imports nothing heavy
(OpenCV and torch load only when re-ranking runs, so `vpr --help` stays fast)."""

# The final order of the candidates (`vpr.rerank.order`).
RULES: tuple[str, ...] = ("inliers", "blend")
# The geometric models the verifier fits (`vpr.rerank.verify`).
GEOMETRIES: tuple[str, ...] = ("homography", "fundamental")
# The robust estimators of `vpr.rerank.verify.ESTIMATORS`.
ESTIMATOR_NAMES: tuple[str, ...] = ("magsac", "usac", "ransac")
