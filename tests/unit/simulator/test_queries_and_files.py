"""1101, 2001, 5203, 5204, 1901, 1301-1319 catalogs, 9101/9102 files."""

from __future__ import annotations

from yibao.simulator.files import read_txt_zip
from yibao.simulator.uploads import catalog_version

from .conftest import Hospital


def test_1101_finds_a_person_by_each_credential(hosp: Hospital) -> None:
    for kind, no in (("01", "TOKENP0001"), ("02", "IDP0001"), ("03", "CARDP0001")):
        out = hosp.ok("1101", {"data": {"mdtrt_cert_type": kind, "mdtrt_cert_no": no}})
        assert out["baseinfo"]["psn_no"] == "P0001"
        assert out["insuinfo"][0]["insuplc_admdvs"] == "440100"


def test_1101_credential_must_match_its_type(hosp: Hospital) -> None:
    assert "mdtrt_cert_no" in hosp.refused("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": "IDP0001"}})


def test_1101_answers_from_the_seeded_population(settings) -> None:
    from yibao.simulator.population import load_population

    a, b = load_population(5, 20), load_population(5, 20)
    assert [p.psn_no for p in a] == [p.psn_no for p in b] and len({p.psn_no for p in a}) == 20


def test_5203_tells_a_cancelled_settlement(hosp: Hospital) -> None:
    mdtrt_id, setl_id = hosp.outpatient_settled()
    q = {"data": {"psn_no": "P0001", "mdtrt_id": mdtrt_id, "setl_id": setl_id}}
    assert hosp.ok("5203", q)["setlinfo"]["vali_flag"] == "1"
    hosp.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    assert hosp.ok("5203", q)["setlinfo"]["vali_flag"] == "0"


def test_5203_without_setl_id_finds_the_visits_latest_settlement(hosp: Hospital) -> None:
    mdtrt_id, setl_id = hosp.outpatient_settled()
    out = hosp.ok("5203", {"data": {"psn_no": "P0001", "mdtrt_id": mdtrt_id}})
    assert out["setlinfo"]["setl_id"] == setl_id


def test_5204_lists_the_visits_details(hosp: Hospital) -> None:
    mdtrt_id, _ = hosp.outpatient_settled(("1.00", "2.00"))
    rows = hosp.ok("5204", {"data": {"psn_no": "P0001", "mdtrt_id": mdtrt_id}})["feedetail"]
    assert sorted(r["feedetl_sn"] for r in rows) == ["F0", "F1"]


def test_1901_answers_a_dictionary(hosp: Hospital) -> None:
    rows = hosp.ok("1901", {"data": {"type": "insutype"}})["list"]
    assert {"310", "390"} <= {r["nat_dic_val_code"] for r in rows}


def test_catalog_download_by_version_through_9102(hosp: Hospital) -> None:
    def download(ver: str) -> tuple[dict, list]:
        info = hosp.ok("1301", {"data": {"ver": ver}})
        out = hosp.call("9102", {"fsDownloadIn": {"file_qury_no": info["file_qury_no"], "filename": info["filename"],
                                                  "fixmedins_code": hosp.code}})
        return info, read_txt_zip(out.file[1])

    info, first = download("0")  # one version per file: the first version
    assert info["data_cnt"] == len(first) == 20 and len(first[0]) == 92
    versions = {row[82] for row in first}
    assert versions == {catalog_version(1)}
    _, second = download(catalog_version(1))
    assert {row[82] for row in second} == {catalog_version(2)}
    assert {row[0] for row in first} & {row[0] for row in second}  # a version updates codes of the one before
    assert download("0")[1] == first  # deterministic
    assert hosp.ok("1301", {"data": {"ver": catalog_version(3)}})["data_cnt"] == 0  # nothing newer
    assert "ver" in hosp.refused("1301", {"data": {"ver": "nonsense"}})


def test_9101_then_9102_returns_the_same_bytes(hosp: Hospital) -> None:
    up = hosp.platform.process(hosp.envelope("9101", {"fsUploadIn": {"filename": "a.zip", "fixmedins_code": hosp.code}}),
                               file_bytes=b"PK-bytes", file_name="a.zip")
    info = up.response["output"]
    down = hosp.call("9102", {"fsDownloadIn": {"file_qury_no": info["file_qury_no"], "filename": "a.zip",
                                               "fixmedins_code": hosp.code}})
    assert down.file == ("a.zip", b"PK-bytes")


def test_9102_of_an_unknown_file_is_a_json_error(hosp: Hospital) -> None:
    out = hosp.call("9102", {"fsDownloadIn": {"file_qury_no": "NOPE", "filename": "x", "fixmedins_code": hosp.code}})
    assert out.file is None and "文件不存在" in out.response["err_msg"]


def test_9101_needs_the_file_part(hosp: Hospital) -> None:
    assert "file" in hosp.refused("9101", {"fsUploadIn": {"filename": "a.zip", "fixmedins_code": hosp.code}})
