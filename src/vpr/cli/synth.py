"""`vpr synth`: generate the synthetic city benchmark, and/or its contact sheet."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpr.cli.flags import add_setting, deprecated


class _ImageSize(argparse.Action):
    """``--image_size H [W]`` like every other command, as (width, height) for the renderer.

    The old ``WIDTHxHEIGHT`` spelling still works, with a deprecation warning.
    """

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from vpr.synthetic.presets import parse_image_size

        if len(values) == 1 and "x" in values[0].lower():
            deprecated(f"--image_size {values[0]} (WIDTHxHEIGHT) is deprecated; use "
                       "--image_size HEIGHT WIDTH, as the other commands")
            text = values[0]
        elif len(values) in (1, 2) and all(value.isdigit() for value in values):
            height, width = int(values[0]), int(values[-1])
            text = f"{width}x{height}"
        else:
            parser.error(f"--image_size: expected H [W] in pixels, got {' '.join(values)}")
        try:
            setattr(namespace, self.dest, parse_image_size(text))
        except ValueError as error:
            parser.error(f"--image_size: {error}")


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
    parser.add_argument("--image_size", action=_ImageSize, nargs="+", default=None,
                        metavar="PX", help="image size as H [W] pixels, e.g. 168 224, or one "
                                           "number for a square (default: the preset's)")
    parser.add_argument("--preview", type=Path, default=None, metavar="PNG",
                        help="also write a labelled contact sheet of one place under many "
                             "conditions to this PNG file (works without --out)")
    parser.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                        help="render with N processes; the files do not depend on N "
                             "(default: 1)")
    add_setting(parser, "progress_bar")
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
    from vpr.synthetic import generate_city, write_preview
    from vpr.utils.disk import check_writable

    if args.out is None and args.preview is None:
        raise ValueError("vpr synth needs --out DIR (to generate) and/or --preview PNG")
    if args.out is not None:
        check_writable(args.out, "--out")  # a read-only or full disk fails before rendering
        manifest = generate_city(args.out, preset=args.preset, seed=args.seed,
                                 image_size=args.image_size,
                                 progress=getattr(args, "progress_bar", True),
                                 workers=args.workers)
        print(_summary(manifest))
        print(f"Synthetic city in {args.out}")
    if args.preview is not None:
        size = args.image_size or (256, 192)
        path = write_preview(args.preview, seed=args.seed, image_size=size)
        print(f"Contact sheet written to {path}")
    return 0
