#!/usr/bin/env python3
"""A paced SSE upstream for the streaming benchmark (nginx cannot pace events).

Every POST gets an OpenAI-style chat.completion.chunk stream: EVENTS events INTERVAL_MS
apart on an absolute schedule (event i is due at receipt + i*interval, so a late wake-up
does not shift the rest), chunked transfer encoding, then a usage chunk (`choices: []`)
when the request asked for `stream_options.include_usage`, then `data: [DONE]`. Each
event's `delta.content` is `t=<CLOCK_MONOTONIC ns at write>`: clients on the same host
subtract it from their arrival time to get the event's transit time through whatever sits
in between. (It sits in the content, not an extra field, so a proxy that re-serialises
chunks keeps it.)

GET /health -> 200, GET /v1/models -> the served model, so the agent can supervise this as
its engine (bench/fake-engine). Standard library asyncio on raw streams; HTTP/1.1 keep-alive.
"""

import argparse
import asyncio
import json
import time

EVENTS = 50
INTERVAL_MS = 20


def chunk(body):
    return b"%x\r\n%s\r\n" % (len(body), body)


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await reader.readexactly(n) if n else b""
    return method, path, headers, body


def simple(status, body, ctype="application/json"):
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)


async def sse(writer, name, include_usage):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
    start = time.monotonic_ns()
    for i in range(EVENTS):
        due = start + i * INTERVAL_MS * 1_000_000
        delay = (due - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        ev = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
              "model": name, "choices": [{"index": 0, "delta": {"content": f"t={time.monotonic_ns()}"},
                                          "finish_reason": "stop" if i == EVENTS - 1 else None}]}
        writer.write(chunk(b"data: " + json.dumps(ev, separators=(",", ":")).encode() + b"\n\n"))
        await writer.drain()
    if include_usage:
        u = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
             "model": name, "choices": [],
             "usage": {"prompt_tokens": 12, "completion_tokens": EVENTS, "total_tokens": 12 + EVENTS}}
        writer.write(chunk(b"data: " + json.dumps(u, separators=(",", ":")).encode() + b"\n\n"))
    writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    await writer.drain()


async def serve_conn(reader, writer, name):
    try:
        while True:
            try:
                method, path, headers, body = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if method == "GET" and path == "/health":
                writer.write(simple("200 OK", b""))
            elif method == "GET" and path == "/v1/models":
                writer.write(simple("200 OK", json.dumps(
                    {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "bench"}]}).encode()))
            elif method == "POST":
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    req = {}
                include = bool((req.get("stream_options") or {}).get("include_usage"))
                await sse(writer, name, include)
            else:
                writer.write(simple("404 Not Found", b'{"error":"not found"}'))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="tiny")
    a = ap.parse_args()
    server = await asyncio.start_server(lambda r, w: serve_conn(r, w, a.name), a.host, a.port,
                                        backlog=1024)
    print(f"sse_upstream: listening on {a.host}:{a.port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
