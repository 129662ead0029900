"""hems-loadgen's HTTP/1.1 client on the response framings hemsd never sends (chunked
bodies, bodies delimited by the close, Connection: close between keep-alive requests,
100 Continue), against a small raw-socket HTTP server in this file. The load scenarios
themselves are tested against a real hemsd in test_loadgen*.py."""
import os
import socket
import socketserver
import threading
import unittest

from test_loadgen import LOADGEN, Report, run_loadgen
from hemsd import BIN_DIR


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        buf = b""
        sock = self.request
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            n = 0
            for line in lines[1:]:
                k, v = line.split(":", 1)
                if k.strip().lower() == "content-length":
                    n = int(v)
            while len(buf) < n:
                buf += sock.recv(65536)
            buf = buf[n:]
            body = b"ok\n" * 100
            if path == "/chunked":
                out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                for i in range(0, len(body), 70):
                    c = body[i:i + 70]
                    out += b"%x;ext=1\r\n" % len(c) + c + b"\r\n"
                out += b"0\r\nX-Trailer: 1\r\n\r\n"
                # dribble the answer in small writes to exercise partial reads
                for i in range(0, len(out), 97):
                    sock.sendall(out[i:i + 97])
            elif path == "/until-close":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
                sock.shutdown(socket.SHUT_WR)
                return
            elif path == "/conn-close":
                sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                             % len(body) + body)
                return
            elif path == "/continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            elif path == "/http10":
                sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                return
            else:
                sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class HttpClient(Report):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(("127.0.0.1", 0), Handler)
        cls.port = cls.srv.server_address[1]
        cls.thread = threading.Thread(target=cls.srv.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()
        cls.srv.server_close()

    def run_path(self, path, keepalive, sessions=40):
        r, _ = run_loadgen(self.port, "--scenario", "healthz", "--healthz-path", path,
                           "--concurrency", 4, "--sessions", sessions, "--keepalive", keepalive)
        self.assert_no_errors(r)
        self.assertEqual(r["sessions"]["ok"], sessions)
        self.assertEqual(r["exchanges"]["count"], sessions * keepalive)
        self.assertEqual(r["http_status"], {"200": sessions * keepalive})
        return r

    def test_chunked_keep_alive(self):
        r = self.run_path("/chunked", 3)
        self.assertEqual(r["connects"], 40)
        self.assertGreaterEqual(r["bytes"]["received"], 40 * 3 * 300)

    def test_body_until_close(self):
        r = self.run_path("/until-close", 1)
        self.assertEqual(r["connects"], 40)

    def test_connection_close_reconnects(self):
        # keep-alive was asked, the server closes after each answer: one connection per request
        r = self.run_path("/conn-close", 3)
        self.assertEqual(r["connects"], 40 * 3)

    def test_http10_reconnects(self):
        r = self.run_path("/http10", 2)
        self.assertEqual(r["connects"], 40 * 2)

    def test_100_continue_skipped(self):
        self.run_path("/continue", 2)


if __name__ == "__main__":
    if not os.path.exists(LOADGEN):
        print("hems-loadgen not found in", BIN_DIR)
        raise SystemExit(1)
    unittest.main(verbosity=2)
