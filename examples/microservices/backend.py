"""Back-end of the micro-services tutorial: reads a price in CAD per line, answers it in
USD (fixed rate 0.73). Listens on port 3000 of its own hostname."""
import socket
import socketserver

RATE = 0.73


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().strip()
        try:
            cad = float(line or 0)
        except ValueError:
            self.wfile.write(b"expected a number\n")
            return
        self.wfile.write(("%.2f\n" % (cad * RATE)).encode())


socketserver.ThreadingTCPServer.allow_reuse_address = True
print("backend: listening on %s:3000" % socket.gethostname(), flush=True)
socketserver.ThreadingTCPServer(("0.0.0.0", 3000), Handler).serve_forever()
