"""Progress output and the error type every command-line tool reports the same way."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class Failure(Exception):
    """An expected failure: one line saying what went wrong and how to fix it."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def info(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@contextmanager
def step(message: str) -> Iterator[None]:
    """Print what is starting, then how long it took (or that it failed)."""
    print(f"==> {message} ...", flush=True)
    started = time.monotonic()
    try:
        yield
    except BaseException:
        print(f"    failed after {time.monotonic() - started:.1f}s", flush=True)
        raise
    print(f"    done in {time.monotonic() - started:.1f}s", flush=True)


def run_main(main: Callable[[], int]) -> None:
    """Run a CLI main() and turn a Failure into one line on stderr and its exit code."""
    try:
        code = main()
    except Failure as failure:
        print(f"error: {failure}", file=sys.stderr, flush=True)
        sys.exit(failure.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code)


def cli_parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """The argument parser every script uses: its help text printed as written."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_inventory_option(parser: argparse.ArgumentParser, default: Path) -> None:
    """-i/--inventory: the inventory folder (the lab's unless told otherwise)."""
    parser.add_argument(
        "-i", "--inventory", type=Path, default=default,
        help="inventory folder (default: inventories/lab, the lab's)",
    )  # fmt: skip
