"""``python -m benchmarks [--quick] [--output PATH] [SECTION ...]``: run the sections, print the
markdown and merge it into benchmarks/results.md.

A full run writes the results file; naming sections reruns just those and replaces them there,
keeping the others. A ``--quick`` smoke run only prints, unless ``--output`` names a file.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from benchmarks import machine, results

#: The sections, in the order they appear: module names under benchmarks/.
SECTIONS = [
    "core",
    "float32",
    "deterministic",
    "memory",
    "seeds",
    "metrics",
    "tracking",
    "sweep",
    "batched",
    "grid10k",
    "report_scale",
]

RESULTS = Path(__file__).with_name("results.md")


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line: section names (default all), --quick, --output."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"of {SECTIONS}")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--output", type=Path, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections in SECTIONS order; print and (usually) save the results."""
    args = parse(sys.argv[1:] if argv is None else argv)
    chosen = [name for name in SECTIONS if not args.sections or name in args.sections]
    header = machine.describe(args.quick)
    print(header, flush=True)
    measured = {}
    for name in chosen:
        module = importlib.import_module(f"benchmarks.{name}")
        before = machine.load()
        body = module.section(args.quick)
        measured[name] = results.stamp(body, machine.git_commit(), before, machine.load())
        print(measured[name], flush=True)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        existing = output.read_text() if output.exists() else ""
        output.write_text(results.merge(existing, header, measured, SECTIONS))
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
