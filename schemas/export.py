"""Generate the checked-in contract files: one JSON Schema per topic and an AsyncAPI 3 document.

Run ``fapiao schemas export`` after changing a model; ``tests/unit/test_contracts.py`` fails while they are stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas import TOPIC_MODELS

HERE = Path(__file__).parent
KEY_DOC = "`{sellerTaxId}:{billNo}` (UTF-8): every event of one order shares a partition."
SETTINGS_KEY_DOC = "`qr:<key值>` or `static:<id>`; compacted: the latest record per key counts, no value removes it."


def json_schemas() -> dict[str, dict]:
    return {stage: model.model_json_schema(mode="serialization") for stage, model in TOPIC_MODELS.items()}


def asyncapi(prefix: str = "fapiao") -> dict:
    schemas = json_schemas()
    channels, operations, messages = {}, {}, {}
    consumers = {
        "orders.pushed": "order-ingest",
        "buyer.submitted": "invoice-issue",
        "delivery.requested": "delivery",
        "reversals.confirmed": "invoice-issue",
    }
    for stage, schema in schemas.items():
        name = stage.replace(".", "_")
        model = TOPIC_MODELS[stage]
        messages[name] = {
            "name": name,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {"type": "object", "properties": {}},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": SETTINGS_KEY_DOC if stage == "settings" else KEY_DOC}
                }
            },
            "payload": {"$ref": f"./jsonschema/{stage}.json"},
        }
        channels[name] = {
            "address": f"{prefix}.{stage}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        consumers["settings"] = "the gateway (scan pages)"
        action = "receive" if stage in consumers else "send"
        operations[f"{action}_{name}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"consumed by {consumers[stage]}" if stage in consumers else "published by fapiao",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fapiao events",
            "version": "1.0.0",
            "description": "Topics of fapiao (scan-to-invoice). Topic names carry a configurable prefix "
            "(FAPIAO_TOPIC_PREFIX, default `fapiao`). Each consumed topic has a dead-letter twin `<topic>.dlq` "
            "carrying the original bytes with kafka_dlt-* headers.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def rendered() -> dict[Path, str]:
    out = {
        HERE / "jsonschema" / f"{stage}.json": json.dumps(s, indent=2, ensure_ascii=False) + "\n"
        for stage, s in json_schemas().items()
    }
    out[HERE / "asyncapi.json"] = json.dumps(asyncapi(), indent=2, ensure_ascii=False) + "\n"
    return out


def write() -> list[Path]:
    changed = []
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    for p in write():
        print("wrote", p)
