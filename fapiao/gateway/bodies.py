"""Reading request bodies so that nothing a client sends can make a handler fail: a form (urlencoded or multipart,
UTF-8, no file parts, bounded fields) or a JSON object. Anything else raises BadBody, which the gateway's middleware
answers with a 4xx naming the field and the rule (JSON for API callers, a Chinese page for browsers)."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import unquote_to_bytes

from aiohttp import BodyPartReader, web
from multidict import MultiDict

from fapiao.domain.text import text_problem
from fapiao.gateway.rendering import message

MAX_BODY = 256 * 1024  # the whole request body (aiohttp's client_max_size); every form fapiao has is far smaller
MAX_FIELD = 2000  # characters in one field
MAX_FIELDS = 100
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORM_KEY = "fapiao.form"  # the parsed form, kept on the request: the admin's CSRF check and the handler both read it


class BadBody(Exception):
    """A request body the gateway will not read: ``status`` (400, 413, 415, 422), ``field`` and the rule."""

    def __init__(self, status: int, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.status, self.field, self.rule = status, field, rule


async def _body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadBody(413, "body", f"请求体过大（上限 {MAX_BODY // 1024} KB）") from None


def _utf8(raw: bytes, field: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody(400, field, "不是合法的 UTF-8 文本") from None


def _check_charset(request: web.Request) -> None:
    charset = (request.charset or "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise BadBody(415, "body", f"只接受 UTF-8 编码（收到 charset={charset}）")


def _add(form: MultiDict, name: str, value: str) -> None:
    if len(form) >= MAX_FIELDS:
        raise BadBody(413, "body", f"表单字段过多（上限 {MAX_FIELDS} 个）")
    if len(value) > MAX_FIELD:
        raise BadBody(413, name, f"{name} 过长（上限 {MAX_FIELD} 个字符）")
    form.add(name, value)


async def read_form(request: web.Request) -> MultiDict:
    """The submitted form as text fields (UTF-8 only, no file parts, at most MAX_FIELDS of MAX_FIELD characters).
    Raises BadBody for any other body. Reading twice gives the same answer (the body is cached)."""
    if FORM_KEY in request:
        return request[FORM_KEY]
    form = await _read_form(request)
    request[FORM_KEY] = form
    return form


async def _read_form(request: web.Request) -> MultiDict:
    ctype = request.content_type
    if ctype not in FORM_TYPES:
        raise BadBody(415, "body", f"请以表单提交（{' 或 '.join(FORM_TYPES)}），收到 {ctype or '无 Content-Type'}")
    _check_charset(request)
    form: MultiDict = MultiDict()
    if ctype == "application/x-www-form-urlencoded":
        text = _utf8(await _body(request), "body")
        for pair in text.split("&") if text else []:
            if not pair:
                continue
            raw_name, _, raw_value = pair.partition("=")
            name = _utf8(unquote_to_bytes(raw_name.replace("+", " ")), "body")
            _add(form, name, _utf8(unquote_to_bytes(raw_value.replace("+", " ")), name or "body"))
        return form
    if "boundary" not in request.headers.get("Content-Type", ""):
        raise BadBody(400, "body", "multipart 表单缺少 boundary 参数")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BadBody(413, "body", f"请求体过大（上限 {MAX_BODY // 1024} KB）")
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                raise BadBody(400, "body", "表单中有无法识别的部分")
            if part.filename is not None:
                raise BadBody(400, part.name, f"{part.name} 不接受文件上传")
            raw = bytearray()
            while chunk := await part.read_chunk(8192):
                raw += chunk
                total += len(chunk)
                if total > MAX_BODY:
                    raise BadBody(413, "body", f"请求体过大（上限 {MAX_BODY // 1024} KB）")
                if len(raw) > 4 * MAX_FIELD:
                    raise BadBody(413, part.name, f"{part.name} 过长（上限 {MAX_FIELD} 个字符）")
            _add(form, part.name, _utf8(bytes(part.decode(bytes(raw))), part.name))
    except (BadBody, web.HTTPException):
        raise
    except Exception as exc:  # aiohttp's multipart parser raises several kinds for a truncated or garbled body
        raise BadBody(400, "body", f"multipart 表单格式错误：{type(exc).__name__}") from None
    return form


def _json_constant(name: str):
    raise ValueError(f"{name} 不是合法的数字")


async def read_json_object(request: web.Request) -> dict:
    """A JSON object from the body (UTF-8). Numbers keep their text (no float overflow, no NaN); an empty body is
    {}. Raises BadBody otherwise."""
    text = _utf8(await _body(request), "body")
    if not text.strip():
        return {}
    try:
        doc = json.loads(text, parse_float=Decimal, parse_constant=_json_constant)
    except (ValueError, RecursionError) as exc:
        raise BadBody(400, "body", f"不是合法的 JSON：{str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise BadBody(400, "body", "应为 JSON 对象")
    return doc


def refuse_hidden_characters(form) -> None:
    """BadBody (422) naming the first field whose text holds a control, bidi or zero-width character."""
    for name, value in form.items():
        for item in value if isinstance(value, list) else [value]:
            problem = text_problem(item) if isinstance(item, str) else None
            if problem:
                raise BadBody(422, name, f"{name}{problem}")


def wants_json(request: web.Request) -> bool:
    return (
        request.path.startswith("/admin/api/")
        or request.content_type == "application/json"
        or request.headers.get("Accept", "").startswith("application/json")
    )


@web.middleware
async def bad_bodies(request: web.Request, handler):
    """Answers BadBody from any handler: ``{"errors": {field: rule}}`` for API callers, a page for browsers."""
    try:
        return await handler(request)
    except BadBody as exc:
        if wants_json(request):
            return web.json_response({"errors": {exc.field: exc.rule}}, status=exc.status)
        return message(exc.status, "请求无法处理", f"{exc.field}：{exc.rule}")
