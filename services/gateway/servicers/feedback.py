"""``tailorline.v1.FeedbackService``: streamed events -> the importer, one transaction per batch.

Before an event reaches the importer (whose bounds on values - the date window, magnitudes, id
lengths - are the ones that count, :mod:`services.ingest.spec`), the RPC's own bounds are checked
here, once per event (docs/api.md, *Input bounds*): every string field (ids, dates, kinds) holds
at most :data:`MAX_EVENT_TEXT_CHARS` characters and no control character, every floating-point
field is finite. An event outside them is rejected on its own (an ``EventError``, never the
stream) without a copy of its megabytes going anywhere; every error repeats at most a short, cut
echo of what was sent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import unicodedata
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from tailorline.v1 import feedback_service_pb2 as fb_pb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc

from services.common.errors import InvalidArgument, clip, shown
from services.gateway.feedback import ID_COLUMNS, Event, FeedbackSummary, record_batch
from services.store.schema import ID

#: Longest string in any event field: ids, dates and kinds all fit the store's id columns.
MAX_EVENT_TEXT_CHARS = ID
#: Longest event id, field and reason an ``EventError`` repeats.
MAX_ERROR_ID_CHARS = 81
MAX_ERROR_FIELD_CHARS = 64
MAX_ERROR_REASON_CHARS = 300

log = logging.getLogger("tailorline.gateway")


_EVENT_TABLES = {
    "order": "orders",
    "production": "production",
    "review": "reviews",
    "market_signal": "market",
}


_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def event_problem(body: Message) -> tuple[str, str] | None:
    """``(field, reason)`` of the first field of an event outside the RPC's bounds, or None."""
    for fd, value in body.ListFields():
        if fd.type == FieldDescriptor.TYPE_STRING:
            if len(value) > MAX_EVENT_TEXT_CHARS:
                reason = f"{len(value)} characters; at most {MAX_EVENT_TEXT_CHARS}: {shown(value)}"
                return fd.name, reason
            if any(unicodedata.category(ch) == "Cc" for ch in value):
                return fd.name, f"holds a control character: {shown(value)}"
        elif fd.type in _FLOATS and not math.isfinite(value):
            return fd.name, f"must be a finite number, got {value}"
    return None


def _event_id(kind: str, body: Message) -> str:
    """The id an ``EventError`` names (cut short)."""
    if kind == "market_signal":
        text = f"{getattr(body, 'week', '')}/{getattr(body, 'family_id', '')}"
    else:
        text = str(getattr(body, ID_COLUMNS[_EVENT_TABLES[kind]], ""))
    return clip(text, MAX_ERROR_ID_CHARS)


def event_error(index: int, event_id: str, field: str, reason: str) -> fb_pb.EventError:
    """An ``EventError`` whose texts are cut to their bounds."""
    return fb_pb.EventError(
        index=index,
        event_id=clip(event_id, MAX_ERROR_ID_CHARS),
        field=clip(field, MAX_ERROR_FIELD_CHARS),
        reason=clip(reason, MAX_ERROR_REASON_CHARS),
    )


def event_row(msg: fb_pb.RecordEventsRequest) -> tuple[str, dict[str, Any]] | None:
    kind = msg.WhichOneof("event")
    if kind is None:
        return None
    body = getattr(msg, kind)
    row = json_format.MessageToDict(
        body, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    if kind == "order":
        row["promo"] = int(body.promo)
        row["quantity"] = int(body.quantity)
    if kind == "production":
        row["quantity"], row["scrap"] = int(body.quantity), int(body.scrap)
    # empty strings are missing values for the importer
    row = {k: (None if v == "" else v) for k, v in row.items()}
    return _EVENT_TABLES[kind], row


class FeedbackServicer(fb_grpc.FeedbackServiceServicer):
    """``on_orders()`` runs after a stream stored orders (the retrain trigger; it must return at
    once: it schedules work, never does it)."""

    def __init__(
        self,
        engine: Any,
        core: Any,
        *,
        batch_size: int,
        max_events: int,
        on_orders: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.core = core
        self.batch_size = batch_size
        self.max_events = max_events
        self.on_orders = on_orders

    async def RecordEvents(
        self, request_iterator: AsyncIterator[fb_pb.RecordEventsRequest], context: Any
    ) -> fb_pb.RecordEventsResponse:
        total = FeedbackSummary()
        batch: list[Event] = []
        refused: list[fb_pb.EventError] = []  # empty, or outside the RPC's bounds
        index = 0
        orders_stored = False

        async def flush() -> None:
            nonlocal orders_stored
            if batch:
                part = await asyncio.to_thread(record_batch, list(batch), self.engine, self.core)
                total.add(part)
                orders_stored |= part.stored > 0 and any(e.table == "orders" for e in batch)
                batch.clear()

        async for msg in request_iterator:
            if index >= self.max_events:
                raise InvalidArgument(
                    f"more than {self.max_events} events in one stream", field="events"
                )
            kind = msg.WhichOneof("event")
            problem = event_problem(getattr(msg, kind)) if kind is not None else None
            parsed = event_row(msg) if problem is None else None
            if parsed is not None:
                batch.append(Event(index, *parsed))
                if len(batch) >= self.batch_size:
                    await flush()
            elif kind is None:
                refused.append(event_error(index, "", "event", "empty event"))
            elif problem is not None:
                refused.append(event_error(index, _event_id(kind, getattr(msg, kind)), *problem))
            index += 1
        await flush()
        if orders_stored and self.on_orders is not None:
            try:
                self.on_orders()
            except Exception:  # the trigger never fails the feedback that set it off
                log.exception("retrain trigger: scheduling failed")
        errors = [event_error(e.index, e.event_id, e.field, e.reason) for e in total.errors]
        errors = sorted([*errors, *refused], key=lambda e: e.index)
        return fb_pb.RecordEventsResponse(
            received=index,
            stored=total.stored,
            duplicates=total.duplicates,
            rejected=total.rejected + len(refused),
            errors=errors,
        )
