"""``yibao topics list``: print the topic catalog (name, partitions, key, value model, who writes and reads)."""

from __future__ import annotations

import argparse

from yibao.core.settings import CommonSettings
from yibao.core.topics import CATALOG

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="as a Markdown table (the README's)")


def run(args: argparse.Namespace) -> int:
    prefix = CommonSettings().topic_prefix
    if args.markdown:
        print("| topic | partitions | key | value | producers → consumers | what |")
        print("|---|---|---|---|---|---|")
        for t in CATALOG:
            print(f"| `{t.full_name(prefix)}` | {t.partitions} | {t.key} | `{t.value_model}` | "
                  f"{', '.join(t.producers)} → {', '.join(t.consumers)} | {t.description} |")
        return 0
    for t in CATALOG:
        print(f"{t.full_name(prefix)}  partitions={t.partitions}  key={t.key}\n    value={t.value_model}\n"
              f"    {', '.join(t.producers)} → {', '.join(t.consumers)}: {t.description}")
    return 0
