"""Scripted HTTP servers on 127.0.0.1 that speak the OpenAI, Anthropic and Gemini wire formats,
so provider adapters are tested through the real SDKs without touching the network.

A script is a list of steps, consumed one per request (then `responder`, if given, answers by content):
    ("json", status, body)  or  ("json", status, body, headers)   answer with a JSON body
    ("raw", status, bytes)  or  ("raw", status, bytes, headers)   answer with these bytes (malformed JSON)
    ("delay", seconds)                                            wait before the next answer (timeouts)
When the script runs out, or a request hits a path the wire format does not serve, the server
answers 599 and records the failure; `check()` (called on leaving the `with` block) raises it.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROUTES = {
    "openai": re.compile(r"^/v1/chat/completions$"),
    "anthropic": re.compile(r"^/v1/messages$"),
    "gemini": re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$"),
}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it is not JSON


@dataclass
class ScriptedServer:
    wire: str
    script: list[tuple]
    requests: list[Received] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    responder: Any = None  # after the script: a function Received -> step, for servers that answer by content

    def __post_init__(self) -> None:
        self._steps = list(self.script)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type, *_: object) -> None:
        self.close()
        if exc_type is None:
            self.check()

    def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping in a ("delay", …) step
        self._httpd.shutdown()
        self._httpd.server_close()

    def check(self) -> None:
        if self.failures:
            raise AssertionError("scripted server: " + "; ".join(self.failures))

    @property
    def last(self) -> Received:
        assert self.requests, "the server received no request"
        return self.requests[-1]

    def next_answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """The step that answers this request (after sleeping through any delays)."""
        if not ROUTES[self.wire].match(path):
            return self._fail(f"{self.wire} server got an unexpected path {path!r}")
        delay = 0.0
        with self._lock:
            while self._steps and self._steps[0][0] == "delay":
                delay += float(self._steps.pop(0)[1])
            if not self._steps and self.responder is not None:
                return _render(self.responder(self.requests[-1]))
            if not self._steps:
                return self._fail(f"script ran out at request {len(self.requests)} ({path})")
            step = self._steps.pop(0)
        if delay:
            self._closing.wait(delay)
        return _render(step)

    def _fail(self, message: str) -> tuple[int, bytes, dict[str, str]]:
        self.failures.append(message)
        body = json.dumps({"error": {"message": f"lmdelta test server: {message}", "type": "script_exhausted"}})
        return 599, body.encode(), {"content-type": "application/json"}


def _render(step: tuple) -> tuple[int, bytes, dict[str, str]]:
    kind, status, payload, *rest = step
    headers = {"content-type": "application/json", **(rest[0] if rest else {})}
    if kind == "json":
        return int(status), json.dumps(payload).encode(), headers
    if kind == "raw":
        return int(status), payload if isinstance(payload, bytes) else str(payload).encode(), headers
    raise ValueError(f"unknown script step {kind!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        # A client that timed out has closed its socket before a delayed answer; that is expected.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length).decode("utf-8", "replace")
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw
            path = self.path.split("?", 1)[0]
            server.requests.append(Received("POST", path, {k.lower(): v for k, v in self.headers.items()}, body))
            status, payload, headers = server.next_answer(path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST

        def log_message(self, *_: object) -> None:  # keep test output quiet
            pass

    return Handler


def openai_server(*script: tuple) -> ScriptedServer:
    return ScriptedServer("openai", list(script))


def anthropic_server(*script: tuple) -> ScriptedServer:
    return ScriptedServer("anthropic", list(script))


def gemini_server(*script: tuple) -> ScriptedServer:
    return ScriptedServer("gemini", list(script))


# ---- canonical 200 bodies of each wire format ----

def openai_reply(text: str = "hello", *, model: str = "gpt-test-2025", finish_reason: str = "stop",
                 prompt_tokens: int = 12, completion_tokens: int = 3,
                 logprobs: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """`logprobs`: per generated token, {token: logprob} with the chosen token first."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason,
                              "message": {"role": "assistant", "content": text}, "logprobs": None}
    if logprobs is not None:
        content = []
        for alternatives in logprobs:
            (token, lp), *_ = alternatives.items()
            content.append({"token": token, "logprob": lp, "bytes": list(token.encode()),
                            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())}
                                             for t, v in alternatives.items()]})
        choice["logprobs"] = {"content": content, "refusal": None}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def openai_error(status: int, message: str, *, type_: str = "invalid_request_error",
                 code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def anthropic_reply(text: str = "hello", *, model: str = "claude-test", stop_reason: str = "end_turn",
                    input_tokens: int = 20, output_tokens: int = 4) -> dict[str, Any]:
    return {"id": "msg_test", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}


def anthropic_error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def gemini_reply(text: str = "hello", *, finish_reason: str = "STOP", prompt_tokens: int = 9,
                 output_tokens: int = 2, model_version: str = "gemini-test-001",
                 logprobs: list[dict[str, float]] | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}] if text else []},
                                 "finishReason": finish_reason, "index": 0}
    if logprobs is not None:
        candidate["logprobsResult"] = {
            "chosenCandidates": [dict(zip(("token", "logProbability"), next(iter(a.items())))) for a in logprobs],
            "topCandidates": [{"candidates": [{"token": t, "logProbability": v} for t, v in a.items()]}
                              for a in logprobs]}
    return {"candidates": [candidate], "modelVersion": model_version,
            "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
                              "totalTokenCount": prompt_tokens + output_tokens}}


def gemini_error(code: int, status: str, message: str, details: list[dict] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": details or []}}
