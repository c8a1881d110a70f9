"""How a report's devices and filters read on the page and in the PDF."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from core.services.reports.cells import asked, device_label


def test_a_device_reads_its_name_beside_its_id_unless_the_name_is_the_id() -> None:
    assert device_label("kiln-7", "Kiln 7") == "Kiln 7 (kiln-7)"
    assert device_label("chiller-3", "chiller-3") == "chiller-3"
    assert device_label("chiller-3", None) == "chiller-3"
    assert device_label("chiller-3", "") == "chiller-3"


def test_filter_keys_read_as_words_and_anyone_acts() -> None:
    filters = {
        "actor": "any",
        "action": "any",
        "target_type": "any",
        "target_id": "any",
        "from": "2026-07-01T00:00:00+00:00",
        "to": "2026-07-02T00:00:00+00:00",
    }
    assert asked(filters, ZoneInfo("Europe/Berlin")) == (
        "Actor: anyone · Action: any · Target kind: any · Target: any"
        " · From: 2026-07-01 02:00:00 CEST · To: 2026-07-02 02:00:00 CEST"
    )
    assert asked({"actor": "ada", "device": "kiln-7"}) == "Actor: ada · Device: kiln-7"
    assert asked({}) == "everything"
