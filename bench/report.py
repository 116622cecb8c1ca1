"""The README's performance table, written from bench/results/*.json (``make readme`` pastes it; a test checks the
README holds exactly this). Every figure says what it was measured on and what a ratio divides by.

    .venv/bin/python bench/report.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = ["table"]


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}" if digits else f"{value:,.0f}"
    return str(value)


def _chains(c: dict[str, Any]) -> list[str]:
    burst, quiet, lat = c["burst"], c["unloaded"], c["with_platform_latency"]
    one, two = lat["one_replica"], lat["two_replicas"]
    stack = c["stack"]
    where = f"{stack['broker']} + {stack.get('database_detail', stack['database'])}, {c.get('cpus', '?')} CPUs"
    cpu = burst.get("cpu_ms_per_settled_chain", {})
    cpu_text = ", ".join(f"{k.replace('worker:', '')} {v:g}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
    parts = ", ".join(f"{name.replace('_', ' ')} {_n(quiet[key]['p50_ms'])}/{_n(quiet[key]['p99_ms'])}"
                      for key, name in (("entry_hop", "entry hop"), ("handoff", "handoff"), ("exit_hop", "exit hop"),
                                        ("added_per_platform_call", "added per platform call")))
    entry_parts = quiet.get("entry_hop_parts") or {}
    entry_rows = ["| …the entry hop's parts, p50/p99 ms | " + ", ".join(
        f"{name} {_n(v['p50_ms'])}/{_n(v['p99_ms'])}" for name, v in entry_parts.items()) + " | chains.json |"
    ] if entry_parts else []
    return [
        f"| stack of the chain figures | {where} | chains.json |",
        f"| simulator ceiling (trivial 1101 client, 8 callers) | {_n(c['ceiling_calls_per_s'], 0)} calls/s | chains.json |",
        f"| bare httpx loop, the same 6 calls, best of concurrency 1-32 (the CPU-bound ceiling for these calls) | "
        f"{_n(c['bare_best_chains_per_s'])} chains/s at {c['bare_best_concurrency']} | chains.json |",
        f"| CPU-bound burst of {burst['visits']} visits through the whole bridge | {_n(burst['chains_per_s'])} chains/s = "
        f"{burst['chains_per_s'] / c['bare_best_chains_per_s']:.2f} × the bare loop's best | chains.json |",
        f"| PostgreSQL commits per platform call in that burst (every service, relay and consumer included) / the chain "
        f"engine's own transactions per platform call | {_n(burst['pg_commits_per_platform_call'], 2)} / "
        f"{_n(burst['engine_transactions_per_platform_call'], 2)} | chains.json |",
        f"| CPU per settled chain in that burst, ms, by process | {cpu_text} | chains.json |",
        f"| one chain with nothing queued: produced → settled, p50/p99 ms (bare loop p50 "
        f"{_n(c['bare_serial_chain_p50_ms'])}) | {_n(quiet['chain']['p50_ms'])}/{_n(quiet['chain']['p99_ms'])} | chains.json |",
        f"| …its parts, p50/p99 ms | {parts} | chains.json |",
        *entry_rows,
        f"| platform answering in {lat['platform_latency_ms']} ms, {lat['in_flight_per_worker']} in flight per chain "
        f"worker: bridge vs bare loop with {lat['bare_concurrency']} in flight | {_n(one['chains_per_s'])} vs "
        f"{_n(lat['bare_chains_per_s'])} chains/s = {one['chains_per_s'] / lat['bare_chains_per_s']:.2f} × | chains.json |",
        f"| …2 replicas of each chain service vs 1 | {_n(two['chains_per_s'])} vs {_n(one['chains_per_s'])} chains/s = "
        f"{two['chains_per_s'] / max(0.01, one['chains_per_s']):.2f} × | chains.json |",
    ]


def _chaos(s: dict[str, Any]) -> str:
    disruptions = ", ".join(f"{n} {kind}" for kind, n in sorted(s["disruptions"].items()))
    return (f"| `make chaos`: {_n(s['chains'], 0)} chains ({_n(s['visits'], 0)} visits) under {disruptions} and "
            f"{_n(s['faults_fired'], 0)} platform faults | {'held' if s['ok'] else 'FAILED'}: "
            f"{s['lost']} lost, {s['answered_wrongly_or_twice']} answered wrongly or twice, "
            f"{s['ledger_disagreements (double settlements, single-sided)']} ledger disagreements, "
            f"{s['parked_visits']} parked, reconciliation {s['reconciliation'].get('state')}, "
            f"{_n(s['seconds'] / 60, 0)} min | chaos.json |")


def table() -> str:
    rows = ["| what | figure | file |", "|---|---|---|"]
    chains = _load("chains.json")
    if chains and "burst" in chains:
        rows += _chains(chains)
    crypto = _load("crypto.json")
    if crypto:
        fast, slow = crypto["sm2"].get("gmssl-pyx", {}), crypto["sm2"].get("gmssl", {})
        if fast and slow:
            rows.append(f"| SM2 sign, GmSSL binding vs pure-Python gmssl | {_n(fast['sign']['per_second'], 0)}/s vs "
                        f"{_n(slow['sign']['per_second'], 0)}/s | crypto.json |")
    envelope = _load("envelope.json")
    if envelope:
        none = envelope["build_validate_sign"]["none"]
        rows.append(f"| build + validate + sign one 2207 / one 20-line 2204 | {none['2207']['mean_ms']:.2f} ms / "
                    f"{none['2204x20']['mean_ms']:.2f} ms | envelope.json |")
    recon = _load("reconciliation.json")
    if recon:
        rows.append(f"| reconciliation of {_n(recon['entries'], 0)} settlements ({recon.get('method', '3201, detail file, diff, classification')}) "
                    f"| {recon['total_seconds']:.1f} s, peak RSS {recon['peak_rss_mb']:.0f} MB | reconciliation.json |")
    chaos = _load("chaos.json")
    if chaos:
        rows.append(_chaos(chaos["summary"]))
    mobile = _load("mobilepay.json")
    if mobile and isinstance(mobile.get("readme"), list):
        rows += [str(r) for r in mobile["readme"]]
    elif mobile and "end_to_end" in mobile:
        rows.append(_mobilepay(mobile))
    injury = _load("workinjury.json")
    if injury and isinstance(injury.get("readme"), list):
        rows += [str(r) for r in injury["readme"]]
    catalog = _load("catalog.json")
    if catalog and "phases" in catalog:
        rows.append(_catalog(catalog))
    return "\n".join(rows)


def _mobilepay(m: dict[str, Any]) -> str:
    e2e = m["end_to_end"]
    if "ceiling" not in m:  # a result written before the ceiling received the callback too
        ceiling, sweep, what = m["ceiling_orders_per_s"], m["ceiling_sweep_orders_per_s"], "the same calls' ceiling"
        also = ""
    else:
        ceiling, sweep = m["ceiling"]["orders_per_s"], m["ceiling"]["sweep_orders_per_s"]
        what = "a plain client's ceiling for the same exchanges (6201, 6202, callback verified; measured before and after)"
        calls_only = m["ceiling_calls_only"]["orders_per_s"]
        also = (f"; vs the two calls alone (no callback) {_n(calls_only, 1)} orders/s = "
                f"{e2e['orders_per_s'] / calls_only:.2f} ×")
    return (f"| mobile pay: {e2e['orders']} orders paid at once end to end (6201 + 6202, callback verified, result to "
            f"HIS) vs {what} (best of {', '.join(sweep)} in flight); "
            f"verified callbacks | {_n(e2e['orders_per_s'], 1)} vs {_n(ceiling, 1)} orders/s = "
            f"{e2e['orders_per_s'] / ceiling:.2f} × (target 0.5 ×){also}; "
            f"{_n(m['callbacks']['verified_callbacks_per_s'], 0)} callbacks/s | mobilepay.json |")


def _catalog(c: dict[str, Any]) -> str:
    phases = "; ".join(f"{name} {_n(p['rows_per_second'], 0)} rows/s" for name, p in c["phases"].items())
    target = c.get("target", {})
    return (f"| catalog {c['infno']} of {_n(next(iter(c['phases'].values()))['rows'], 0)} rows ({c['database']}; "
            f"target {_n(target.get('rows_per_second', 0), 0)} rows/s, < {target.get('peak_rss_mb')} MB) | "
            f"{phases}; peak RSS {c['peak_rss_mb']:.0f} MB | catalog.json |")


if __name__ == "__main__":
    print(table())
