"""The OpenAPI 3.1 document describes the installed entities and is valid."""

from __future__ import annotations

from openapi_spec_validator import validate


def test_openapi_document_is_valid_and_complete(api):
    response = api.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/sample/project" in document["paths"]
    assert "/api/v1/sample/day_sheet/{id}" in document["paths"]
    assert "/api/v1/sample/day_sheet_line" not in document["paths"]
    schema = document["components"]["schemas"]["sample.day_sheet"]
    assert schema["properties"]["total"]["readOnly"] is True
    assert schema["properties"]["lines"]["items"]["properties"]["amount"]["format"] == "decimal"
    params = {p["name"] for p in document["paths"]["/api/v1/sample/project"]["get"]["parameters"]}
    assert {"code__startswith", "contract_value__gte", "tags__contains", "sort"} <= params
