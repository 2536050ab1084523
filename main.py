"""Seed-compatible entry point: `python main.py --train_path ... --val_path ... --test_path ...`.

Same as `vpr train` (or `vpr test` when --ckpt_path is given); see README.md.
"""

import sys

from vpr.cli.seed_compat import main

if __name__ == "__main__":
    sys.exit(main())
