#!/usr/bin/env python3
"""simplebank: a tiny HTTP API over PostgreSQL (python3 stdlib + psycopg2).

Connects to the database named by DB_SOURCE (a libpq URI such as
postgresql://root:secret@postgres12:5432/simple_bank?sslmode=disable),
retrying while the database starts, then serves on 0.0.0.0:8080 (or $PORT):

  GET /accounts   JSON: the accounts table, plus where the data came from
                  (SELECT version(), inet_server_addr(), current_database())
  GET /healthz    "ok" once a query succeeds
"""

import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import psycopg2

DB_SOURCE = os.environ.get(
    "DB_SOURCE", "postgresql://root:secret@postgres12:5432/simple_bank?sslmode=disable"
)
PORT = int(os.environ.get("PORT", "8080"))
DB_HOST = urlsplit(DB_SOURCE).hostname or "localhost"


def resolver():
    """The container's DNS server (tether's embedded DNS on user-defined networks)."""
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return parts[1]
    except OSError:
        pass
    return None


def log(msg):
    print(f"simplebank: {msg}", file=sys.stderr, flush=True)


def connect(deadline_s=120.0):
    """Connects to DB_SOURCE, retrying while the name or the server is not up yet."""
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            conn = psycopg2.connect(DB_SOURCE, connect_timeout=3)
            conn.autocommit = True
            log(f"connected to {DB_HOST} after {attempt} attempt(s)")
            return conn
        except psycopg2.OperationalError as e:
            if time.monotonic() - start > deadline_s:
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            log(f"database not ready ({first}); retrying")
            time.sleep(0.5)


class Db:
    """One shared connection, reopened if the server went away."""

    def __init__(self):
        self.conn = connect()

    def query(self, sql, args=()):
        for retry in (True, False):
            try:
                with self.conn.cursor() as cur:
                    cur.execute(sql, args)
                    cols = [c.name for c in cur.description]
                    return [dict(zip(cols, row)) for row in cur.fetchall()]
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                if not retry:
                    raise
                log("connection lost; reconnecting")
                self.conn = connect(deadline_s=10)


db = None


class Handler(BaseHTTPRequestHandler):
    server_version = "simplebank/1.0"

    def send_json(self, code, obj):
        body = (json.dumps(obj, indent=2, default=str) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urlsplit(self.path).path
        try:
            if path == "/healthz":
                db.query("SELECT 1 AS ok")
                self.send_json(200, "ok")
            elif path in ("/accounts", "/"):
                meta = db.query(
                    "SELECT version() AS server_version,"
                    " host(inet_server_addr()) AS server_addr,"
                    " current_database() AS database, current_user AS db_user"
                )[0]
                accounts = db.query(
                    "SELECT id, owner, balance, currency, created_at"
                    " FROM accounts ORDER BY id"
                )
                self.send_json(
                    200,
                    {
                        "db_host": DB_HOST,
                        "db_host_resolves_to": socket.gethostbyname(DB_HOST),
                        "resolver": resolver(),
                        **meta,
                        "accounts": accounts,
                        "total_balance": sum(a["balance"] for a in accounts),
                    },
                )
            else:
                self.send_json(404, {"error": f"no route for {path}"})
        except Exception as e:  # report, keep serving
            log(f"GET {path}: {e!r}")
            self.send_json(500, {"error": str(e)})

    def log_message(self, fmt, *args):
        log("%s %s" % (self.address_string(), fmt % args))


def main():
    global db
    log(f"connecting to {DB_HOST} ({DB_SOURCE.split('@')[-1]})")
    db = Db()
    httpd = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    log(f"listening on 0.0.0.0:{PORT}")
    httpd.serve_forever()


if __name__ == "__main__":
    main()
