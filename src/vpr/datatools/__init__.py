"""Tools for datasets on disk: converters of the standard benchmarks into the @-format."""
