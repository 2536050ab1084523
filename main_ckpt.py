"""Seed-compatible entry point: `python main_ckpt.py --ckpt_path last.ckpt ...` resumes training.

Same as `vpr train --resume CKPT`; see README.md.
"""

import sys

from vpr.cli.seed_compat import main_ckpt

if __name__ == "__main__":
    sys.exit(main_ckpt())
