"""`python -m vpr` is the `vpr` command."""

import sys

from vpr.cli import main

sys.exit(main())
