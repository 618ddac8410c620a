"""Traces and logs of a tailorline process: the one set-up each ``serve()`` calls.

* :func:`setup_tracing` installs an OpenTelemetry SDK tracer provider named after the process
  (``service.name``). Spans always get real trace ids (they go into log lines and error details);
  they leave the process only when an OTLP endpoint is set (``TAILORLINE_OTLP_ENDPOINT``, a gRPC
  collector such as ``http://otel-collector:4317``): then a batch processor exports them. Without
  one nothing is exported and a span costs a few microseconds.
* :func:`setup_logging` puts the current trace and span ids on every log record
  (:class:`TraceContextFilter`) and writes either the usual text lines, with ``trace=<id>``
  added, or one JSON object per line (:class:`JsonFormatter`; ``--log-format json`` or
  ``TAILORLINE_LOG_FORMAT=json``).
* :func:`current_trace_id` is the id of the span in progress (``"-"`` outside one), for error
  details.

Plain Python and the OpenTelemetry API/SDK; the OTLP exporter (which speaks gRPC) is imported
only when an endpoint is set.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any, Literal

from opentelemetry import trace

OTLP_ENDPOINT_ENV = "TAILORLINE_OTLP_ENDPOINT"
LOG_FORMAT_ENV = "TAILORLINE_LOG_FORMAT"
LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace=%(trace_id)s] %(message)s"
NO_TRACE = "-"
#: Record attributes the JSON formatter writes itself or leaves out.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "trace_id",
    "span_id",
    "taskName",
}


def current_trace_id() -> str:
    """The 32-hex trace id of the span in progress, ``"-"`` outside a recorded one."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else NO_TRACE


def current_span_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else NO_TRACE


class TraceContextFilter(logging.Filter):
    """Sets ``record.trace_id`` / ``record.span_id`` (``"-"`` outside a span). A handler
    filter: it sees every record the handler writes, whichever logger made it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            record.trace_id = current_trace_id()
            record.span_id = current_span_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``trace_id``, ``span_id``, any ``extra=`` fields, and ``exc`` with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", NO_TRACE),
            "span_id": getattr(record, "span_id", NO_TRACE),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = (
                    value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
                )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def log_format_from_env(default: LogFormat = "text") -> LogFormat:
    value = os.environ.get(LOG_FORMAT_ENV, default).strip().lower()
    return "json" if value == "json" else "text"


def setup_logging(level: str = "INFO", fmt: LogFormat | None = None) -> logging.Handler:
    """The root logger writes to stderr in ``fmt`` (default: ``TAILORLINE_LOG_FORMAT``, else
    text), every line with its trace id. Replaces the root's handlers; returns the new one."""
    fmt = fmt or log_format_from_env()
    handler = logging.StreamHandler()
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def setup_tracing(service_name: str, endpoint: str | None = None) -> Any:
    """Install (once per process) an SDK tracer provider for ``service_name``; with an OTLP
    ``endpoint`` (default ``TAILORLINE_OTLP_ENDPOINT``) its spans are exported in batches. Returns
    the provider (``shutdown()`` flushes it), or the one already installed."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    endpoint = endpoint if endpoint is not None else os.environ.get(OTLP_ENDPOINT_ENV, "")
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=_insecure(endpoint)))
        )
        logging.getLogger("tailorline.telemetry").info(
            "%s: exporting traces over OTLP to %s", service_name, endpoint
        )
    trace.set_tracer_provider(provider)
    return provider


def _insecure(endpoint: str) -> bool:
    """Plaintext unless the endpoint says https (a collector in the cluster usually has no TLS)."""
    return not endpoint.startswith("https://")


def tracer(name: str = "tailorline") -> trace.Tracer:
    return trace.get_tracer(name)


#: Statements not worth a span of their own (transaction bookkeeping).
_BOOKKEEPING = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA"}
#: Longest SQL text a store span carries (the statement, never its parameters).
MAX_STATEMENT_CHARS = 300


def trace_engine(engine: Any) -> None:
    """A CLIENT span per SQL statement ``engine`` runs (``db.system``, ``db.operation``,
    ``db.statement`` without parameters), named like ``INSERT plan_lines``: a plan's load and
    save show as the statements they are, inside the RPC's trace. Idempotent."""
    from sqlalchemy import event

    if getattr(engine, "_tailorline_traced", False):
        return
    engine._tailorline_traced = True
    system = engine.dialect.name
    spans = tracer("tailorline.store")

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if not trace.get_current_span().get_span_context().is_valid:
            return  # store work outside a traced call (health checks, loop metrics): no root spans
        if statement.split(None, 1)[:1] and statement.split(None, 1)[0].upper() in _BOOKKEEPING:
            return
        span = spans.start_span(
            _statement_name(statement),
            kind=trace.SpanKind.CLIENT,
            attributes={
                "db.system": system,
                "db.operation": statement.split(None, 1)[0].upper() if statement else "",
                "db.statement": statement[:MAX_STATEMENT_CHARS],
                "db.executemany": bool(many),
            },
        )
        conn.info.setdefault("_tl_spans", []).append(span)

    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        stack = conn.info.get("_tl_spans")
        if stack:
            span = stack.pop()
            rows = getattr(cursor, "rowcount", -1)
            if isinstance(rows, int) and rows >= 0:
                span.set_attribute("db.rows", rows)
            span.end()

    def failed(context: Any) -> None:
        conn = context.connection
        stack = conn.info.get("_tl_spans") if conn is not None else None
        if stack:
            span = stack.pop()
            span.set_status(
                trace.Status(trace.StatusCode.ERROR, type(context.original_exception).__name__)
            )
            span.end()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


def _statement_name(statement: str) -> str:
    """``INSERT plan_lines``, ``SELECT plans``: the operation and the first table named."""
    words = statement.replace("(", " ").replace(",", " ").split()
    if not words:
        return "SQL"
    op = words[0].upper()
    keyword = {"INSERT": "INTO", "DELETE": "FROM", "SELECT": "FROM", "UPDATE": None}.get(op, "")
    table = ""
    if op == "UPDATE" and len(words) > 1:
        table = words[1]
    elif keyword:
        upper = [w.upper() for w in words]
        if keyword in upper and upper.index(keyword) + 1 < len(words):
            table = words[upper.index(keyword) + 1]
    return f"{op} {table.strip(chr(34))}".strip()
