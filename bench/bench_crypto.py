"""Crypto figures for the envelopes: SM2 sign/verify per second on each backend and the ratio between them,
SM4 over 1 MB, and one full mobile-pay request (encode on the hospital side + decode on the platform side).

Run with the project's interpreter::

    .venv/bin/python bench/bench_crypto.py [--budget SECONDS] [--out PATH]

Prints a table and writes JSON (default bench/results/crypto.json). Each measurement runs for about
``--budget`` seconds (default 1.0), so the whole script takes well under a minute even on the pure-Python
backend. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from yibao.core import clock
from yibao.envelope.crypto import available_backends, generate_keypair, get_backend, sm3
from yibao.envelope.crypto.sm4 import sm4_cbc_decrypt, sm4_cbc_encrypt, sm4_ecb_decrypt, sm4_ecb_encrypt
from yibao.envelope.mobilepay import MobilePayCodec
from yibao.envelope.workinjury import WorkInjuryCodec

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "crypto.json"
APP_ID = "1G6AB2KF30000101A8C0000017B8E5D9"
APP_SECRET = "8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F"


def measure(fn: Callable[[], object], budget: float, *, min_runs: int = 3) -> dict[str, float]:
    """Run ``fn`` repeatedly for about ``budget`` seconds: calls per second and mean milliseconds per call."""
    fn()  # warm-up (caches, lazy imports)
    runs = 0
    start = time.perf_counter()
    elapsed = 0.0
    while runs < min_runs or elapsed < budget:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
    return {"per_second": round(runs / elapsed, 1), "mean_ms": round(elapsed / runs * 1000, 3), "runs": runs}


def fee_upload(lines: int) -> dict[str, Any]:
    """A 6201-like fee upload of ``lines`` detail lines (about 4 KB of JSON for 20 lines)."""
    return {
        "payAuthNo": "AUTH000000000001", "orgCodg": "H44010600001", "medOrgOrd": "MO2024010200000001",
        "psnNo": "44000000000000000001", "insutype": "310", "medType": "11", "deptName": "内科",
        "medfeeSumamt": Decimal("1285.40"),
        "feedetailList": [
            {"feedetlSn": f"{i:06d}", "medListCodg": "XA01AAA000000000000000", "medinsListName": "阿莫西林胶囊",
             "pric": Decimal("12.340000"), "cnt": Decimal("2.0000"), "detItemFeeSumamt": Decimal("24.68"),
             "fulamtOwnpayAmt": Decimal("0.00"), "bilgDeptName": "内科", "bilgDrName": "医生"}
            for i in range(lines)
        ],
    }


def bench_sm2(budget: float) -> dict[str, Any]:
    private, public = generate_keypair()
    message = b"appId=X&data={...}&encType=SM4&signType=SM2&timestamp=20240102030405&version=2.0.1&key=S" * 4
    key16 = bytes(range(16))
    out: dict[str, Any] = {}
    for name in available_backends():
        backend = get_backend(name)
        signature = backend.sign(private, message)
        wrapped = backend.encrypt(public, key16)
        out[name] = {
            "sign": measure(lambda b=backend: b.sign(private, message), budget),
            "verify": measure(lambda b=backend, s=signature: b.verify(public, message, s), budget),
            "encrypt_16B": measure(lambda b=backend: b.encrypt(public, key16), budget / 2),
            "decrypt_16B": measure(lambda b=backend, w=wrapped: b.decrypt(private, w), budget / 2),
        }
    if {"gmssl-pyx", "gmssl"} <= out.keys():
        fast, pure = out["gmssl-pyx"], out["gmssl"]
        out["ratio_gmssl_pyx_over_gmssl"] = {
            op: round(fast[op]["per_second"] / pure[op]["per_second"], 1) for op in fast
        }
    return out


def bench_symmetric(budget: float) -> dict[str, Any]:
    mb = bytes(range(256)) * 4096
    key, iv = bytes(range(16)), bytes(16)
    ecb, cbc = sm4_ecb_encrypt(key, mb), sm4_cbc_encrypt(key, iv, mb)
    return {
        "sm4_ecb_encrypt_1MB": measure(lambda: sm4_ecb_encrypt(key, mb), budget / 2),
        "sm4_ecb_decrypt_1MB": measure(lambda: sm4_ecb_decrypt(key, ecb), budget / 2),
        "sm4_cbc_encrypt_1MB": measure(lambda: sm4_cbc_encrypt(key, iv, mb), budget / 2),
        "sm4_cbc_decrypt_1MB": measure(lambda: sm4_cbc_decrypt(key, iv, cbc), budget / 2),
        "sm3_1MB": measure(lambda: sm3(mb), budget / 2),
    }


def bench_envelopes(budget: float) -> dict[str, Any]:
    hospital_keys, platform_keys = generate_keypair(), generate_keypair()
    data = fee_upload(20)
    out: dict[str, Any] = {"request_json_bytes": None}
    for name in available_backends():
        hospital = MobilePayCodec(APP_ID, APP_SECRET, hospital_keys[0], platform_keys[1], backend=name)
        plat = MobilePayCodec.for_platform(APP_ID, APP_SECRET, platform_keys[0], hospital_keys[1], backend=name)
        answer = {"payOrdId": "ORD1", "payToken": "TK1", "ordStas": "3", "fundPay": Decimal("1000.00")}

        def mobile_round_trip(h: MobilePayCodec = hospital, p: MobilePayCodec = plat) -> None:
            p.decode_request(h.encode_request(data))  # hospital signs+encrypts, platform verifies+decrypts

        def mobile_full_call(h: MobilePayCodec = hospital, p: MobilePayCodec = plat) -> None:
            p.decode_request(h.encode_request(data))
            h.decode_response(p.encode_response(answer))  # and the answer back

        sender = WorkInjuryCodec(hospital_keys[0], platform_keys[1], backend=name)
        receiver = WorkInjuryCodec(platform_keys[0], hospital_keys[1], backend=name)
        out[name] = {
            "mobilepay_request_encode_decode": measure(mobile_round_trip, budget),
            "mobilepay_request_and_response": measure(mobile_full_call, budget),
            "workinjury_seal_open": measure(lambda s=sender, r=receiver: r.open(s.seal("GYU102", "T1", data)),
                                            budget),
        }
    out["request_json_bytes"] = len(json.dumps(data, default=str, ensure_ascii=False).encode())
    return out


def versions() -> dict[str, str]:
    found = {}
    for dist in ("cryptography", "gmssl", "gmssl-pyx"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def report(results: dict[str, Any]) -> str:
    lines = [f"crypto bench {results['when']}  python {results['python']}  {results['machine']}"]
    for name, ops in results["sm2"].items():
        if name.startswith("ratio"):
            lines.append(f"  SM2 ratio gmssl-pyx / gmssl: " + ", ".join(f"{k} ×{v}" for k, v in ops.items()))
            continue
        lines.append(f"  SM2 {name:<10} " + "  ".join(f"{op} {m['per_second']:>9,.1f}/s" for op, m in ops.items()))
    for op, m in results["symmetric"].items():
        lines.append(f"  {op:<22} {m['mean_ms']:>9.2f} ms")
    for name, ops in results["envelopes"].items():
        if isinstance(ops, dict):
            for op, m in ops.items():
                lines.append(f"  {name:<10} {op:<34} {m['mean_ms']:>9.2f} ms  ({m['per_second']:,.1f}/s)")
    lines.append(f"  (mobile-pay request data: {results['envelopes']['request_json_bytes']} bytes of JSON)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement (default 1.0)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    results = {
        "when": clock.format_datetime(clock.now()),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "versions": versions(),
        "backends": available_backends(),
        "budget_seconds": args.budget,
        "sm2": bench_sm2(args.budget),
        "symmetric": bench_symmetric(args.budget),
        "envelopes": bench_envelopes(args.budget),
    }
    print(report(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
