"""``python -m course_tools.book site|slides``: the course site and the lecture slides.

    python -m course_tools.book site [--out build/site] [--no-execute]
    python -m course_tools.book slides [--out build/slides] [NN ...]

Both read the executed notebooks in ``build/executed/<mode>/`` (saved by the
notebook tests); ``<mode>`` follows ``COURSE_FAST`` (default: fast).
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_tools.book", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    site = sub.add_parser("site", help="build the static site (Sphinx + MyST-NB)")
    site.add_argument("--out", default=None, help="output folder (default build/site)")
    site.add_argument("--no-execute", action="store_true",
                      help="never run notebooks: pages only for those with an executed copy")
    slides = sub.add_parser("slides", help="build the reveal.js decks")
    slides.add_argument("--out", default=None, help="output folder (default build/slides)")
    slides.add_argument("names", nargs="*", help="notebook numbers or names (default: all)")
    args = parser.parse_args(argv)
    t0 = time.time()
    if args.cmd == "site":
        from course_tools.book.site import build_site

        index = build_site(out=args.out, execute=not args.no_execute)
        print(f"[book] site built in {time.time() - t0:.1f} s: {index}")
    else:
        from course_tools.book.slides import build_slides

        written = build_slides(out=args.out, names=args.names or None)
        print(f"[slides] {len(written)} decks in {time.time() - t0:.1f} s: {written[0].parent if written else '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
