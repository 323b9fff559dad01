"""Shared pieces of the benchmarks: a result row, machine facts, a temporary desk state."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    value: str  # what was measured, with its unit
    bound: str = ""  # the bound computed in the same run, when the figure is a ratio to one
    ratio: str = ""
    note: str = ""


def machine() -> str:
    cpus = os.cpu_count() or 0
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, {cpus} cores" \
           f"{memory}"


def table(figures: list[Figure]) -> str:
    rows = ["| figure | measured | bound (same run) | ratio | note |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {f.name} | {f.value} | {f.bound} | {f.ratio} | {f.note} |" for f in figures]
    return "\n".join(rows)
