#!/usr/bin/env python3
"""Streaming benchmark client: CONCURRENCY keep-alive connections, each POSTing streaming
chat completions back to back for DURATION seconds against bench/sse_upstream.py, directly
or through a proxy (plain HTTP or TLS, certificate not checked: the RA-TLS verification
is tested elsewhere, here only the proxy's cost matters).

Per stream it records the time to first event (request written -> first `data:` event
read) and, per event, the transit time: arrival (CLOCK_MONOTONIC) minus the `t=<ns>` the
upstream wrote into the event just before sending it. The first stream of each connection
is a warm-up (the proxy opens its upstream connection then) and is not counted.
Prints one JSON object: ttfe_us, transit_us (lists), streams, events, incomplete.
"""

import argparse
import asyncio
import json
import re
import ssl
import time

T_RE = re.compile(rb'"content":"t=(\d+)"')


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def body_pieces(reader, headers):
    """Yields the body's bytes as they arrive, undoing chunked framing."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readline()
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]
    elif "content-length" in headers:
        yield await reader.readexactly(int(headers["content-length"]))
    else:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data


async def one_stream(reader, writer, host, path, body):
    req = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
           f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    t0 = time.monotonic_ns()
    writer.write(req)
    await writer.drain()
    status, headers = await read_head(reader)
    if status != 200:
        raise RuntimeError(f"status {status}")
    ttfe, transits, buf, done = None, [], b"", False
    async for piece in body_pieces(reader, headers):
        now = time.monotonic_ns()
        buf += piece
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if not ev.startswith(b"data:"):
                continue
            if ev.strip() == b"data: [DONE]":
                done = True
                continue
            m = T_RE.search(ev)
            if m:
                if ttfe is None:
                    ttfe = now - t0
                transits.append(now - int(m.group(1)))
    keep = "close" not in headers.get("connection", "").lower() and (
        "chunked" in headers.get("transfer-encoding", "").lower() or "content-length" in headers)
    return ttfe, transits, done, keep


async def worker(a, deadline, out):
    ctx = None
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    body = json.dumps({"model": a.name, "stream": True, "max_tokens": 50,
                       "messages": [{"role": "user", "content": "Count to fifty."}]}).encode()
    first = True
    conn = None
    while time.monotonic() < deadline:
        if conn is None:
            conn = await asyncio.open_connection(a.host, a.port, ssl=ctx)
        reader, writer = conn
        try:
            ttfe, transits, done, keep = await one_stream(reader, writer, a.host, a.path, body)
        except (RuntimeError, ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            out["errors"].append(str(e))
            writer.close()
            conn = None
            await asyncio.sleep(0.05)
            continue
        if not keep:
            writer.close()
            conn = None
        if first:
            first = False
            continue
        out["streams"] += 1
        if not done or len(transits) != a.events:
            out["incomplete"] += 1
        if ttfe is not None:
            out["ttfe_us"].append(round(ttfe / 1000, 1))
        out["transit_us"].extend(round(t / 1000, 1) for t in transits)
    if conn:
        conn[1].close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--path", default="/v1/chat/completions")
    ap.add_argument("--name", default="tiny")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--events", type=int, default=50)
    a = ap.parse_args()
    out = {"streams": 0, "incomplete": 0, "errors": [], "ttfe_us": [], "transit_us": []}
    deadline = time.monotonic() + a.duration
    await asyncio.gather(*(worker(a, deadline, out) for _ in range(a.concurrency)))
    out["events"] = len(out["transit_us"])
    out["errors"] = out["errors"][:20]
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
