"""The Dashboards saved objects: valid NDJSON, resolvable references, only clickstream fields."""

from __future__ import annotations

import json

import pytest

from observability.index_template import field_paths
from observability.saved_objects import (
    DEFAULT_INDEX_PATTERN_ID,
    SAVED_OBJECTS_FILE,
    SavedObjectsError,
    load_saved_objects,
    parse_saved_objects,
    problems,
    referenced_fields,
)
from platform_core.names import SEARCH_INDEX_PATTERN
from platform_core.schema import StructOf
from platform_core.schemas.clickstream import CLICKSTREAM_RAW

SCHEMA_FIELDS = field_paths(CLICKSTREAM_RAW)


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return SAVED_OBJECTS_FILE.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def objects():
    return parse_saved_objects(SAVED_OBJECTS_FILE.read_text(encoding="utf-8"))


def test_every_line_is_one_json_object_with_type_id_and_attributes(lines):
    assert lines, "the file is empty"
    for number, line in enumerate(lines, start=1):
        document = json.loads(line)
        assert isinstance(document, dict), f"line {number}"
        assert isinstance(document["type"], str) and document["type"], f"line {number}"
        assert isinstance(document["id"], str) and document["id"], f"line {number}"
        assert isinstance(document["attributes"], dict), f"line {number}"


def test_every_reference_resolves_to_an_object_in_the_file(objects):
    known = {(o.type, o.id) for o in objects}
    references = [(ref.type, ref.id) for o in objects for ref in o.references]
    assert references, "no object references another one"
    assert set(references) <= known


def test_the_index_pattern_is_clickstream_with_event_time(objects):
    (pattern,) = [o for o in objects if o.type == "index-pattern"]
    assert pattern.id == DEFAULT_INDEX_PATTERN_ID
    assert pattern.attributes["title"] == SEARCH_INDEX_PATTERN == "clickstream-*"
    assert pattern.attributes["timeFieldName"] == "event_time"


def test_the_operators_visualisations_are_all_there(objects):
    fields_by_title = {o.attributes["title"]: referenced_fields(o) for o in objects if o.type == "visualization"}
    assert fields_by_title == {
        "Events per minute": {"event_time"},
        "Top pages": {"request.path"},
        "Referrers": {"referrer_host"},
        "Device mix": {"ua_device"},
        "Error rate (5xx share of requests)": {"event_time", "request.status"},
        "Request latency (ms)": {"event_time", "request.latency_ms"},
    }


def test_the_error_rate_counts_status_500_and_above(objects):
    (error_rate,) = [o for o in objects if o.id == "clickstream-error-rate"]
    (metric,) = json.loads(error_rate.attributes["visState"])["params"]["series"][0]["metrics"]
    assert metric["type"] == "filter_ratio"
    assert metric["numerator"]["query"] == "request.status >= 500"


def test_the_latency_panel_shows_percentiles(objects):
    (latency,) = [o for o in objects if o.id == "clickstream-latency"]
    aggs = json.loads(latency.attributes["visState"])["aggs"]
    percentiles = [a for a in aggs if a["type"] == "percentiles"]
    assert percentiles[0]["params"] == {"field": "request.latency_ms", "percents": [50, 95, 99]}


def test_the_dashboard_shows_every_visualisation(objects):
    (dashboard,) = [o for o in objects if o.type == "dashboard"]
    panels = json.loads(dashboard.attributes["panelsJSON"])
    shown = {ref.id for ref in dashboard.references if ref.name in {p["panelRefName"] for p in panels}}
    assert shown == {o.id for o in objects if o.type == "visualization"}


def test_only_fields_of_the_clickstream_schema_are_used(objects):
    used = set().union(*(referenced_fields(o) for o in objects))
    assert used <= set(SCHEMA_FIELDS), used - set(SCHEMA_FIELDS)
    # nested request.* fields are addressed with their dots
    assert {"request.path", "request.status", "request.latency_ms"} <= used
    assert isinstance(SCHEMA_FIELDS["request"], StructOf)


def test_the_file_passes_every_check(objects):
    assert problems(objects, fields=SCHEMA_FIELDS) == []
    assert load_saved_objects() == SAVED_OBJECTS_FILE.read_text(encoding="utf-8")


# The checks themselves must catch what they claim to catch.


def test_a_field_outside_the_schema_is_caught(objects, lines):
    broken = "\n".join(lines).replace('\\"field\\": \\"ua_device\\"', '\\"field\\": \\"ua_device_family\\"')
    found = problems(parse_saved_objects(broken), fields=SCHEMA_FIELDS)
    assert found == [
        "line 5 (visualization/clickstream-device-mix): field 'ua_device_family' is not in the clickstream schema"
    ]


def test_a_field_inside_a_query_is_checked_too(lines):
    broken = "\n".join(lines).replace("request.status >= 500", "response.status >= 500")
    found = problems(parse_saved_objects(broken), fields=SCHEMA_FIELDS)
    assert any("'response.status' is not in the clickstream schema" in f for f in found)


def test_a_percentile_of_a_text_field_is_caught(lines):
    broken = "\n".join(lines).replace('\\"field\\": \\"request.latency_ms\\"', '\\"field\\": \\"request.path\\"')
    found = problems(parse_saved_objects(broken), fields=SCHEMA_FIELDS)
    assert found == [
        "line 7 (visualization/clickstream-latency): percentiles aggregation on non-numeric field 'request.path'"
    ]


def test_a_dangling_reference_is_caught(lines):
    broken = "\n".join(lines).replace('"id":"clickstream-top-pages"}', '"id":"clickstream-top-paths"}')
    found = problems(parse_saved_objects(broken), fields=SCHEMA_FIELDS)
    assert found == [
        "line 8 (dashboard/clickstream-overview): reference 'panel_1' points to missing visualization/clickstream-top-paths"
    ]


def test_a_panel_without_its_reference_is_caught(lines):
    broken = "\n".join(lines).replace(
        '{"name":"panel_0","type":"visualization","id":"clickstream-events-per-minute"},', ""
    )
    found = problems(parse_saved_objects(broken), fields=SCHEMA_FIELDS)
    assert found == ["line 8 (dashboard/clickstream-overview): 'panel_0' is not among its references"]


def test_a_key_of_the_properties_map_counts_as_a_field():
    text = json.dumps(
        {
            "type": "visualization",
            "id": "campaigns",
            "attributes": {
                "title": "Campaigns",
                "visState": json.dumps(
                    {"type": "table", "aggs": [{"type": "terms", "params": {"field": "properties.campaign"}}]}
                ),
            },
        }
    )
    assert problems(parse_saved_objects(text), fields=SCHEMA_FIELDS) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no saved objects"),
        ('{"type":"index-pattern","id":"x","attributes":{}}\n\n', "line 2: empty line"),
        ("[1, 2]", "line 1: a saved object is a JSON object"),
        ('{"type":"index-pattern","attributes":{}}', "line 1: 'id' is missing"),
        ('{"type":"index-pattern","id":"x","attributes":{}', "line 1: not JSON"),
        ('{"type":"a","id":"x","attributes":{},"references":[{"name":"n"}]}', "line 1: references must be a list"),
    ],
)
def test_malformed_ndjson_is_refused_with_its_line(text, message):
    with pytest.raises(SavedObjectsError, match=message):
        parse_saved_objects(text)
