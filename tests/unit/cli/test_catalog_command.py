"""``yibao catalog``: the counts by family, and "called by a service" read from the services' code — proven against
what the chains really build, and kept honest about what does not count."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from unit.registration.test_lost_answers import _every_call
from yibao.cli.catalog import called_by_services, scan_source, stats
from yibao.cli.main import COMMANDS
from yibao.envelope.catalog import Catalog

README = Path(__file__).resolve().parents[3] / "README.md"
CATALOG = Catalog.load()
CALLED = called_by_services(CATALOG)


def _by(service: str) -> set[str]:
    return {infno for infno, services in CALLED.items() if service in services}


def test_the_command_is_registered() -> None:
    assert COMMANDS[("catalog",)][0] == "yibao.cli.catalog"


def test_registration_is_said_to_call_exactly_what_its_chain_builds() -> None:
    calls = _every_call()
    built = {c.infno for c in calls} | {c.lookup.infno for c in calls if c.lookup is not None}
    assert _by("registration") - {"9001", "9002"} == built


def test_settlement_is_said_to_call_its_chain_and_the_reversal_the_engine_sends_for_it() -> None:
    assert {"2204", "2205", "2206", "2207", "2208", "2301", "2302", "2303", "2304", "2305", "5203", "5204",
            "2601"} <= _by("settlement")


def test_reconciliation_is_said_to_call_the_statements_their_files_and_its_repairs() -> None:
    assert {"3201", "3202", "9101", "9102", "5203", "2601"} <= _by("reconciliation")


def test_every_service_that_calls_the_platform_signs_in() -> None:
    callers = set().union(*CALLED.values())
    assert CALLED["9001"] == callers and CALLED["9002"] == callers


def test_a_number_in_a_docstring_or_a_comment_is_not_a_call() -> None:
    source = textwrap.dedent('''
        """Sends 2207 and 2208."""
        # 2304 too
        NOTE = "3201"
    ''')
    assert scan_source(source, CATALOG.infnos) == set()


def test_both_branches_of_a_chosen_infno_and_the_client_methods_count() -> None:
    source = textwrap.dedent('''
        refund_infno = "2208" if outpatient else "2305"
        Withdrawal(infno="2205")
        self.client.call("3201", body)
        await deps.client.reverse(psn_no, omsgid, oinfno)
        await client.upload(content, name)
        shelf.reverse()
    ''')
    assert scan_source(source, CATALOG.infnos) == {"2208", "2305", "2205", "3201", "2601", "9101"}


def test_the_platforms_prescription_feedback_is_said_to_be_received_by_the_upload_scheduler() -> None:
    from yibao.cli.catalog import received_by_services, scan_received

    assert received_by_services(CATALOG) == {"7102": {"upload-scheduler"}, "7103": {"upload-scheduler"}}
    assert scan_received('RECEIVED_INFNOS = ("7102", "2201")\nx = ("7103",)\n', {"7102", "7103"}) == {"7102"}


def test_transactions_the_platform_sends_to_us_are_never_called() -> None:
    inbound = {t.infno for t in CATALOG if t.direction == "in"}
    assert inbound and not inbound & set(CALLED)


def test_the_stats_count_every_transaction_once_by_family(capsys) -> None:
    from yibao.cli.catalog import run

    counts = stats(CATALOG, CALLED)
    assert counts.total.total == len(CATALOG) == 115
    assert counts.total.with_fields == sum(t.has_schema for t in CATALOG)
    assert counts.total.called == len(CALLED)
    assert run(argparse.Namespace(markdown=False, stats=True, province=None)) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^all\s+115\s+{counts.total.with_fields}\s+{counts.total.called}$", out, re.M)


def test_the_readme_transaction_table_is_the_catalog_and_the_services_code() -> None:
    block = re.search(r"<!-- transactions:begin -->\n(.*?)<!-- transactions:end -->",
                      README.read_text(encoding="utf-8"), re.S)
    assert block, "README.md lost its transactions markers"
    out = subprocess.run([sys.executable, "-m", "yibao.cli.main", "catalog", "--markdown"],
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    assert block.group(1).strip() == out.strip(), "run `make readme`"


def test_the_upload_scheduler_is_said_to_call_what_its_lanes_and_catalogs_name() -> None:
    # its calls are data: the lanes' carrying transactions and the catalogs it syncs
    assert {"3301", "3401", "3402", "3501", "4101", "4201", "4401", "4701", "7101", "7104", "7105",
            "1301", "1312", "1319", "1201", "9102"} <= _by("upload-scheduler")


def test_the_counter_is_said_to_call_the_queries_it_serves_and_its_filings() -> None:
    assert {"1101", "1901", "5102", "5205", "5301", "5302", "5304", "2501", "2503", "2505"} <= _by("counter")


def test_the_counter_is_said_to_call_the_revocations_its_shared_filing_table_names() -> None:
    assert {"2502", "2504", "2506"} <= _by("counter")


def test_every_choice_a_province_setting_offers_for_a_transaction_counts_as_called() -> None:
    source = 'class S:\n    transfer_infno: Literal["2501", "2501A"] = Field("2501")\n'
    assert scan_source(source, {"2501", "2501A"}) == {"2501", "2501A"}
    assert {"2501A", "3101"} <= _by("counter")


def test_a_list_of_infnos_imported_from_a_shared_module_counts_for_the_importer() -> None:
    source = "from yibao.hisevents.models import FILING_INFNOS\nfrom yibao.hisevents.models import Charge\n"
    assert {"2501", "2502", "2503", "2504", "2505", "2506"} <= scan_source(source, [t.infno for t in CATALOG])


def test_a_dict_assigned_to_a_name_ending_in_infnos_counts_its_keys_and_values() -> None:
    source = 'LOCAL_INFNOS = {"a": ("2501", "2502"), "2503": "x"}\n'
    assert scan_source(source, {"2501", "2502", "2503"}) == {"2501", "2502", "2503"}


def test_a_data_file_names_a_transaction_by_infno_or_by_catalog_key() -> None:
    from yibao.cli.catalog import scan_data

    text = 'x: {infno: "4101", change_infno: "3402"}\n"1301": {mode: file}\n# 2207 in a comment\nname: "2208"\n'
    assert scan_data(text, {"4101", "3402", "1301", "2207", "2208"}) == {"4101", "3402", "1301"}
