"""Daily totals, HIS against the platform, for the console's chart (an SVG drawn on the server).

A day's figures come from its latest single-day run that reached a verdict: the HIS total is what 3201 was
sent (the net medfee_sumamt of the hospital ledger, every key of the initial statement), the platform total is
that plus what 3202 showed the platform holds differently (platform amounts of platform-only and mismatched
entries in, HIS amounts of HIS-only and mismatched entries out). On a balanced day the two are equal.
"""

from __future__ import annotations

import datetime as _dt
import html
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, select

from yibao.core import clock
from yibao.core.db.schema import recon_differences, recon_runs, recon_statements
from yibao.core.money import ZERO

__all__ = ["DayTotals", "daily_totals", "render_svg"]

_VERDICTS = ("balanced", "differences_found", "repaired_and_balanced")


@dataclass(frozen=True)
class DayTotals:
    day: _dt.date
    his: Decimal
    platform: Decimal
    run_id: str
    state: str


def daily_totals(conn: Connection, *, days: int = 14, today: _dt.date | None = None) -> list[DayTotals]:
    today = today or clock.today()
    since = today - _dt.timedelta(days=days)
    runs = conn.execute(select(recon_runs.c.run_id, recon_runs.c.date_from, recon_runs.c.state)
                        .where(recon_runs.c.date_from == recon_runs.c.date_to, recon_runs.c.date_from >= since,
                               recon_runs.c.state.in_(_VERDICTS))
                        .order_by(recon_runs.c.created_at, recon_runs.c.run_id)).all()
    latest = {row.date_from: row for row in runs}  # the last run of each day wins
    out: list[DayTotals] = []
    for day in sorted(latest):
        run = latest[day]
        his = sum((r.medfee_sumamt for r in conn.execute(
            select(recon_statements.c.medfee_sumamt).where(recon_statements.c.run_id == run.run_id,
                                                           recon_statements.c.phase == "initial"))), ZERO)
        platform = his
        for d in conn.execute(select(recon_differences.c.his_medfee_sumamt, recon_differences.c.plat_medfee_sumamt)
                              .where(recon_differences.c.run_id == run.run_id)):
            platform += (d.plat_medfee_sumamt or ZERO) - (d.his_medfee_sumamt or ZERO)
        out.append(DayTotals(day, his, platform, run.run_id, run.state))
    return out


def _nice_max(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(1)
    exponent = len(str(int(value))) - 1
    step = Decimal(10) ** exponent
    for factor in (1, 2, 5, 10):
        if value <= step * factor:
            return step * factor
    return step * 10


def render_svg(totals: list[DayTotals], *, width: int = 760, height: int = 260) -> str:
    """An accessible SVG bar chart (presentation attributes only, so a strict CSP needs no inline styles)."""
    if not totals:
        return ('<svg xmlns="http://www.w3.org/2000/svg" role="img" id="daily-chart" width="%d" height="60" '
                'aria-label="no reconciled day yet"><text x="10" y="35" fill="#555">No reconciled day in the '
                'last weeks yet.</text></svg>' % width)
    left, right, top, bottom = 90, 20, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(max(abs(t.his), abs(t.platform)) for t in totals))
    slot = plot_w / len(totals)
    bar = max(4.0, min(28.0, slot / 3))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" id="daily-chart" width="{width}" '
             f'height="{height}" aria-labelledby="chart-title">',
             '<title id="chart-title">Daily totals: HIS against the platform (medfee_sumamt, yuan)</title>']
    for i in range(5):  # grid and axis labels
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#444">'
                     f'{value:,.2f}</text>')
    for i, t in enumerate(totals):
        x0 = left + slot * i + (slot - 2 * bar - 2) / 2
        for j, (label, value, colour) in enumerate((("HIS", t.his, "#2f6db5"), ("platform", t.platform, "#e08a1e"))):
            h = float(plot_h * max(value, ZERO) / top_value)
            x = x0 + j * (bar + 2)
            parts.append(f'<rect class="bar-{label}" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{t.day.isoformat()} {label}: '
                         f'{value:.2f}</title></rect>')
        mark = "" if t.his == t.platform else " ≠"
        parts.append(f'<text x="{left + slot * i + slot / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                     f'font-size="11" fill="{"#b00020" if mark else "#333"}">'
                     f'{html.escape(t.day.strftime("%m-%d"))}{mark}</text>')
    parts.append(f'<rect x="{left}" y="8" width="12" height="12" fill="#2f6db5"/><text x="{left + 16}" y="18" '
                 'font-size="12" fill="#333">HIS</text>')
    parts.append(f'<rect x="{left + 60}" y="8" width="12" height="12" fill="#e08a1e"/><text x="{left + 76}" '
                 'y="18" font-size="12" fill="#333">platform 医保平台</text>')
    parts.append("</svg>")
    return "".join(parts)
