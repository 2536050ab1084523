"""Standard benchmarks: pinned protocols (manifests) and the `vpr benchmark` workflow."""
