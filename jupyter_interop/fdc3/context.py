"""Helpers that build the standard FDC3 2.2 context types (docs/FDC3.md).

One function per type of FINOS's ``@finos/fdc3-context`` schemas, named in snake_case
(``fdc3.timeRange`` is :func:`time_range`). Each takes the type's fields as keyword arguments
(``None`` leaves a field out, ``**extra`` adds any other), returns a plain ``dict`` ready for
``broadcast``, ``raise_intent`` or a shared context, and checks it against the type's published
schema first: a helper never returns a context another FDC3 app would refuse, and bad input
raises :class:`MalformedContext` naming the field and the schema rule.

Times may be given as ISO 8601 strings or timezone-aware ``datetime`` objects; FDC3 times carry
their offset, so a naive ``datetime`` is refused rather than guessed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..client.errors import MalformedContext
from .schemas import validate_context

__all__ = [
    "CONTEXT_HELPERS",
    "Context",
    "action",
    "chart",
    "chat_init_settings",
    "chat_message",
    "chat_room",
    "chat_search_criteria",
    "contact",
    "contact_list",
    "country",
    "currency",
    "email",
    "file_attachment",
    "instrument",
    "instrument_list",
    "interaction",
    "message",
    "nothing",
    "order",
    "order_list",
    "organization",
    "portfolio",
    "position",
    "product",
    "time_range",
    "trade",
    "trade_list",
    "transaction_result",
    "valuation",
]

#: an FDC3 context: a JSON object with a string ``type``
Context = dict[str, Any]
Ids = Mapping[str, str]
Time = str | _dt.datetime


def _time(value: Time | None, field: str) -> str | None:
    """An ISO 8601 string with an offset, from a string or an aware datetime."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise MalformedContext(
                f"{field} is a naive datetime; FDC3 times carry a timezone "
                "(use datetime.now(timezone.utc) or .astimezone())",
                path=f"/{field}",
            )
        return value.isoformat()
    return value


def _context(context_type: str, fields: Mapping[str, Any], extra: Mapping[str, Any]) -> Context:
    """The context of ``context_type`` with the fields that are not None, validated."""
    context: Context = {"type": context_type}
    for key, value in fields.items():
        if value is not None:
            context[key] = dict(value) if isinstance(value, Mapping) else value
    context.update(extra)
    return validate_context(context)


def _ids(id: Ids | None, **named: str | None) -> dict[str, str] | None:
    """An ``id`` object from a mapping plus named identifiers (None ones left out)."""
    ids = dict(id or {})
    ids.update({key: value for key, value in named.items() if value is not None})
    return ids or None


# ---------------------------------------------------------------- instruments and holdings


def instrument(
    ticker: str | None = None,
    *,
    name: str | None = None,
    id: Ids | None = None,
    market: Mapping[str, str] | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.instrument``: ``instrument("AAPL")`` or ``instrument(id={"ISIN": ...})``."""
    ids = _ids(id, ticker=ticker) or {}
    return _context("fdc3.instrument", {"id": ids, "name": name, "market": market}, extra)


def instrument_list(
    instruments: Sequence[Context],
    *,
    name: str | None = None,
    id: Ids | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.instrumentList``: several instruments."""
    fields = {"instruments": list(instruments), "name": name, "id": id}
    return _context("fdc3.instrumentList", fields, extra)


def position(
    instrument: Context,
    holding: float,
    *,
    name: str | None = None,
    id: Ids | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.position``: a holding (a quantity, negative when short) of one instrument."""
    fields = {"instrument": instrument, "holding": holding, "name": name, "id": id}
    return _context("fdc3.position", fields, extra)


def portfolio(
    positions: Sequence[Context],
    *,
    name: str | None = None,
    id: Ids | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.portfolio``: a list of positions."""
    return _context("fdc3.portfolio", {"positions": list(positions), "name": name, "id": id}, extra)


def valuation(
    value: float,
    currency: str,
    *,
    price: float | None = None,
    valuation_time: Time | None = None,
    expiry_time: Time | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.valuation``: a value in a currency (ISO 4217 code, ``"USD"``)."""
    fields = {
        "value": value,
        "CURRENCY_ISOCODE": currency,
        "price": price,
        "valuationTime": _time(valuation_time, "valuationTime"),
        "expiryTime": _time(expiry_time, "expiryTime"),
    }
    return _context("fdc3.valuation", fields, extra)


def product(
    id: Ids, *, name: str | None = None, instrument: Context | None = None, **extra: Any
) -> Context:
    """``fdc3.product``: a product, by the ids of some system, maybe with its instrument."""
    return _context("fdc3.product", {"id": id, "name": name, "instrument": instrument}, extra)


def order(
    id: Ids,
    *,
    name: str | None = None,
    details: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.order``: an order, by the ids of some system (``details.product`` optional)."""
    return _context("fdc3.order", {"id": id, "name": name, "details": details}, extra)


def order_list(
    orders: Sequence[Context], *, name: str | None = None, id: Ids | None = None, **extra: Any
) -> Context:
    """``fdc3.orderList``: several orders."""
    return _context("fdc3.orderList", {"orders": list(orders), "name": name, "id": id}, extra)


def trade(id: Ids, product: Context, *, name: str | None = None, **extra: Any) -> Context:
    """``fdc3.trade``: an executed trade of a product."""
    return _context("fdc3.trade", {"id": id, "product": product, "name": name}, extra)


def trade_list(
    trades: Sequence[Context], *, name: str | None = None, id: Ids | None = None, **extra: Any
) -> Context:
    """``fdc3.tradeList``: several trades."""
    return _context("fdc3.tradeList", {"trades": list(trades), "name": name, "id": id}, extra)


def currency(code: str, *, name: str | None = None, **extra: Any) -> Context:
    """``fdc3.currency``: by ISO 4217 code (``"EUR"``)."""
    return _context("fdc3.currency", {"id": {"CURRENCY_ISOCODE": code}, "name": name}, extra)


# ---------------------------------------------------------------- people and organisations


def contact(
    email: str | None = None,
    *,
    name: str | None = None,
    id: Ids | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.contact``: a person, by e-mail address and/or other ids (``FDS_ID``)."""
    ids = _ids(id, email=email) or {}
    return _context("fdc3.contact", {"id": ids, "name": name}, extra)


def contact_list(
    contacts: Sequence[Context], *, name: str | None = None, id: Ids | None = None, **extra: Any
) -> Context:
    """``fdc3.contactList``: several contacts."""
    return _context("fdc3.contactList", {"contacts": list(contacts), "name": name, "id": id}, extra)


def organization(id: Ids, *, name: str | None = None, **extra: Any) -> Context:
    """``fdc3.organization``: by ``LEI``, ``PERMID`` or ``FDS_ID`` (at least one)."""
    return _context("fdc3.organization", {"id": id, "name": name}, extra)


def country(
    iso_alpha2: str | None = None,
    *,
    iso_alpha3: str | None = None,
    name: str | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.country``: by ISO 3166 code (``"GB"`` or ``iso_alpha3="GBR"``)."""
    ids = _ids(None, COUNTRY_ISOALPHA2=iso_alpha2, COUNTRY_ISOALPHA3=iso_alpha3) or {}
    return _context("fdc3.country", {"id": ids, "name": name}, extra)


def email(
    recipients: Context, *, subject: str | None = None, text_body: str | None = None, **extra: Any
) -> Context:
    """``fdc3.email``: an e-mail to write, to a contact or a contact list."""
    fields = {"recipients": recipients, "subject": subject, "textBody": text_body}
    return _context("fdc3.email", fields, extra)


def interaction(
    participants: Context,
    time_range: Context,
    interaction_type: str,
    description: str,
    *,
    initiator: Context | None = None,
    origin: str | None = None,
    id: Ids | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.interaction``: a meeting, call, e-mail or message with contacts, for a CRM."""
    fields = {
        "participants": participants,
        "timeRange": time_range,
        "interactionType": interaction_type,
        "description": description,
        "initiator": initiator,
        "origin": origin,
        "id": id,
    }
    return _context("fdc3.interaction", fields, extra)


# ---------------------------------------------------------------- charts, times, actions


def time_range(start: Time | None = None, end: Time | None = None, **extra: Any) -> Context:
    """``fdc3.timeRange``: a start, an end, or both (ISO 8601 with an offset)."""
    fields = {"startTime": _time(start, "startTime"), "endTime": _time(end, "endTime")}
    return _context("fdc3.timeRange", fields, extra)


def chart(
    instruments: Sequence[Context],
    *,
    range: Context | None = None,
    style: str | None = None,
    other_config: Sequence[Context] | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.chart``: instruments to plot, over a time range, in a style (``"line"``...)."""
    fields = {
        "instruments": list(instruments),
        "range": range,
        "style": style,
        "otherConfig": None if other_config is None else list(other_config),
    }
    return _context("fdc3.chart", fields, extra)


def action(
    title: str,
    context: Context,
    *,
    action: str | None = None,
    intent: str | None = None,
    channel_id: str | None = None,
    app: Mapping[str, str] | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.action``: a button's worth of FDC3: broadcast ``context`` or raise ``intent``."""
    fields = {
        "title": title,
        "context": context,
        "action": action,
        "intent": intent,
        "channelId": channel_id,
        "app": app,
    }
    return _context("fdc3.action", fields, extra)


def transaction_result(
    status: str, *, context: Context | None = None, message: str | None = None, **extra: Any
) -> Context:
    """``fdc3.transactionResult``: ``Created``, ``Deleted``, ``Updated`` or ``Failed``."""
    fields = {"status": status, "context": context, "message": message}
    return _context("fdc3.transactionResult", fields, extra)


def nothing(**extra: Any) -> Context:
    """``fdc3.nothing``: no context (an intent raised without one, or an empty result)."""
    return _context("fdc3.nothing", {}, extra)


# ---------------------------------------------------------------- chat and messages


def message(
    text: str | None = None,
    *,
    markdown: str | None = None,
    entities: Mapping[str, Context] | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.message``: plain and/or markdown text, with entities (actions, attachments)."""
    forms = (("text/plain", text), ("text/markdown", markdown))
    body = {mime: value for mime, value in forms if value is not None}
    return _context("fdc3.message", {"text": body or None, "entities": entities}, extra)


def file_attachment(name: str, data_uri: str, **extra: Any) -> Context:
    """``fdc3.fileAttachment``: a file as a ``data:`` URI."""
    return _context("fdc3.fileAttachment", {"data": {"name": name, "dataUri": data_uri}}, extra)


def chat_room(
    provider_name: str,
    id: Ids,
    *,
    url: str | None = None,
    name: str | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.chat.room``: a room of a chat provider."""
    fields = {"providerName": provider_name, "id": id, "url": url, "name": name}
    return _context("fdc3.chat.room", fields, extra)


def chat_message(chat_room: Context, message: Context, **extra: Any) -> Context:
    """``fdc3.chat.message``: a message to post in a room."""
    return _context("fdc3.chat.message", {"chatRoom": chat_room, "message": message}, extra)


def chat_init_settings(
    *,
    chat_name: str | None = None,
    members: Context | None = None,
    message: str | Context | None = None,
    options: Mapping[str, bool] | None = None,
    **extra: Any,
) -> Context:
    """``fdc3.chat.initSettings``: a chat to open, with members and a first message."""
    fields = {"chatName": chat_name, "members": members, "message": message, "options": options}
    return _context("fdc3.chat.initSettings", fields, extra)


def chat_search_criteria(criteria: Sequence[Context | str], **extra: Any) -> Context:
    """``fdc3.chat.searchCriteria``: contexts and free-text strings to search chats for."""
    return _context("fdc3.chat.searchCriteria", {"criteria": list(criteria)}, extra)


#: FDC3 context type -> the helper that builds it
CONTEXT_HELPERS = {
    "fdc3.action": action,
    "fdc3.chart": chart,
    "fdc3.chat.initSettings": chat_init_settings,
    "fdc3.chat.message": chat_message,
    "fdc3.chat.room": chat_room,
    "fdc3.chat.searchCriteria": chat_search_criteria,
    "fdc3.contact": contact,
    "fdc3.contactList": contact_list,
    "fdc3.country": country,
    "fdc3.currency": currency,
    "fdc3.email": email,
    "fdc3.fileAttachment": file_attachment,
    "fdc3.instrument": instrument,
    "fdc3.instrumentList": instrument_list,
    "fdc3.interaction": interaction,
    "fdc3.message": message,
    "fdc3.nothing": nothing,
    "fdc3.order": order,
    "fdc3.orderList": order_list,
    "fdc3.organization": organization,
    "fdc3.portfolio": portfolio,
    "fdc3.position": position,
    "fdc3.product": product,
    "fdc3.timeRange": time_range,
    "fdc3.trade": trade,
    "fdc3.tradeList": trade_list,
    "fdc3.transactionResult": transaction_result,
    "fdc3.valuation": valuation,
}
