"""Does evaluation in reduced precision change recall? fp32 against bf16/fp16 on test sets.

Runs `vpr test` on each test set with ``--precision 32-true`` and with the reduced
precision (default: what ``--precision auto`` picks on this machine), and prints R@N of
both and their difference, with the extraction time of each.

    python bench/eval_precision.py CKPT data/synthetic/sf_xs/test data/synthetic/tokyo_xs/test
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _test(ckpt: Path, test_set: Path, precision: str, extra: list[str]) -> tuple[dict, float]:
    from vpr.cli import main as vpr_main

    start = time.perf_counter()
    code = vpr_main(["test", "--ckpt_path", str(ckpt), "--test_path", str(test_set),
                     "--precision", precision, "--no_progress_bar", *extra])
    if code != 0:
        raise SystemExit(f"vpr test failed on {test_set} with --precision {precision}")
    elapsed = time.perf_counter() - start
    run_dir = ckpt.resolve().parent.parent
    newest = max(run_dir.glob("results/test_*/results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(newest.read_text())["recalls"], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ckpt", type=Path)
    parser.add_argument("test_sets", type=Path, nargs="+")
    parser.add_argument("--reduced", default=None,
                        help="reduced precision to compare (default: what auto picks here)")
    parser.add_argument("--num_workers", type=int, default=2)
    args = parser.parse_args()

    from vpr.hardware import default_precision

    reduced = args.reduced or default_precision("auto", "fast")
    if reduced == "32-true":
        raise SystemExit("this machine has no native bf16/fp16: pass --reduced bf16-mixed")
    extra = ["--num_workers", str(args.num_workers)]
    lines = ["| test set | precision | R@1 | R@5 | R@10 | seconds |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    worst = 0.0
    for test_set in args.test_sets:
        full, full_s = _test(args.ckpt, test_set, "32-true", extra)
        low, low_s = _test(args.ckpt, test_set, reduced, extra)
        name = "/".join(test_set.resolve().parts[-2:])
        for label, recalls, seconds in (("32-true", full, full_s), (reduced, low, low_s)):
            lines.append(f"| {name} | {label} | {recalls['R@1']:.1f} | {recalls['R@5']:.1f} | "
                         f"{recalls['R@10']:.1f} | {seconds:.0f} |")
        worst = max(worst, *(abs(full[k] - low[k]) for k in ("R@1", "R@5", "R@10")))
    print("\n".join(lines))
    print(f"\nlargest |difference| in R@1/5/10: {worst:.2f} points")


if __name__ == "__main__":
    main()
