"""The finance console in a real browser: Debian's chromium, headless, driven through chromedriver (Selenium).

Why Selenium with Debian's chromedriver: it drives the very chromium the hospital would install, through the
W3C WebDriver protocol, the driver comes from the same Debian package as the browser (no version drift, nothing
downloaded at run time), it needs no Node toolchain, and the test reads as what a clerk does (type, click,
read). The worker runs as a real process on the real broker and PostgreSQL, against the platform simulator.

The walk: a clerk-approver logs in with a static token and starts the day's run from the console; the run
finds a HIS-only settlement (单边账) waiting for approval; the drill-down shows the settlement; approving one's
own run is refused (four eyes); a second approver logs in with the identity provider's token (a JWT, no real
IdP: a local JWKS) and approves; the run ends repaired and balanced; the Excel and HTML reports download; the
audit log shows it all. Every page is screenshotted into test-artifacts/finance-console/ (gitignored).
Under YIBAO_REQUIRE_REAL=1 a machine without chromium fails this test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from support.finance_auth import IdentityProvider, token, write_command_keys, write_static_tokens
from support.kafka import produce
from support.simulator import SimulatorThread
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import recon_audit, recon_ledger
from yibao.core.results import HisResult, SettlementSplit
from yibao.core.topics import topic
from yibao.simulator import SimulatorSettings
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

PREFIX = "console."
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "finance-console"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1400", "--lang=zh-CN")


def _browser_binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    reason = "chromium and chromedriver are needed (Debian: apt-get install -y chromium chromium-driver)"
    if os.environ.get("YIBAO_REQUIRE_REAL") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def database(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = new_database(stack, tmp_path_factory.mktemp("consoledb"))
    upgrade(url)
    engine = make_engine(url)
    engine.url_text = url  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, database: Engine, idp: IdentityProvider,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    _browser_binaries()
    tmp = tmp_path_factory.mktemp("console-worker")
    with SimulatorThread(SimulatorSettings(port=0, admin_port=0, population_size=20)) as sim:
        proc = WorkerProcess("reconciliation", {
            "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": database.url_text,  # type: ignore[attr-defined]
            "YIBAO_TOPIC_PREFIX": PREFIX, "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_PLATFORM_BASE_URL": sim.url,
            "YIBAO_PLATFORM_RETRY_BACKOFF_S": "0", "YIBAO_RECONCILIATION_SCHEDULE_ENABLED": "false",
            "YIBAO_RECONCILIATION_REPORTS_DIR": str(tmp / "reports"), "YIBAO_RECONCILIATION_INSUTYPES": '["310"]',
            "YIBAO_RECONCILIATION_CLR_TYPES": '["11"]', "YIBAO_RECONCILIATION_SETL_OPTINS": '["440100"]',
            "YIBAO_LOG_JSON": "false", "YIBAO_RECONCILIATION_CONSOLE_COOKIE_SECURE": "false",
            "YIBAO_RECONCILIATION_AUTH_STATIC_TOKENS_FILE": str(write_static_tokens(tmp)),
            "YIBAO_RECONCILIATION_COMMAND_KEYS_FILE": str(write_command_keys(tmp)), **idp.env(),
        }, tmp / "worker.log").start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _browser_binaries()
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path,
                                              log_output=str(tmp_path_factory.mktemp("chromedriver") / "log")),
                              options=options)
    driver.downloads = downloads  # type: ignore[attr-defined]
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class Shots:
    """Screenshots of each page, kept as test artifacts."""

    def __init__(self, driver: object) -> None:
        self.driver, self.count = driver, 0
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.count:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot of {name}"  # type: ignore[attr-defined]
        return path


def _settled(setl_id: str, day: dt.date, medfee: str) -> HisResult:
    amount = Decimal(medfee)
    return HisResult(
        message_id=f"console-{setl_id}", his_visit_id=f"V-{setl_id}", visit_kind="outpatient", kind="settled",
        service="settlement", msgid=f"M{setl_id}", psn_no=f"P44{setl_id}0001", insutype="310",
        insuplc_admdvs="440100", mdtrt_id=f"D{setl_id}", setl_id=setl_id, clr_type="11", clr_optins="440100",
        setl_time=dt.datetime.combine(day, dt.time(10), tzinfo=clock.SHANGHAI),
        split=SettlementSplit(medfee_sumamt=amount, fund_pay_sumamt=amount / 2, psn_part_amt=amount / 2,
                              acct_pay=Decimal("0"), psn_cash_pay=amount / 2))


def _poll(check, what: str, timeout: float = 90.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(every)


def test_finance_console_walk_through(worker, kafka_bootstrap, database, idp, browser, record_property) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    shot = Shots(driver)
    record_property("screenshots", str(ARTIFACTS))
    day = clock.today() - dt.timedelta(days=1)
    asyncio.run(produce(kafka_bootstrap, [(topic("his_results", PREFIX), b"V-HX1", _settled("HX1", day, "88.50")
                                           .to_json())]))

    def booked() -> bool:
        with database.connect() as conn:
            return conn.execute(select(recon_ledger.c.setl_id).where(recon_ledger.c.setl_id == "HX1")).first() \
                is not None

    _poll(booked, "the settlement booked in the hospital ledger")

    def text(selector: str) -> str:
        return driver.find_element(By.CSS_SELECTOR, selector).text

    def follow(by: str, what: str) -> None:
        """Click a link or a submit button and wait for the page it leads to (never read the old one)."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        page = driver.find_element(By.TAG_NAME, "html")
        driver.find_element(by, what).click()

        def left(_: object) -> bool:
            # the old page's root is gone once the new page is there: chromedriver says so with a stale-element
            # error, or, while the document is being replaced, "Node … does not belong to the document"
            try:
                page.is_enabled()
            except WebDriverException:
                return True
            return False

        WebDriverWait(driver, 30).until(left)

    def log_in(secret: str) -> None:
        driver.get(f"{worker.url}/console/login")
        driver.find_element(By.ID, "token").send_keys(secret)
        follow(By.ID, "login")

    # anonymous: the console sends you to the login page; a wrong token is refused there
    driver.get(f"{worker.url}/console")
    assert driver.current_url.endswith("/console/login")
    shot("login")
    log_in("not-a-token-of-anyone-here")
    assert "Login failed" in text("#error")
    shot("login-failed")

    # a clerk-approver logs in with a static token and starts yesterday's run
    log_in(token("zhao.both"))
    assert "zhao.both" in text("#who")
    shot("runs")
    date_input = driver.find_element(By.ID, "date")
    assert date_input.get_attribute("value") == day.isoformat()
    follow(By.ID, "trigger")
    run_id = text("#run-id")

    def verdict() -> str | None:
        driver.refresh()
        state = text("#run-state")
        return state if "running" not in state else None

    assert "differences found" in _poll(verdict, "the run's verdict")
    assert "zhao.both" in text("#requested-by")
    shot("run-with-pending-repair")

    # drill-down to the settlement: both sides, the ledger entry, psn_no whole for a clerk
    follow(By.CSS_SELECTOR, "a.difference-link")
    assert "HX1" in text("h1") and "88.50" in text("#amounts") and "V-HX1" in text("#settlement")
    assert text("#psn-no") == "P44HX10001"
    shot("difference-drill-down")
    follow(By.ID, "back-to-run")

    # four eyes: approving one's own run is refused with the reason
    assert driver.find_element(By.ID, "four-eyes-note").is_displayed()
    driver.find_element(By.ID, "reason").send_keys("I checked it myself")
    follow(By.ID, "approve")
    assert "four eyes" in text("#error") and "another approver" in text("#error")
    shot("self-approval-refused")
    follow(By.ID, "logout")
    assert driver.current_url.split("?")[0].endswith("/console/login")

    # a second approver logs in with the identity provider's token (JWT) and approves
    log_in(idp.token("wang.approver", roles=["approver"]))
    assert "wang.approver" in text("#who")
    driver.get(f"{worker.url}/console/runs/{run_id}")
    assert "P44HX10001" not in driver.page_source  # masked in lists
    driver.find_element(By.ID, "reason").send_keys("5203: the platform never had HX1; void it")
    follow(By.ID, "approve")
    assert "approved" in text("#flash").lower()
    assert "repaired and balanced" in _poll(verdict, "the run after approval")
    shot("approved-by-second-user")

    # reports download (Excel, HTML)
    for fmt, name in (("xlsx", f"recon-{run_id}.xlsx"), ("html", f"recon-{run_id}.html")):
        driver.find_element(By.ID, f"report-{fmt}").click()
        target = driver.downloads / name  # type: ignore[attr-defined]
        _poll(lambda t=target: t.is_file() and t.stat().st_size > 0, f"the {fmt} report download", timeout=30)
    assert (driver.downloads / f"recon-{run_id}.xlsx").read_bytes()[:2] == b"PK"  # type: ignore[attr-defined]
    assert b"HX1" in (driver.downloads / f"recon-{run_id}.html").read_bytes()  # type: ignore[attr-defined]
    shot("reports-downloaded")

    # the chart of daily totals shows the day, HIS against the platform
    driver.get(f"{worker.url}/console")
    chart = driver.find_element(By.ID, "daily-chart")
    assert chart.find_elements(By.CSS_SELECTOR, "rect.bar-HIS") and chart.find_elements(By.CSS_SELECTOR,
                                                                                        "rect.bar-platform")
    shot("runs-with-chart")

    # the audit log, for approvers and ops
    driver.get(f"{worker.url}/console/audit")
    audit_text = text("#audit")
    for fragment in ("login_failed", "trigger", "refused", "approve", "report", "wang.approver", "zhao.both"):
        assert fragment in audit_text
    shot("audit-log")
    with database.connect() as conn:
        rows = conn.execute(select(recon_audit.c.actor, recon_audit.c.action, recon_audit.c.outcome,
                                   recon_audit.c.method).where(recon_audit.c.run_id == run_id)
                            .order_by(recon_audit.c.id)).all()
    assert ("zhao.both", "approve", "refused", "session") in rows
    assert ("wang.approver", "approve", "ok", "session") in rows
    assert sum(r.action == "report" for r in rows) == 2

    # security headers on every page
    import httpx

    page = httpx.get(f"{worker.url}/console/login")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and "HttpOnly" in page.headers["Set-Cookie"]
    assert shot.count >= 9
