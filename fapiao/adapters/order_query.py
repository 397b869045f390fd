"""The merchant's order-query interface (mode 2, 业务系统生成二维码链接): fapiao asks for an order's lines after the
buyer scans a link the merchant's system assembled. Our contract (FACTS §1.4 leaves the flagship one open):

    GET {query_url}?billNo=<order number>&timestamp=<ms>&sign=<hex HMAC-SHA256(secret, "billNo,timestamp")>
    → {"errorCode": "0", "data": <one bill in BILL.PUSH shape: billNo, totalAmount, includeTaxFlag, billDetail...>}

Any other errorCode means "no such order". Timeouts and 5xx are retried a few times (tenacity, jittered)."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse


from fapiao.adapters.http_client import get_json
from fapiao.errors import transient_retries


class OrderNotFound(Exception):
    pass


def query_order(query_url: str, secret: str, bill_no: str, timeout: float = 5.0, tries: int = 3) -> dict:
    stamp = str(int(time.time() * 1000))
    sign = hmac.new(secret.encode(), f"{bill_no},{stamp}".encode(), hashlib.sha256).hexdigest()
    sep = "&" if "?" in query_url else "?"
    url = f"{query_url}{sep}{urllib.parse.urlencode({'billNo': bill_no, 'timestamp': stamp, 'sign': sign})}"
    for attempt in transient_retries(tries):
        with attempt:
            doc = get_json(url, timeout)
    if str(doc.get("errorCode")) != "0" or not isinstance(doc.get("data"), dict):
        raise OrderNotFound(str(doc.get("message") or doc.get("errorCode") or "no data"))
    return doc["data"]
