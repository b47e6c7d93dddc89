"""Progress output that suits where it goes: bars on a terminal or in Jupyter, plain lines in a log file.

A progress bar redraws itself with carriage returns; written to a file (`rawtag train ... > log`) every
redraw stays in it. So bars are drawn only when stderr is a terminal or inside a Jupyter kernel (where
tqdm.auto draws a widget); elsewhere `tqdm` is disabled (training prints its own line per epoch) and
`counter` prints a plain line every 10 % of the work. Chapter 01's `prepare` and `write_synthetic`
are the first to report their progress this way.

Chapter: 01_data
"""
from __future__ import annotations

import sys


def interactive() -> bool:
    """True on a terminal or in a Jupyter kernel: where a redrawn bar is seen, not logged.

    Chapter: 01_data
    """
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython

            if get_ipython() is not None and hasattr(get_ipython(), "kernel"):
                return True
        except Exception:  # pragma: no cover - IPython half-installed
            pass
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def tqdm(*args, **kwargs):
    """tqdm.auto.tqdm, disabled where a bar would be logged rather than seen (see `interactive`).

    Chapter: 01_data
    """
    from tqdm.auto import tqdm as bar

    if not interactive():
        kwargs["disable"] = True
    return bar(*args, **kwargs)


class _Lines:
    """A stand-in for a tqdm bar that prints `desc: done/total clips (pct %)` at every 10 %."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, file=None):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.file = file or sys.stdout
        self._next = self._step(initial)
        print(f"{desc}: {initial:,} of {total:,} {unit}s done", file=self.file, flush=True)

    def _step(self, n: int) -> int:
        tenth = max(1, self.total // 10)
        return (n // tenth + 1) * tenth

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.n >= self._next or self.n == self.total:
            pct = 100 * self.n / max(self.total, 1)
            print(f"{self.desc}: {self.n:,} of {self.total:,} {self.unit}s ({pct:.0f} %)", file=self.file, flush=True)
            self._next = self._step(self.n)

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def counter(total: int, desc: str, unit: str = "clip", initial: int = 0, enabled: bool = True):
    """A progress counter for long work: a bar where it is seen, plain lines in a log, nothing if disabled.

    Chapter: 01_data
    """
    if enabled and not interactive():
        return _Lines(total, desc, unit, initial)
    from tqdm.auto import tqdm as bar

    return bar(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled)
