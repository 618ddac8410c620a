"""``tailorline.v1.FeedbackService``: streamed events -> the importer, one transaction per batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf import json_format
from tailorline.v1 import feedback_service_pb2 as fb_pb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc

from services.common.errors import InvalidArgument
from services.gateway.feedback import Event, FeedbackSummary, record_batch

log = logging.getLogger("tailorline.gateway")


_EVENT_TABLES = {
    "order": "orders",
    "production": "production",
    "review": "reviews",
    "market_signal": "market",
}


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
        empty: list[fb_pb.EventError] = []
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
            parsed = event_row(msg)
            if parsed is None:
                empty.append(fb_pb.EventError(index=index, field="event", reason="empty event"))
            else:
                batch.append(Event(index, *parsed))
                if len(batch) >= self.batch_size:
                    await flush()
            index += 1
        await flush()
        if orders_stored and self.on_orders is not None:
            try:
                self.on_orders()
            except Exception:  # the trigger never fails the feedback that set it off
                log.exception("retrain trigger: scheduling failed")
        errors = [
            fb_pb.EventError(index=e.index, event_id=e.event_id, field=e.field, reason=e.reason)
            for e in total.errors
        ]
        errors = sorted([*errors, *empty], key=lambda e: e.index)
        return fb_pb.RecordEventsResponse(
            received=index,
            stored=total.stored,
            duplicates=total.duplicates,
            rejected=total.rejected + len(empty),
            errors=errors,
        )
