#!/usr/bin/env python3
"""A rate-limited TCP proxy for benchmarks (issue #19), Python 3 standard library only.

    python3 benches/throttle_proxy.py --upstream 9000 --rate 100e6 --stats proxy.json

Listens on 127.0.0.1 (a free port unless --port is given; the port is written to --port-file
and into the stats file), forwards every connection to 127.0.0.1:UPSTREAM, and limits the
upstream -> client byte rate with ONE token bucket shared by all connections (--rate bytes/s;
0 = unlimited; --burst bytes of credit, default 1 MiB = 10 ms at 100 MB/s, which absorbs the
event loop's timer jitter: with 64 KiB a single stream only reached 86 MB/s of 100).

Forwarding is byte for byte; HTTP is only parsed on the side, to count. Each connection's
client -> upstream stream is read as a sequence of HTTP/1.1 requests (request line + headers, then
a Content-Length body), so a request is counted once even when split across reads, and body bytes
are never mistaken for request lines. The upstream -> client stream is read as the matching
responses (no body after HEAD, 1xx, 204 or 304; else Content-Length or chunked), which splits the
bytes received into header bytes and payload bytes. A stream that does not parse switches that
connection to "unparsed" (reported; its bytes still count in the totals).

Counters (connections, peak concurrent connections, requests in total and per method, responses
per status, bytes in each direction, payload and header bytes of the responses) go to the --stats
JSON file (written atomically) every --interval seconds, on SIGUSR1 (with "dumps" incremented, so
a caller can wait for a fresh copy), and on SIGTERM/SIGINT before exiting. With --log FILE, one
line per request is appended (time, connection number, request line, Range header).

Buffers are bounded: each direction reads at most one chunk and waits for the peer to drain
before reading the next.
"""

import argparse
import asyncio
import collections
import json
import os
import signal
import sys
import time

METHODS = (b"GET", b"HEAD", b"PUT", b"POST", b"DELETE", b"OPTIONS", b"PATCH")
MAX_HEADER = 1 << 20  # a message head larger than this is not HTTP as we know it


class TokenBucket:
    """One shared bucket: `take(n)` returns when n bytes may be sent at `rate` bytes/s on average,
    allowing bursts of at most `burst` bytes. Implemented as a virtual clock (GCRA): `tat` is when
    the bucket would be full again if nothing more were sent."""

    def __init__(self, rate, burst):
        self.rate = float(rate)
        self.burst = float(burst)
        self.tat = time.monotonic()
        self.waited = 0.0

    async def take(self, n):
        if self.rate <= 0:
            return
        now = time.monotonic()
        self.tat = max(self.tat, now) + n / self.rate
        wait = self.tat - self.burst / self.rate - now
        if wait > 0:
            self.waited += wait
            await asyncio.sleep(wait)


class Stats:
    def __init__(self, args):
        self.args = args
        self.started = time.time()
        self.port = None
        self.connections = 0
        self.open = 0
        self.peak_open = 0
        self.requests = 0
        self.by_method = {}
        self.by_status = {}
        self.unparsed_connections = 0
        self.bytes_up = 0  # client -> upstream
        self.bytes_down = 0  # upstream -> client
        self.payload_down = 0  # response bodies
        self.header_down = 0  # response status lines + headers (+ chunk framing)
        self.dumps = 0
        self.errors = 0
        # One line per request (time, connection number, request line, Range header), if asked.
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def snapshot(self, bucket):
        return {
            "port": self.port,
            "upstream": self.args.upstream,
            "rate": self.args.rate,
            "burst": self.args.burst,
            "uptime_s": round(time.time() - self.started, 3),
            "connections": self.connections,
            "open_connections": self.open,
            "peak_open_connections": self.peak_open,
            "requests": self.requests,
            "requests_by_method": dict(sorted(self.by_method.items())),
            "responses_by_status": dict(sorted(self.by_status.items())),
            "unparsed_connections": self.unparsed_connections,
            "bytes_client_to_upstream": self.bytes_up,
            "bytes_upstream_to_client": self.bytes_down,
            "payload_bytes_upstream_to_client": self.payload_down,
            "header_bytes_upstream_to_client": self.header_down,
            "throttle_wait_s": round(bucket.waited, 3),
            "connection_errors": self.errors,
            "dumps": self.dumps,
        }

    def write(self, bucket, bump=False):
        if bump:
            self.dumps += 1
        if not self.args.stats:
            return
        tmp = self.args.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.snapshot(bucket), f, indent=1)
            f.write("\n")
        os.replace(tmp, self.args.stats)


class Unparsed(Exception):
    pass


def headers_of(head):
    """(first line, {lower-case name: value}) of a message head ending in CRLF CRLF."""
    lines = head.split(b"\r\n")
    fields = {}
    for h in lines[1:]:
        name, sep, value = h.partition(b":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return lines[0], fields


class MessageStream:
    """Splits one direction of an HTTP/1.1 connection into messages, incrementally: `feed` takes
    whatever bytes arrived, `on_head(head)` is called for each complete head and returns how the
    body is framed: ("length", n) or ("chunked", None)."""

    def __init__(self, stats):
        self.stats = stats
        self.buf = bytearray()  # a head, or a chunk-size line, being assembled
        self.state = "head"  # head | body | chunk-size | chunk-data | chunk-crlf | trailer
        self.left = 0
        self.unparsed = False

    def feed(self, data):
        if self.unparsed:
            return
        try:
            self._feed(data)
        except (Unparsed, ValueError):
            self.unparsed = True
            self.stats.unparsed_connections += 1

    def _line(self, data, i, end_mark):
        """Append data[i:] to buf until end_mark; returns (index after it, complete?)."""
        old = len(self.buf)
        self.buf += data[i:]
        end = self.buf.find(end_mark, max(0, old - len(end_mark) + 1))
        if end < 0:
            if len(self.buf) > MAX_HEADER:
                raise Unparsed()
            return len(data), False
        del self.buf[end + len(end_mark) :]  # bytes after the mark are fed again by the caller
        return i + end + len(end_mark) - old, True

    def _feed(self, data):
        i, n = 0, len(data)
        while i < n:
            if self.state in ("body", "chunk-data"):
                k = min(self.left, n - i)
                self.count_body(k)
                self.left -= k
                i += k
                if self.left == 0:
                    self.state = "head" if self.state == "body" else "chunk-crlf"
                continue
            if self.state == "head" and not self.buf:
                # Tolerate stray CRLFs between messages.
                while i < n and data[i] in b"\r\n":
                    self.count_head(1)
                    i += 1
                if i == n:
                    return
            mark = b"\r\n\r\n" if self.state in ("head", "trailer") else b"\r\n"
            j, done = self._line(data, i, mark)
            if not done:
                self.count_head(j - i)
                return
            self.count_head(j - i)
            i = j
            piece = bytes(self.buf)
            self.buf.clear()
            if self.state == "head":
                framing, size = self.on_head(piece)
                if framing == "chunked":
                    self.state = "chunk-size"
                elif size > 0:
                    self.state, self.left = "body", size
            elif self.state == "chunk-size":
                size = int(piece.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    self.state = "trailer"
                    # The trailer section is empty in practice: its end is the CRLF that follows.
                    self.buf += b"\r\n"
                else:
                    self.state, self.left = "chunk-data", size
            elif self.state == "chunk-crlf":
                if piece != b"\r\n":
                    raise Unparsed()
                self.state = "chunk-size"
            elif self.state == "trailer":
                self.state = "head"

    def count_head(self, k):
        pass

    def count_body(self, k):
        pass

    def on_head(self, head):
        raise NotImplementedError


class Requests(MessageStream):
    def __init__(self, stats, conn, methods):
        super().__init__(stats)
        self.conn = conn
        self.methods = methods  # shared with the responses of this connection

    def on_head(self, head):
        line, fields = headers_of(head)
        method = line.split(b" ", 1)[0]
        if method not in METHODS:
            raise Unparsed()
        self.methods.append(method)
        self.stats.requests += 1
        m = method.decode()
        self.stats.by_method[m] = self.stats.by_method.get(m, 0) + 1
        if self.stats.log is not None:
            rng = fields.get(b"range", b"").decode(errors="replace")
            self.stats.log.write(
                f"{time.time():.3f} {self.conn} {line.decode(errors='replace')} {rng}\n"
            )
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            return "chunked", None
        return "length", int(fields.get(b"content-length", b"0") or 0)


class Responses(MessageStream):
    def __init__(self, stats, methods):
        super().__init__(stats)
        self.methods = methods

    def count_head(self, k):
        self.stats.header_down += k

    def count_body(self, k):
        self.stats.payload_down += k

    def on_head(self, head):
        line, fields = headers_of(head)
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise Unparsed()
        status = int(parts[1])
        self.stats.by_status[str(status)] = self.stats.by_status.get(str(status), 0) + 1
        if 100 <= status < 200:
            return "length", 0  # an interim response; the request's own response follows
        method = self.methods.popleft() if self.methods else b"GET"
        if method == b"HEAD" or status in (204, 304):
            return "length", 0
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            return "chunked", None
        if b"content-length" not in fields:
            raise Unparsed()  # a body up to the close: not counted as payload
        return "length", int(fields[b"content-length"])


async def pump(reader, writer, chunk, on_data, bucket=None):
    try:
        while True:
            data = await reader.read(chunk)
            if not data:
                break
            if bucket is not None:
                await bucket.take(len(data))
            on_data(data)
            writer.write(data)
            await writer.drain()  # bounded: at most one chunk (+ transport high-water) in flight
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def handle(client_r, client_w, args, stats, bucket):
    stats.connections += 1
    stats.open += 1
    stats.peak_open = max(stats.peak_open, stats.open)
    methods = collections.deque()
    requests = Requests(stats, stats.connections, methods)
    responses = Responses(stats, methods)
    up_w = None
    try:
        up_r, up_w = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", args.upstream), timeout=10
        )

        def up(data):
            stats.bytes_up += len(data)
            requests.feed(data)

        def down(data):
            stats.bytes_down += len(data)
            responses.feed(data)

        # Throttled pieces are small so that the shared bucket interleaves connections finely.
        down_chunk = args.chunk if args.rate > 0 else max(args.chunk, 256 << 10)
        await asyncio.gather(
            pump(client_r, up_w, 256 << 10, up),
            pump(up_r, client_w, down_chunk, down, bucket),
        )
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        stats.errors += 1
    finally:
        stats.open -= 1
        for w in (client_w, up_w):
            if w is not None:
                w.close()


async def main(args):
    stats = Stats(args)
    bucket = TokenBucket(args.rate, args.burst)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args, stats, bucket), "127.0.0.1", args.port
    )
    stats.port = server.sockets[0].getsockname()[1]
    stats.write(bucket)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{stats.port}\n")
        os.replace(tmp, args.port_file)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lambda: stats.write(bucket, bump=True))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"throttle_proxy: 127.0.0.1:{stats.port} -> 127.0.0.1:{args.upstream}, "
        + (f"rate {args.rate:g} B/s, burst {args.burst:g} B" if args.rate > 0 else "unlimited"),
        file=sys.stderr,
        flush=True,
    )
    async with server:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=args.interval)
            except asyncio.TimeoutError:
                stats.write(bucket)
    stats.write(bucket, bump=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", type=int, required=True, help="upstream port on 127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    p.add_argument("--port-file", help="write the listening port here once ready")
    p.add_argument("--rate", type=float, default=0, help="upstream->client bytes/s (0: unlimited)")
    p.add_argument(
        "--burst", type=float, default=1 << 20, help="token bucket depth in bytes (default 1 MiB)"
    )
    p.add_argument("--chunk", type=int, default=64 << 10, help="largest piece read at once")
    p.add_argument("--stats", help="JSON counters file")
    p.add_argument("--log", help="append one line per request (time, connection, line, Range)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between stats writes")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
