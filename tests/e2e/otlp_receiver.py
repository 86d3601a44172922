"""A test OTLP/HTTP receiver: takes what the gateway exports to
`/v1/traces`, `/v1/logs` and `/v1/metrics` (OTLP JSON) and decodes every
post with the official protobuf definitions (`opentelemetry-proto`'s
`Export*ServiceRequest` messages, through `google.protobuf.json_format`,
which refuses unknown fields and wrong types). OTLP JSON writes trace and
span ids as hex where the protobuf JSON mapping has base64
(`opentelemetry-proto` `docs/specification.md`, JSON Protobuf Encoding), so
ids are turned into base64 before decoding, as an OTLP receiver does.

A post that does not decode is answered 400 and kept in `errors`; the
e2e checks fail on any.
"""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

MESSAGES = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
}
ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _ids_to_base64(value):
    if isinstance(value, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode() if k in ID_FIELDS and isinstance(v, str)
                    else _ids_to_base64(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_ids_to_base64(v) for v in value]
    return value


class Receiver:
    """Runs on 127.0.0.1 in a thread; `posts` holds (signal, headers, raw body, JSON)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict, bytes, dict]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def body(self) -> bytes:
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length", "0") or 0))

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.body()
                signal = self.path.rsplit("/", 1)[-1]
                message = MESSAGES.get(signal) if self.path.startswith("/v1/") else None
                try:
                    if message is None:
                        raise ValueError(f"no OTLP signal at {self.path}")
                    if self.headers.get("content-type", "").split(";")[0] != "application/json":
                        raise ValueError(f"content-type {self.headers.get('content-type')!r}")
                    doc = json.loads(body)
                    json_format.Parse(json.dumps(_ids_to_base64(doc)), message())
                except Exception as e:  # every failure is the test's to see
                    with receiver.lock:
                        receiver.errors.append(f"{self.path}: {e}: {body[:300]!r}")
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.posts.append((signal, {k.lower(): v for k, v in self.headers.items()}, body, doc))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()

    def _of(self, signal: str) -> list[dict]:
        with self.lock:
            return [doc for s, _, _, doc in self.posts if s == signal]

    def spans(self, trace_id: str) -> list[dict]:
        return [span for doc in self._of("traces") for rs in doc.get("resourceSpans", [])
                for ss in rs.get("scopeSpans", []) for span in ss.get("spans", []) if span.get("traceId") == trace_id]

    def logs(self, trace_id: str) -> list[dict]:
        return [rec for doc in self._of("logs") for rl in doc.get("resourceLogs", [])
                for sl in rl.get("scopeLogs", []) for rec in sl.get("logRecords", []) if rec.get("traceId") == trace_id]

    def metrics(self, name: str) -> list[dict]:
        """Every data point of metric `name`, from every post."""
        points = []
        for doc in self._of("metrics"):
            for rm in doc.get("resourceMetrics", []):
                for sm in rm.get("scopeMetrics", []):
                    for m in sm.get("metrics", []):
                        if m.get("name") == name:
                            data = m.get("histogram") or m.get("sum") or {}
                            points += data.get("dataPoints", [])
        return points

    def everything(self) -> list[tuple[dict, bytes]]:
        with self.lock:
            return [(h, b) for _, h, b, _ in self.posts]


def attrs(item: dict) -> dict:
    """An item's attributes as a plain dict (values as their JSON form)."""
    out = {}
    for a in item.get("attributes", []):
        v = a.get("value", {})
        out[a["key"]] = next(iter(v.values()), None) if v else None
    return out
