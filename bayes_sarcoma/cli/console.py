"""How the ``bayes-sarcoma`` command line talks to its user.

Results go to stdout, progress notes to stderr (:class:`Console`). A problem with the
user's input found by the command line itself is a :class:`CommandError`. The exit codes
(see :mod:`bayes_sarcoma.cli.main`) and the probability of the printed intervals are shared by
every command, :mod:`bayes_sarcoma.cli.demo` included.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from bayes_sarcoma._defaults import CI_PROB as CI_PROB

PROG = "bayes-sarcoma"
EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: Probability of every interval the command line prints (the clinical convention; the
#: HTML report uses the same).


class CommandError(ValueError):
    """A user error detected by the command line itself (bad file, bad option value)."""


class Console:
    """Where the command writes: results to stdout, progress and warnings to stderr."""

    def __init__(self, quiet: bool = False, out: TextIO | None = None, err: TextIO | None = None):
        self.quiet = quiet
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    @property
    def progressbar(self) -> bool:
        """Show the sampler's progress bar (not quiet, and a terminal to draw it on)."""
        return not self.quiet and self.err.isatty()

    def print(self, *lines: str) -> None:
        """Print results (stdout)."""
        for line in lines:
            print(line, file=self.out, flush=True)

    def note(self, message: str) -> None:
        """Print a progress note (stderr) unless quiet."""
        if not self.quiet:
            print(message, file=self.err, flush=True)

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Report a long step: ``label ...`` and then its duration."""
        self.note(f"{label} ...")
        start, cpu = time.perf_counter(), time.process_time()
        yield
        # CPU time (all threads) beside wall time: on a busy machine it is the steadier number.
        self.note(
            f"  done in {time.perf_counter() - start:.1f} s (CPU {time.process_time() - cpu:.1f} s)"
        )
