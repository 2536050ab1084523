"""`vpr synth`: generate the synthetic city benchmark, and/or its contact sheet."""

from __future__ import annotations

import argparse
from pathlib import Path


def _image_size(text: str) -> tuple[int, int]:
    from vpr.data.synthetic.presets import parse_image_size

    try:
        return parse_image_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_parser(subparsers) -> None:
    """Adds the `synth` subcommand."""
    parser = subparsers.add_parser(
        "synth",
        help="generate the synthetic city: an offline benchmark in the GSV-XS/SF-XS/Tokyo-XS "
             "layout",
        description="Render street-level views of generated cities and write them like the "
                    "real datasets: OUT/gsv_xs/train/<City>/, OUT/sf_xs/{val,test}/"
                    "{database,queries}/, OUT/tokyo_xs/test/{database,queries}/ and "
                    "OUT/manifest.json. The same seed gives the same files; if OUT already "
                    "holds the same city nothing is redone. See docs/DATA.md.",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (new, empty, or holding this same city); "
                             "required unless only --preview is asked for")
    parser.add_argument("--preset", default="demo", choices=["tiny", "demo", "small", "medium"],
                        help="how much to generate: tiny (unit tests, ~200 images), demo "
                             "(~3,100 images at 96x72), small (~8,000 at 224x168), medium "
                             "(~28,000 at 320x240) (default: demo)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed: same seed, same files (default: 0)")
    parser.add_argument("--image_size", type=_image_size, default=None, metavar="WxH",
                        help="image size as WIDTHxHEIGHT (e.g. 224x168) or one number for a "
                             "square (default: the preset's)")
    parser.add_argument("--preview", type=Path, default=None, metavar="PNG",
                        help="also write a labelled contact sheet of one place under many "
                             "conditions to this PNG file (works without --out)")
    parser.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                        help="render with N processes; the files do not depend on N "
                             "(default: 1)")
    parser.add_argument("--no_progress_bar", action="store_true", help="disable the progress bar")
    parser.set_defaults(func=run)


def _summary(manifest: dict) -> str:
    counts = manifest["counts"]
    train = counts["gsv_xs/train"]
    lines = [
        f"preset {manifest['preset']}, seed {manifest['seed']}, "
        f"{manifest['image_size'][0]}x{manifest['image_size'][1]} px, "
        f"{counts['total_images']} images",
        f"  gsv_xs/train   {train['images']} images, {train['places']} places, "
        f"{train['cities']} cities",
    ]
    for name in ("sf_xs/val", "sf_xs/test", "tokyo_xs/test"):
        lines.append(f"  {name:<14} {counts[name]['database']} database, "
                     f"{counts[name]['queries']} queries")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Generates the city and/or the preview; returns the exit code."""
    from vpr.data.synthetic import generate_city, write_preview
    from vpr.utils.disk import check_writable

    if args.out is None and args.preview is None:
        raise ValueError("vpr synth needs --out DIR (to generate) and/or --preview PNG")
    if args.out is not None:
        check_writable(args.out, "--out")  # a read-only or full disk fails before rendering
        manifest = generate_city(args.out, preset=args.preset, seed=args.seed,
                                 image_size=args.image_size,
                                 progress=not args.no_progress_bar, workers=args.workers)
        print(_summary(manifest))
        print(f"Synthetic city in {args.out}")
    if args.preview is not None:
        size = args.image_size or (256, 192)
        path = write_preview(args.preview, seed=args.seed, image_size=size)
        print(f"Contact sheet written to {path}")
    return 0
