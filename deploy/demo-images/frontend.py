"""The demo's Redis frontend (seed 004): ``GET /set?value=X`` stores X in Redis, ``GET /`` shows it.

It stands in for the talk's ``superguenter/node-redis-demo`` and runs on Debian's python3.11-minimal alone (no
http.server there), so it speaks HTTP/1.0 and Redis' protocol by hand. It listens on ``$PORT0`` (Marathon's first
host port; ``$PORT``, then 8080 otherwise) and finds Redis at ``$REDIS_HOST`` (``redis.marathon.mesos`` through
Mesos-DNS in the demo) and ``$REDIS_PORT`` (6379).
"""

import os
import socket
import threading
from urllib.parse import parse_qs, urlsplit

KEY = "mesolite-demo"


def redis(*args):
    """One command, one reply (simple strings, bulk strings, errors)."""
    host = os.environ.get("REDIS_HOST", "localhost")
    port = int(os.environ.get("REDIS_PORT", "6379"))
    with socket.create_connection((host, port), timeout=5) as conn:
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        conn.sendall(payload.encode())
        reader = conn.makefile("rb")
        line = reader.readline().decode().rstrip("\r\n")
        if line.startswith("-"):
            raise RuntimeError(line[1:])
        if line.startswith("$"):
            size = int(line[1:])
            return None if size < 0 else reader.read(size + 2)[:-2].decode()
        return line[1:]


def respond(conn, status, body):
    data = body.encode()
    head = f"HTTP/1.0 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(data)}\r\n\r\n"
    conn.sendall(head.encode() + data)


def handle(conn):
    with conn:
        try:
            request = conn.makefile("rb").readline().decode(errors="replace").split()
            if len(request) < 2 or request[0] != "GET":
                respond(conn, "405 Method Not Allowed", "GET only\n")
                return
            url = urlsplit(request[1])
            if url.path == "/set":
                value = parse_qs(url.query).get("value", [""])[0]
                respond(conn, "200 OK", f"{redis('SET', KEY, value)}\n")
            elif url.path == "/":
                value = redis("GET", KEY)
                respond(conn, "200 OK", f"<html><body><h1>Redis says: {value or '(nothing yet)'}</h1></body></html>\n")
            else:
                respond(conn, "404 Not Found", "not found\n")
        except (OSError, RuntimeError, ValueError) as exc:
            respond(conn, "503 Service Unavailable", f"Redis is not reachable: {exc}\n")


def main():
    port = int(os.environ.get("PORT0") or os.environ.get("PORT") or 8080)
    server = socket.create_server(("0.0.0.0", port), reuse_port=False)
    print(f"frontend on port {port}, Redis at {os.environ.get('REDIS_HOST', 'localhost')}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
