"""Tools for datasets on disk: check, stats, import, download (`vpr data`, `vpr download`), and
converters of the standard benchmarks into the @-format (`convert/`)."""
