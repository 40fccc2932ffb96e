"""The terminal view of a running campaign: a live panel on a terminal, a line per interval in
CI logs (``--no-tty`` or when standard output is not a terminal)."""

from __future__ import annotations

import math
import sys
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.observe.livestats import Interval
from harness.units import s_to_ms


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{s_to_ms(seconds):.1f}"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Shows one :class:`Interval` at a time."""

    def __init__(self, *, duration_s: float, tty: bool, out: IO[str] | None = None) -> None:
        self.duration_s = duration_s
        self.out = out or sys.stdout
        self.tty = tty
        self._live: Live | None = None
        if tty:
            self._live = Live(console=Console(file=self.out), refresh_per_second=2, transient=False)
            self._live.start()

    def show(self, elapsed_s: float, iv: Interval | None, note: str = "") -> None:
        if self._live is not None:
            self._live.update(self._table(elapsed_s, iv, note))
            return
        if iv is None:
            print(f"[{_clock(elapsed_s)}] waiting for the load generator {note}", file=self.out)
        else:
            t = iv.total
            cpu = max(t.worker_cpu.values(), default=math.nan)
            print(
                f"[{_clock(elapsed_s)}/{_clock(self.duration_s)}] users={t.users:.0f} "
                f"workers={t.workers:.0f} rps={iv.rps:.0f} fail/s={iv.failures_per_s:.1f} "
                f"p50={_ms(iv.p50_s)}ms p95={_ms(iv.p95_s)}ms p99={_ms(iv.p99_s)}ms "
                + (
                    ""
                    if math.isnan(iv.p99_co_s)
                    else f"p50+co={_ms(iv.p50_co_s)}ms p99+co={_ms(iv.p99_co_s)}ms "
                )
                + f"requests={t.requests:.0f} failures={t.failures:.0f}"
                + (f" dropped={t.dropped:.0f}" if t.dropped else "")
                + ("" if math.isnan(cpu) else f" max_worker_cpu={cpu:.0f}%")
                + (f" {note}" if note else ""),
                file=self.out,
                flush=True,
            )

    def _table(self, elapsed_s: float, iv: Interval | None, note: str) -> Any:
        table = Table(
            title=f"portal-load  {_clock(elapsed_s)} / {_clock(self.duration_s)}"
            f"  remaining {_clock(self.duration_s - elapsed_s)}  {note}"
        )
        corrected = iv is not None and not math.isnan(iv.p99_co_s)
        for col in (
            "users",
            "workers",
            "req/s",
            "fail/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            *(("p50 +CO", "p99 +CO") if corrected else ()),
            "requests",
            "failures",
            "dropped",
            "worker CPU",
        ):
            table.add_column(col, justify="right")
        if iv is not None:
            t = iv.total
            cpu = " ".join(f"{v:.0f}%" for _, v in sorted(t.worker_cpu.items())) or "-"
            table.add_row(
                f"{t.users:.0f}",
                f"{t.workers:.0f}",
                f"{iv.rps:.0f}",
                f"{iv.failures_per_s:.1f}",
                _ms(iv.p50_s),
                _ms(iv.p95_s),
                _ms(iv.p99_s),
                *((_ms(iv.p50_co_s), _ms(iv.p99_co_s)) if corrected else ()),
                f"{t.requests:.0f}",
                f"{t.failures:.0f}",
                f"{t.dropped:.0f}",
                cpu,
            )
        return table

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
