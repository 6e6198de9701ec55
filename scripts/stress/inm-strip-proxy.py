#!/usr/bin/env python3
"""A loopback HTTP reverse proxy that drops every If-None-Match (and If-Match) request header,
so an S3 server behind it behaves like a store that ignores conditional writes: a create-only
PUT overwrites. For the format-2 drills (scripts/stress/gc-safety.sh), which must stay safe on
such stores.

usage: inm-strip-proxy.py UPSTREAM_PORT [LISTEN_PORT=0]
Prints "port N" on stdout once listening (N is the chosen port), then serves until killed;
on SIGTERM/SIGINT it prints how many requests it forwarded and how many headers it dropped.

The upstream must not check request signatures (SigV4 signs If-None-Match): use moto_server,
not s3s-fs. Only 127.0.0.1.
"""
import http.client
import http.server
import signal
import socketserver
import sys
import threading

UPSTREAM = ("127.0.0.1", int(sys.argv[1]))
LISTEN = int(sys.argv[2]) if len(sys.argv) > 2 else 0
DROP = {"if-none-match", "if-match"}
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
stats = {"requests": 0, "dropped": 0}
lock = threading.Lock()
local = threading.local()


def upstream():
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = http.client.HTTPConnection(*UPSTREAM, timeout=300)
        local.conn = conn
    return conn


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def forward(self):
        data = self.body()
        headers = {}
        dropped = 0
        for k, v in self.headers.items():
            lk = k.lower()
            if lk in DROP:
                dropped += 1
                continue
            if lk in HOP or lk == "content-length":
                continue
            headers[k] = v
        if data or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(data))
        with lock:
            stats["requests"] += 1
            stats["dropped"] += dropped
        for attempt in (0, 1):
            conn = upstream()
            try:
                conn.request(self.command, self.path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                local.conn = None
                if attempt:
                    raise
        self.send_response_only(resp.status, resp.reason)
        length = str(len(payload))
        for k, v in resp.getheaders():
            if k.lower() == "content-length":
                # A HEAD answer has no body but tells the object's size.
                if self.command == "HEAD":
                    length = v
                continue
            if k.lower() in HOP:
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients killed mid-request (the drills SIGKILL them) are expected.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", LISTEN), Handler)

    def stop(*_):
        print(f"forwarded {stats['requests']} requests, dropped {stats['dropped']} conditional headers", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


main()
