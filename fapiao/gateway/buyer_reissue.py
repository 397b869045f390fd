"""重开 by the buyer through the original QR link, where the deployment allows it (``FAPIAO_BUYER_REISSUE``): after
the invoice was fully reversed for 开票有误, the second scan offers a title form; a corrected title re-issues the
order exactly as the merchant's 重开 does (``fapiao.services.reissue``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from fapiao.domain.buyer import SPECIAL_KINDS
from fapiao.domain.reversal import ReversalRefused
from fapiao.gateway import PRODUCER, ROOT, SETTINGS
from fapiao.gateway.bodies import read_form
from fapiao.gateway.rendering import message, render
from fapiao.errors import FieldErrors
from fapiao.services.reissue import may_reissue, reissue_event

log = logging.getLogger("fapiao.gateway")


async def offers_reissue(request: web.Request, view) -> bool:
    """Whether the scan page shows the 重开 form for this order."""
    if not request.app[SETTINGS].buyer_reissue or view.reversal != "已红冲":
        return False
    return await asyncio.to_thread(may_reissue, request.app[ROOT].sessions, view.order_key)


def add_buyer_reissue(app: web.Application, view_of) -> None:
    """``POST /q/{token}/reissue``; ``view_of`` is the gateway's (link, view) resolver of a QR token."""

    async def buyer_reissue(request: web.Request) -> web.Response:
        if not request.app[SETTINGS].buyer_reissue:
            return message(403, "不能重开", "商家未开启扫码重开，请联系商家重新开具。")
        found, error = await view_of(request)
        if error:
            return error
        _, view = found
        token = request.match_info["token"]
        form = {k: str(v) for k, v in (await read_form(request)).items() if k != "csrf_token"}
        seller, _, bill_no = view.order_key.partition(":")
        try:
            result = await asyncio.to_thread(reissue_event, request.app[ROOT].sessions, seller, bill_no, form)
        except ReversalRefused as exc:
            return message(422, "不能重开", exc.rule)
        if isinstance(result, FieldErrors):
            return render(
                "h5.html",
                status=422,
                view=view,
                token=token,
                form=form,
                errors=result,
                special=view.order.invoice_kind in SPECIAL_KINDS,
                reissue=True,
            )
        try:
            producer: Any = request.app[PRODUCER]
            await producer.send_and_wait(
                request.app[SETTINGS].topics["buyer.submitted"],
                key=result.order_key.encode(),
                value=result.model_dump_json().encode(),
            )
        except Exception:
            log.exception("could not publish the re-issue")
            return message(503, "提交失败", "系统繁忙，请稍后重新提交。")
        raise web.HTTPSeeOther(f"/q/{token}")

    app.add_routes([web.post("/q/{token}/reissue", buyer_reissue)])
