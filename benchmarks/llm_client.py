"""LLM-call throughput: the reference's one-request-at-a-time loop against lmdelta's ChatClient.

A fake OpenAI-compatible chat-completions server (standard library, 127.0.0.1, background
thread) answers each request after --latency seconds and enforces a rate limit of
--server-rps requests per second (token bucket, one second of burst), replying HTTP 429 with
Retry-After beyond it, as vendors' per-minute limits do. The same --requests judge requests
(distinct short user messages) are then run three ways, one after the other:

  a. sequential — one request at a time, as the reference's label and judge loops did;
  b. ChatClient — concurrent (--concurrency), retry with backoff and Retry-After, cold cache;
  c. ChatClient again on the warm cache — what a resumed or repeated run costs.

With --compare-no-pause, b is also run with the limiter's shared Retry-After pause switched off
(each request only backs off on its own), on a fresh cache.

    .venv/bin/python benchmarks/llm_client.py [--requests 1000] [--concurrency 32] [--server-rps 100]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:
    import httpx
except ImportError:  # this workplace's environment ships the same API as `httpx2`
    import httpx2 as httpx

from lmdelta.llm.cache import ResponseCache
from lmdelta.llm.client import ChatClient
from lmdelta.llm.limiter import ConcurrencyLimiter
from lmdelta.llm.pricing import Budget, CostLedger
from lmdelta.llm.retry import RetryPolicy
from lmdelta.llm.types import ChatRequest, ChatResponse, Message, ProviderError, Usage

MODEL = "bench-judge"


class ServerState:
    """Counters and the token bucket of the fake server; shared by its handler threads."""

    def __init__(self, latency: float, rps: float) -> None:
        self.latency = latency
        self.rps = rps
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens, self.refilled = self.rps, time.monotonic()
            self.received = self.rejected = self.in_flight = self.peak = 0

    def admit(self) -> float | None:
        """None if the request may proceed, else the seconds until the bucket has a token."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rps, self.tokens + (now - self.refilled) * self.rps)
            self.refilled = now
            self.received += 1
            if self.tokens < 1:
                self.rejected += 1
                return (1 - self.tokens) / self.rps
            self.tokens -= 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return None

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """A deterministic judge answer for the request's last message."""
    content = body["messages"][-1]["content"]
    score = int(hashlib.sha256(content.encode()).hexdigest(), 16) % 101
    usage = {"prompt_tokens": len(content.split()) + 12, "completion_tokens": 3}
    return {
        "id": "bench",
        "object": "chat.completion",
        "model": body["model"],
        "usage": usage,
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": f"Score: {score}"}}
        ],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real API servers
    disable_nagle_algorithm = True  # else headers and body, written apart, wait ~40 ms for a delayed ACK

    def do_POST(self) -> None:
        state: ServerState = self.server.state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        wait = state.admit()
        if wait is not None:
            error = {"error": {"type": "rate_limit_exceeded", "message": "Rate limit reached"}}
            self.reply(429, error, {"Retry-After": str(max(1, math.ceil(wait)))})
            return
        try:
            time.sleep(state.latency)
            answer = completion(body)
        finally:
            state.done()
        self.reply(200, answer)

    def reply(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            **(headers or {}),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # quiet: 429s would flood the terminal
        pass


def start_server(state: ServerState) -> ThreadingHTTPServer:
    ThreadingHTTPServer.request_queue_size = 256
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.state = state
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class BenchProvider:
    """A minimal OpenAI-compatible adapter for this benchmark only (the real one lives in llm.providers)."""

    name = "openai-compatible"

    def __init__(self, base_url: str, model: str = MODEL) -> None:
        self.base_url = base_url
        self.model = model
        self._client: httpx.AsyncClient | None = None

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url}

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if self._client is None:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
            self._client = httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=60.0)
        body = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        try:
            response = await self._client.post("/chat/completions", json=body)
        except httpx.TimeoutException as err:
            raise ProviderError("timeout", f"timed out: {type(err).__name__}") from err
        except httpx.TransportError as err:
            raise ProviderError("transient", f"connection failed: {type(err).__name__}") from err
        raise_for_status(response)
        data = response.json()
        choice, usage = data["choices"][0], data["usage"]
        return ChatResponse(
            text=choice["message"]["content"],
            finish_reason=choice["finish_reason"],
            usage=Usage(usage["prompt_tokens"], usage["completion_tokens"]),
            model=data["model"],
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    retry_after = float(response.headers["Retry-After"]) if "Retry-After" in response.headers else None
    kind = (
        "rate_limit"
        if status == 429
        else "transient"
        if status >= 500
        else "auth"
        if status in (401, 403)
        else "not_found"
        if status == 404
        else "bad_request"
    )
    raise ProviderError(kind, f"HTTP {status}", retry_after=retry_after, status=status)


def judge_requests(n: int) -> list[ChatRequest]:
    topics = ["the ocean", "tax law", "a birthday party", "quantum computing", "bread baking", "chess openings"]
    texts = [
        f"Hypothesis: model B writes more formally. Text #{i}, about {topics[i % len(topics)]}: "
        f"'Here is my answer number {i}.' How well does the text fit the hypothesis? Reply 'Score: N', N in 0-100."
        for i in range(n)
    ]
    return [ChatRequest(messages=(Message("user", text),), max_tokens=8) for text in texts]


def run_sequential(base_url: str, requests: list[ChatRequest]) -> list[str]:
    """One request at a time; a 429 (never expected here) waits Retry-After and tries again."""
    texts = []
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        for request in requests:
            body = {
                "model": MODEL,
                "max_tokens": request.max_tokens,
                "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            }
            while (response := client.post("/chat/completions", json=body)).status_code == 429:
                time.sleep(float(response.headers.get("Retry-After", "1")))
            texts.append(response.json()["choices"][0]["message"]["content"])
    return texts


def measure(name: str, state: ServerState, work) -> tuple[dict[str, Any], Any]:
    state.reset()
    start = time.perf_counter()
    output = work()
    seconds = time.perf_counter() - start
    row = {
        "variant": name,
        "seconds": round(seconds, 2),
        "server_calls": state.received,
        "http_429": state.rejected,
        "peak_server_concurrency": state.peak,
    }
    return row, output


def client_row(row: dict[str, Any], results, ledger: CostLedger, before: dict[str, Any]) -> dict[str, Any]:
    total = ledger.total().to_dict()
    row.update(
        ok=sum(r.ok for r in results),
        failed=sum(not r.ok for r in results),
        cached_hits=total["cached"] - before["cached"],
        cost_usd=round(total["cost_usd"] - before["cost_usd"], 6),
    )
    return row


class NoPauseLimiter(ConcurrencyLimiter):
    def pause(self, seconds: float) -> None:
        pass


def build_client(base_url: str, cache: ResponseCache, limiter: ConcurrencyLimiter) -> ChatClient:
    ledger = CostLedger({f"openai-compatible/{MODEL}": {"input": 0.15, "output": 0.60}})  # gpt-4o-mini's price
    return ChatClient(
        BenchProvider(base_url),
        cache=cache,
        ledger=ledger,
        budget=Budget(None),
        limiter=limiter,
        retry=RetryPolicy(seed=0),
    ).with_labels(stage="validate", role="judge")


def run_client(
    name: str, client: ChatClient, state: ServerState, requests: list[ChatRequest], expected: list[str]
) -> dict[str, Any]:
    before = client.ledger.total().to_dict()
    row, results = measure(name, state, lambda: client.run(requests))
    assert [r.text for r in results] == expected, "ChatClient answers differ from the baseline"
    return client_row(row, results, client.ledger, before)


def main() -> None:
    args = parse_args()
    state = ServerState(args.latency, args.server_rps)
    server = start_server(state)
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    requests = judge_requests(args.requests)
    row, expected = measure("a. sequential (reference)", state, lambda: run_sequential(base_url, requests))
    rows = [{**row, "ok": len(expected), "failed": 0, "cached_hits": 0, "cost_usd": None}]
    with tempfile.TemporaryDirectory() as tmp:
        with ResponseCache(Path(tmp) / "llm.sqlite") as cache:
            client = build_client(base_url, cache, ConcurrencyLimiter(args.concurrency, "openai-compatible"))
            rows.append(run_client("b. ChatClient, cold cache", client, state, requests, expected))
            rows.append(run_client("c. ChatClient, warm cache", client, state, requests, expected))
            ledger = client.ledger.to_dict()
        if args.compare_no_pause:
            with ResponseCache(Path(tmp) / "other.sqlite") as cache:
                other = build_client(base_url, cache, NoPauseLimiter(args.concurrency, "openai-compatible"))
                rows.append(run_client("b without the shared pause", other, state, requests, expected))
    server.shutdown()
    report(rows, ledger, args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32, help="ChatClient's limit of calls in flight")
    parser.add_argument("--server-rps", type=float, default=100.0, help="the fake server's rate limit")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the fake server takes per answer")
    parser.add_argument(
        "--compare-no-pause", action="store_true", help="also run b with the shared Retry-After pause off (~15 s more)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llm_client.json")
    return parser.parse_args()


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def report(rows: list[dict[str, Any]], ledger: dict[str, Any], args: argparse.Namespace) -> None:
    speedup = round(rows[0]["seconds"] / rows[1]["seconds"], 1)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    record = {
        "benchmark": "llm_client",
        "date": time.strftime("%Y-%m-%d"),
        "machine": cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "settings": settings,
        "results": rows,
        "speedup_cold": speedup,
        "ledger": ledger,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("| variant | seconds | server calls | HTTP 429 | peak in flight | ok | failed | cached hits | cost USD |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cost = "—" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
        print(
            f"| {r['variant']} | {r['seconds']} | {r['server_calls']} | {r['http_429']} | "
            f"{r['peak_server_concurrency']} | {r['ok']} | {r['failed']} | {r['cached_hits']} | {cost} |"
        )
    print(f"\nSpeed-up of b over a: {speedup}x. JSON: {args.out}")


if __name__ == "__main__":
    main()
