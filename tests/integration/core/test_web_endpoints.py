"""Every HTTP endpoint of a real worker answers malformed requests with a 4xx and a JSON reason, never a 500:
libs/core's /metrics, /healthz, /readyz and registration's 诊查费 quote, on a real ``yibao worker registration``
process (real broker and database; the platform simulator in this process)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.simulator import SimulatorThread
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.simulator import Simulator, SimulatorSettings
from yibao.stack import Stack

pytestmark = [pytest.mark.integration]

PREFIX = "webtest."
QUOTE = "/consultation-fee/quote"


@pytest.fixture(scope="module")
def worker(stack: Stack, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("web")
    with SimulatorThread(SimulatorSettings(port=0, admin_port=0, population_size=5)) as sim:
        proc = WorkerProcess("registration", {
            "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": new_database(stack, tmp), "YIBAO_TOPIC_PREFIX": PREFIX,
            "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_PLATFORM_BASE_URL": sim.url,
        }, tmp / "registration.log").start()
        yield proc
        proc.stop()


@pytest.fixture(scope="module")
def client(worker: WorkerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=worker.url, timeout=30) as c:
        yield c


def refused(response: httpx.Response, *statuses: int) -> str:
    assert response.status_code in (statuses or range(400, 500)), (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


DEEP = b"[" * 100_000 + b"]" * 100_000

MALFORMED = {
    "deeply nested JSON": b'{"reg_fee": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "1e999999999": b'{"reg_fee": 1e999999999}',
    "1e999999999 as text": b'{"reg_fee": "1e999999999", "insutype": "310"}',
    "NaN": b'{"reg_fee": NaN}',
    "not UTF-8": b"\xff\xfe\x00{",
    "not JSON": b"reg_fee=10",
    "an array": b"[]",
    "empty": b"",
    "a field twice": b'{"reg_fee": "1", "reg_fee": "2"}',
    "a 5000-digit number": b'{"reg_fee": 1' + b"0" * 5000 + b"}",
    "three decimals": b'{"reg_fee": "10.005", "insutype": "310"}',
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_quote_is_a_4xx_with_a_reason(client: httpx.Client, case: str) -> None:
    assert refused(client.post(QUOTE, content=MALFORMED[case]), 400)


def test_a_quote_body_over_the_limit_is_413(client: httpx.Client) -> None:
    assert "larger than" in refused(client.post(QUOTE, content=DEEP), 413)


def test_a_chunked_quote_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"[" * 1024

    assert refused(client.post(QUOTE, content=chunks()), 413)


def test_a_body_over_the_servers_limit_is_413_as_json(client: httpx.Client) -> None:
    assert refused(client.post(QUOTE, content=b"x" * (2 * 1024 * 1024)), 413)


def test_a_good_quote_still_works(client: httpx.Client) -> None:
    response = client.post(QUOTE, json={"reg_type": "01", "insutype": "310", "reg_fee": "10.00"})
    assert response.status_code == 200 and response.json()["reg_fee"] == "10.00"


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/consultation-fee/rules"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_core_endpoints_refuse_other_methods_and_bodies_with_a_4xx(client: httpx.Client, path: str,
                                                                  method: str) -> None:
    for body in (DEEP, MALFORMED["1e999999999"], MALFORMED["not UTF-8"]):
        assert refused(client.request(method, path, content=body), 405, 413)


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
def test_core_endpoints_ignore_a_body_and_query_on_get(client: httpx.Client, path: str) -> None:
    response = client.request("GET", path, params={"x": "1e999999999", "y": "[" * 2000}, content=b"[" * 5000)
    assert response.status_code in (200, 503)


@pytest.mark.parametrize("path", ["/router/", "/table/", "/nothing", "/metrics/../../etc/passwd", "/%ff%fe",
                                  "/graph/", "/stats/"])
def test_unknown_paths_are_404_never_500(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_a_quote_by_get_is_405(client: httpx.Client) -> None:
    assert refused(client.get(QUOTE), 405)
