"""Sample orders and rule contexts the tests build on: the demo push, one bill with changes, the admin token."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from fapiao.domain.merchant import BusinessSystemView, OrgView, PushContext, QrSettingView

SAMPLE = Path(__file__).parents[2] / "fapiao" / "demo" / "sample_order.json"


def sample_push(**bill_overrides) -> dict:
    doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    doc["data"][0].update(bill_overrides)
    return doc


ADMIN_TOKEN = "admin-token-for-tests"


ORG = OrgView("DEMO", "深圳市示例科技有限公司", "91440300MA5G9GK78Y")


SETTING = QrSettingView(key="k1", org=ORG, kinds=frozenset({"10xdp", "08xdp"}), validity_days=30)


CTX = PushContext(
    system=BusinessSystemView("DEMO-POS", "POS", True), setting=SETTING, known_org_tax_ids=frozenset({ORG.tax_id})
)


def bill(**changes) -> dict:
    b = copy.deepcopy(sample_push()["data"][0])
    b["businessSystemCode"] = "DEMO-POS"
    for k, v in changes.items():
        if k.startswith("line"):  # line0__amount="..."
            idx, field = k[4:].split("__")
            if v is DELETE:
                b["billDetail"][int(idx)].pop(field, None)
            else:
                b["billDetail"][int(idx)][field] = v
        elif v is DELETE:
            b.pop(k, None)
        else:
            b[k] = v
    return b


DELETE = object()
