"""9101 upload and 9102 download: zip of UTF-8 tab-separated TXT with `null`, or a JSON error body."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from yibao.envelope.errors import FileTransferError
from yibao.envelope.national.files import (
    FileErrorReply,
    build_zip,
    format_txt,
    parse_download,
    parse_txt,
    unpack_zip,
)

from unit.envelope.national.national_standins import ok, reply_json

COLUMNS = ["psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag", "memo"]
RESULT_TXT = ("P001\tM001\tS001\tH44010600001202401010800000001\t0\t0\tnull\n"
              "P002\tM002\tS002\tH44010600001202401010800000002\t1\t0\t金额不符\n").encode("utf-8")


def test_download_zip_is_unpacked_and_its_txt_rows_parsed():
    rows = parse_download(build_zip({"result.txt": RESULT_TXT}), COLUMNS)
    assert rows[0] == {"psn_no": "P001", "mdtrt_id": "M001", "setl_id": "S001",
                       "msgid": "H44010600001202401010800000001", "stmt_rslt": "0", "refd_setl_flag": "0",
                       "memo": None}
    assert rows[1]["memo"] == "金额不符"


def test_null_means_empty():
    assert parse_txt(b"null\tx\n", ["a", "b"]) == [{"a": None, "b": "x"}]


def test_txt_is_utf8_with_or_without_bom_and_any_line_end():
    assert parse_txt("\ufeffP1\t张三\r\nP2\tnull\r\n".encode(), ["psn_no", "memo"]) == [
        {"psn_no": "P1", "memo": "张三"}, {"psn_no": "P2", "memo": None}]


def test_short_line_is_padded_and_long_line_is_an_error_naming_the_line():
    assert parse_txt(b"P1\n", ["a", "b"]) == [{"a": "P1", "b": None}]
    with pytest.raises(FileTransferError, match="line 2"):
        parse_txt(b"a\tb\na\tb\tc\n", ["x", "y"], name="result.txt")


def test_txt_that_is_not_utf8_is_an_error():
    with pytest.raises(FileTransferError):
        parse_txt("张三".encode("gbk"), ["a"])


def test_every_txt_member_is_read_in_name_order():
    data = build_zip({"b.txt": b"2\n", "a.txt": b"1\n", "readme.md": b"x"})
    assert [r["n"] for r in parse_download(data, ["n"])] == ["1", "2"]


def test_json_error_body_instead_of_zip_is_an_error_with_the_platform_message():
    body = json.dumps({"infcode": -1, "err_msg": "文件不存在或已过期"}, ensure_ascii=False).encode()
    with pytest.raises(FileErrorReply) as caught:
        parse_download(body, COLUMNS)
    assert caught.value.err_msg == "文件不存在或已过期"
    assert isinstance(caught.value, FileTransferError)
    with pytest.raises(FileErrorReply):
        unpack_zip(body)


def test_corrupt_zip_is_an_error():
    with pytest.raises(FileTransferError):
        unpack_zip(b"PK\x03\x04 truncated")


def test_written_txt_is_read_back_the_same():
    rows = [{"setl_id": "S1", "medfee_sumamt": Decimal("100.50"), "memo": None},
            {"setl_id": "S2", "medfee_sumamt": Decimal("0.00"), "memo": "退费"}]
    text = format_txt(rows, ["setl_id", "medfee_sumamt", "memo"])
    assert text == "S1\t100.50\tnull\nS2\t0.00\t退费\n".encode()
    assert parse_txt(text, ["setl_id", "medfee_sumamt", "memo"])[1]["memo"] == "退费"


def test_values_that_would_break_the_format_are_refused():
    with pytest.raises(FileTransferError):
        format_txt([{"a": "x\ty"}], ["a"])
    with pytest.raises(FileTransferError):
        format_txt([{"a": 1.5}], ["a"])


async def test_upload_is_multipart_with_the_file_and_the_envelope(make_client, platform):
    platform.on("9101", ok({"file_qury_no": "FQ-1", "filename": "detail.zip", "dld_endtime": "2024-01-02 00:00:00"}))
    content = build_zip({"detail.txt": b"S1\t100.00\n"})
    result = await make_client().upload(content, "detail.zip")
    assert (result.file_qury_no, result.filename, result.dld_endtime) == (
        "FQ-1", "detail.zip", "2024-01-02 00:00:00")
    [seen] = platform.calls("9101")
    assert seen.path == "/fsi/api/fileupload/upload"
    assert seen.envelope["input"] == {"fsUploadIn": {"filename": "detail.zip", "fixmedins_code": "H44010600001"}}
    assert seen.envelope["_file"] == {"filename": "detail.zip", "bytes": content}


async def test_download_returns_the_file_bytes(make_client, platform):
    data = build_zip({"result.txt": RESULT_TXT})
    platform.on("9102", lambda seen: httpx.Response(200, content=data,
                                                    headers={"Content-Type": "application/octet-stream"}))
    client = make_client()
    assert await client.download("FQ-1", "result.zip") == data
    rows = await client.download_rows("FQ-1", "result.zip", COLUMNS)
    assert [r["setl_id"] for r in rows] == ["S001", "S002"]
    sent = platform.calls("9102")[0]
    assert sent.path == "/fsi/api/fileupload/download"
    assert sent.envelope["input"] == {"fsDownloadIn": {"file_qury_no": "FQ-1", "filename": "result.zip",
                                                       "fixmedins_code": "H44010600001"}}


async def test_download_answered_with_a_json_error_raises_the_platform_message(make_client, platform):
    platform.on("9102", lambda seen: reply_json({"infcode": "-1", "err_msg": "文件已过期"}))
    with pytest.raises(FileErrorReply) as caught:
        await make_client().download("FQ-1", "result.zip")
    assert caught.value.err_msg == "文件已过期"
