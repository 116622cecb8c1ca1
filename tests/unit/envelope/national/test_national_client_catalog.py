"""The client with the real transaction catalog: validation before sending, normalised input, retry flags."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

import httpx
import pytest

from yibao.core.clock import SHANGHAI
from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import EnvelopeValidationError, UnknownOutcome

from unit.envelope.national.national_standins import fail, ok

QUERY = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440106199001011234",
                  "begntime": _dt.datetime(2024, 1, 1, 9, 30, tzinfo=SHANGHAI)}}


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.load()


async def test_input_is_normalised_by_the_catalog_before_sending(make_client, platform, catalog):
    await make_client(catalog=catalog).call("1101", QUERY)
    sent = platform.calls("1101")[0].envelope["input"]["data"]
    assert sent["begntime"] == "2024-01-01 09:30:00"


async def test_catalog_refusal_sends_nothing(make_client, platform, catalog):
    with pytest.raises(EnvelopeValidationError) as caught:
        await make_client(catalog=catalog).call("1101", {"data": {"mdtrt_cert_type": "02"}})
    assert caught.value.infno == "1101" and "mdtrt_cert_no" in caught.value.path
    assert platform.seen == []


async def test_sign_in_input_keeps_the_spec_node_name(make_client, platform, catalog):
    await make_client(catalog=catalog).call("1101", QUERY)
    assert set(platform.calls("9001")[0].envelope["input"]) == {"signIn"}


async def test_catalog_marks_queries_safe_to_retry_and_settlements_not(make_client, platform, catalog):
    client = make_client(catalog=catalog)
    assert client.policy("1101").safe_to_retry and not client.policy("2207").safe_to_retry
    assert client.policy("2207").reversible
    platform.on("1101", fail(httpx.ReadTimeout), ok({"baseinfo": {}}))
    assert (await client.call("1101", QUERY)).ok
    assert len(platform.calls("1101")) == 2


async def test_settlement_with_the_catalog_is_not_resent_after_an_unknown_outcome(make_client, platform, catalog):
    platform.on("2207", fail(httpx.ReadTimeout))
    client = make_client(catalog=catalog)
    payload = {"data": {
        "psn_no": "P0001", "mdtrt_cert_type": "02", "mdtrt_cert_no": "440106199001011234",
        "med_type": "11", "medfee_sumamt": Decimal("100.5"), "psn_setlway": "01", "mdtrt_id": "M1",
        "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310", "fulamt_ownpay_amt": Decimal("0"),
        "overlmt_selfpay": Decimal("0"), "preselfpay_amt": Decimal("0"), "inscp_scp_amt": Decimal("100.5"),
    }}
    with pytest.raises(UnknownOutcome):
        await client.call("2207", payload, insuplc_admdvs="440100")
    [seen] = platform.calls("2207")
    assert seen.raw.count(b'"medfee_sumamt":100.50') == 1  # quantised to the field's scale, exact


async def test_catalog_paths_for_file_transfer_and_calls(make_client, catalog):
    client = make_client(catalog=catalog)
    assert client._path("9101", client.policy("9101")) == "/fsi/api/fileupload/upload"
    assert client._path("2207", client.policy("2207")) == "/fsi/api/rsfComIfsService/callService"
