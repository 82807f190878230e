"""Front-end of the micro-services tutorial: asks which product to buy, asks the back-end
(BACKEND_HOST, by name) to convert its price, and answers in USD. Port 10000."""
import os
import socket
import socketserver

PRICES = {"1": 2025, "2": 1200, "3": 5000}
BACKEND = os.environ.get("BACKEND_HOST", "backend")


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"Which product you wish to buy ?\n1. A laptop\n2. A PC\n3. A server\n")
        cad = PRICES.get(self.rfile.readline().decode().strip())
        if cad is None:
            self.wfile.write(b"unknown product\n")
            return
        with socket.create_connection((BACKEND, 3000), timeout=5) as b:
            b.sendall(b"%d\n" % cad)
            usd = b.makefile().readline().strip()
        self.wfile.write(("Today your item costs %s USD\n" % usd).encode())


socketserver.ThreadingTCPServer.allow_reuse_address = True
print("frontend: listening on :10000, back-end at %s:3000" % BACKEND, flush=True)
socketserver.ThreadingTCPServer(("0.0.0.0", 10000), Handler).serve_forever()
