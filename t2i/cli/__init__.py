"""`t2i <command>`: thin argument parsing over the library, one add_/cmd_ pair per command.

    args         argument groups shared by commands (a run, a preset, sampling)
    training     train, prepare, data show, vae train | figures, export
    generation   sample, figures, demo
    evaluation   eval report | sweep | table | train-classifier, bench
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading

from ..data import DataError
from ..training.loop import Diverged, Interrupted
from .args import interrupted_message
from .evaluation import EVAL_COMMANDS, add_bench, add_eval
from .generation import add_demo, add_figures, add_sample
from .training import add_data, add_export, add_prepare, add_train, add_vae

# Failures a user can fix: one `t2i <command>: error: ...` line and exit 2. Anything else is a
# bug, and keeps its traceback.
EXPECTED = (ValueError, OSError, ImportError, DataError, Diverged)

COMMANDS = (add_train, add_prepare, add_data, add_vae, add_export, add_sample, add_figures, add_demo, add_bench,
            add_eval)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t2i", description="Train and run small text-to-image transformers.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an error (also T2I_DEBUG=1) instead of one line")
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def with_eval_default(argv: list[str]) -> list[str]:
    """`t2i eval` with no subcommand is `t2i eval report`, the common case (`t2i eval
    --checkpoint DIR`): argparse has no default subcommand, so one is put in."""
    commands = [i for i, a in enumerate(argv) if not a.startswith("-")]
    if not commands or argv[commands[0]] != "eval":
        return argv
    i = commands[0] + 1
    if i < len(argv) and argv[i] in (*EVAL_COMMANDS, "-h", "--help"):
        return argv
    return argv[:i] + ["report"] + argv[i:]


class Terminated(BaseException):
    """SIGTERM outside a training loop (which saves first): unwinds the command so that what it
    was writing (a cache, samples, a report) is removed, not left half-written."""


@contextlib.contextmanager
def terminate_by_unwinding():
    """While a command runs, SIGTERM raises `Terminated` (Python's default would end the process
    on the spot, leaving temporary folders behind); a training loop installs its own handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = make_parser()
    # Overrides may come anywhere among the options (argparse alone takes one positional run).
    args, extra = parser.parse_known_args(with_eval_default(argv))
    if extra:
        if not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a for a in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides += extra
    args.argv = argv
    quiet = args.quiet or int(os.environ.get("RANK", "0")) != 0  # under torchrun, rank 0 talks
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with terminate_by_unwinding():
            return args.fn(args)
    except Terminated:
        print(f"t2i {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except Interrupted as e:  # a training command stopped by a signal, its checkpoint written
        if e.checkpoint is not None:  # rank 0, which wrote it, says where
            print(interrupted_message(args.command, args.argv, e), file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:  # a second Ctrl-C during training, or one anywhere else
        print(f"t2i {args.command}: aborted", file=sys.stderr)
        return 130
    except EXPECTED as e:  # bad config, bad data, missing or damaged files, OS errors, divergence
        if args.debug or os.environ.get("T2I_DEBUG") == "1":
            raise
        print(f"t2i {args.command}: error: {e}", file=sys.stderr)
        return 2
