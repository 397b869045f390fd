"""Event contracts: the checked-in JSON Schemas and AsyncAPI document match the models; consumers ignore
unknown fields; every topic has a versioned model with an event id and a time."""

import json

import jsonschema
import pytest

from schemas import TOPIC_MODELS, Contract, DeliveryRequested
from schemas.export import rendered
from fapiao.topics import CONSUMED, STAGES, TopicNames, order_key


def test_checked_in_contracts_are_current():
    stale = [str(p) for p, text in rendered().items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    assert not stale, f"run `fapiao schemas export`; stale: {stale}"


def test_every_topic_has_a_model():
    assert set(TOPIC_MODELS) == set(STAGES)
    for stage, model in TOPIC_MODELS.items():
        if stage not in ("orders.pushed", "settings"):
            assert issubclass(model, Contract)
            assert {"event_id", "schema_version", "occurred_at", "order_key"} <= set(model.model_fields)


def test_asyncapi_document_shape():
    doc = json.loads(rendered()[next(p for p in rendered() if p.name == "asyncapi.json")])
    assert doc["asyncapi"].startswith("3.")
    assert {c["address"] for c in doc["channels"].values()} == {f"fapiao.{s}" for s in STAGES}


@pytest.mark.parametrize("stage", [s for s in STAGES if s not in ("orders.pushed", "settings")])
def test_consumers_ignore_unknown_fields(stage):
    model = TOPIC_MODELS[stage]
    schema = model.model_json_schema(mode="serialization")
    assert schema.get("additionalProperties") is not False


def test_event_round_trips_and_validates_against_its_schema():
    ev = DeliveryRequested(
        event_id="e1", order_key="T:1", request_id="r1", invoice_number="1" * 20, channel="email", to="a@b.cn"
    )
    doc = json.loads(ev.model_dump_json())
    jsonschema.validate(doc, DeliveryRequested.model_json_schema(mode="serialization"))
    doc["a_field_from_the_future"] = {"x": 1}
    assert DeliveryRequested.model_validate(doc) == ev


def test_topic_names_and_key():
    t = TopicNames("acme")
    assert t["orders.pushed"] == "acme.orders.pushed" and t.dlq("buyer.submitted") == "acme.buyer.submitted.dlq"
    assert len(t.all()) == len(STAGES) + len(CONSUMED)
    assert t.config("acme.settings") == {"cleanup.policy": "compact"}
    assert order_key("91440300MA5G9GK78Y", "A-1") == b"91440300MA5G9GK78Y:A-1"
