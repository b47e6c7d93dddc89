"""What both benchmarks share: the machine's description, one measurement per subprocess (so that each
one's peak memory is its own), a synthetic set to measure on, and the table printer."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} CPU cores ({cpu}, vector units: {torch.backends.cpu.get_cpu_capability()}), {gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def peak_rss_mib() -> float:
    """Peak resident memory of this process and of its finished children, in MiB (Linux units: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def anon_mib() -> float | None:
    """This process's resident anonymous memory now (heap, tensors), in MiB; file-backed pages such as a
    memory-mapped prepared set, which the kernel can drop at will, are not counted. Linux only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure_in_subprocess(script: str, args: list[str]) -> dict:
    """Run `script --one ...args` in a fresh interpreter; it prints one JSON line with its figures."""
    done = subprocess.run([sys.executable, script, "--one", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(figures: dict) -> None:
    """The last line a `--one` run prints: its figures as JSON."""
    anon = anon_mib()
    print(json.dumps({**figures, "peak_rss_mib": round(peak_rss_mib(), 1),
                      "anon_mib": round(anon, 1) if anon is not None else None}))


def synthetic_source(root: Path, clips: int) -> Path:
    """A synthetic set in MTAT's format (written once, reused by later runs of the benchmark)."""
    from rawtag.data.synth import write_synthetic

    return write_synthetic(root / f"synthetic-{clips}", clips, seed=0, progress=False)


def table(header: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in header]] + [[f"{c:,.1f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
