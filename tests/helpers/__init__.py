"""Helpers shared by test files: fabricated files, tiny models, CLI and browser drivers.

Import them as ``from helpers.<module> import <name>`` (``tests/`` is on ``sys.path``: the
``pythonpath`` setting of ``[tool.pytest.ini_options]``). Fixtures stay in ``tests/conftest.py``;
a helper used by one test file stays in that file.
"""
