"""Tools for datasets on disk: check, stats, import, download (`vpr data`, `vpr download`)."""
