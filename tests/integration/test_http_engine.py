"""The HTTP/1.1 engine of a real hemsd: keep-alive, chunked, pipelining, limits, timeouts,
connection-table sizing, reload and graceful shutdown."""
import os
import signal
import socket
import subprocess
import time
import unittest

from hemsd import Hemsd, connect, read_response, http_request, is_closed, main, BIN_DIR

FAST_TIMEOUTS = """
[http]
header_timeout_ms = 600
body_timeout_ms = 600
idle_timeout_ms = 1500
shutdown_timeout_ms = 2000
max_request_line = 200
max_head_bytes = 2048
max_headers = 16
max_body_bytes = 100000
"""


class Engine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(config=FAST_TIMEOUTS, shards=2).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.h.stop()
        cls.h.__exit__(None, None, None)
        assert rc == 0

    def roundtrip(self, raw):
        with connect(self.h.cwmp_port) as s:
            s.sendall(raw)
            return read_response(s)

    def test_keep_alive_many_requests_one_connection(self):
        with connect(self.h.admin_port) as s:
            for i in range(200):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                st, hd, body = read_response(s)
                self.assertEqual((st, body), (200, b"ok\n"))
                self.assertNotIn("connection", hd)

    def test_http10_closes_unless_keep_alive(self):
        with connect(self.h.cwmp_port) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            st, hd, _ = read_response(s)
            self.assertEqual(st, 200)
            self.assertEqual(hd.get("connection"), "close")
            self.assertTrue(is_closed(s))
        with connect(self.h.cwmp_port) as s:
            for _ in range(3):
                s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                st, hd, _ = read_response(s)
                self.assertEqual((st, hd.get("connection")), (200, "keep-alive"))

    def test_post_with_content_length_and_chunked(self):
        body = b"x" * 2048
        st, _, b = self.roundtrip(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + body)
        self.assertEqual((st, b), (200, b"ok\n"))
        chunked = b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" \
                  b"400;ext=1\r\n" + b"a" * 1024 + b"\r\n10\r\n" + b"b" * 16 + b"\r\n0\r\nTrailer: 1\r\n\r\n"
        st, _, b = self.roundtrip(chunked)
        self.assertEqual(st, 200)

    def test_pipelined_requests_answered_in_order(self):
        with connect(self.h.admin_port) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(s)[0], 200)
            self.assertEqual(read_response(s)[0], 404)
            self.assertEqual(read_response(s)[0], 200)
            st, _, body = read_response(s)
            self.assertEqual((st, body), (200, b"ready\n"))

    def test_request_split_into_tiny_reads(self):
        raw = (b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n")
        with connect(self.h.cwmp_port) as s:
            for i in range(0, len(raw), 7):
                s.sendall(raw[i:i + 7])
                time.sleep(0.002)
            self.assertEqual(read_response(s)[0], 200)

    def test_expect_100_continue(self):
        with connect(self.h.cwmp_port) as s:
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            r = read_response(s)
            self.assertEqual(r[0], "continue")
            s.sendall(b"abcd")
            self.assertEqual(read_response(s)[0], 200)

    def expect_error(self, raw, status, port=None):
        with connect(port or self.h.cwmp_port) as s:
            s.sendall(raw)
            st, hd, body = read_response(s)
            self.assertEqual(st, status, body)
            self.assertEqual(hd.get("connection"), "close")
            self.assertTrue(is_closed(s))
            return body

    def test_limits_and_malformed_requests(self):
        self.expect_error(b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 414)
        self.expect_error(b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(20)) + b"\r\n", 431)
        self.expect_error(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n", 431)
        self.expect_error(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100001\r\n\r\n", 413)
        self.expect_error(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"20000\r\n" + b"a" * 0x20000, 413)
        self.expect_error(b"GARBAGE\r\n\r\n", 400)
        self.expect_error(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400)
        self.expect_error(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400)
        self.expect_error(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501)
        self.expect_error(b"GET / HTTP/2.0\r\n\r\n", 505)
        self.expect_error(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400)
        m = self.h.metrics()
        self.assertGreaterEqual(m["hems_http_errors_uri_too_long_total"], 1)
        self.assertGreaterEqual(m["hems_http_errors_head_too_large_total"], 2)
        self.assertGreaterEqual(m["hems_http_errors_body_too_large_total"], 2)
        self.assertGreaterEqual(m["hems_http_errors_bad_request_total"], 4)
        self.assertIn("HTTP request refused", self.h.logs())

    def test_routing_404_405(self):
        st, _, _ = http_request(self.h.admin_port, "GET", "/no/such/thing")
        self.assertEqual(st, 404)
        st, hd, _ = http_request(self.h.admin_port, "DELETE", "/metrics")
        self.assertEqual(st, 405)
        self.assertIn("GET", hd["allow"])
        st, _, _ = http_request(self.h.cwmp_port, "GET", "/metrics")
        self.assertEqual(st, 404, "metrics must not be served on the CWMP listener")
        st, hd, body = http_request(self.h.admin_port, "HEAD", "/healthz")
        self.assertEqual((st, hd["content-length"], body), (200, "3", b""))

    def test_header_and_body_timeouts(self):
        with connect(self.h.cwmp_port) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow")
            t0 = time.time()
            st, hd, _ = read_response(s)
            self.assertEqual(st, 408)
            self.assertLess(time.time() - t0, 3)
            self.assertTrue(is_closed(s))
        with connect(self.h.cwmp_port) as s:
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            st, _, _ = read_response(s)
            self.assertEqual(st, 408)
        self.assertGreaterEqual(self.h.metrics()["hems_http_errors_timeout_total"], 2)
        # A connection that never sends anything is closed after the header timeout.
        with connect(self.h.cwmp_port) as s:
            t0 = time.time()
            self.assertTrue(is_closed(s))
            self.assertLess(time.time() - t0, 2.5)

    def test_idle_keep_alive_closed(self):
        with connect(self.h.cwmp_port) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(s)[0], 200)
            t0 = time.time()
            self.assertTrue(is_closed(s, timeout=5))
            self.assertGreater(time.time() - t0, 1.0)

    def test_metrics_count_requests(self):
        before = self.h.metrics()
        for _ in range(5):
            http_request(self.h.cwmp_port, "GET", "/healthz")
        after = self.h.metrics()
        self.assertGreaterEqual(after["hems_http_requests_total"] - before["hems_http_requests_total"], 5)
        self.assertGreaterEqual(after["hems_connections_accepted_total"] - before["hems_connections_accepted_total"], 5)
        self.assertEqual(after["hems_shards"], 2)

    def test_curl_interop(self):
        out = subprocess.run(["curl", "-sS", "--max-time", "5", "-d", "@-",
                              "http://127.0.0.1:%d/healthz" % self.h.cwmp_port,
                              "http://127.0.0.1:%d/healthz" % self.h.cwmp_port],
                             input=b"y" * 5000, capture_output=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, b"ok\nok\n")


class Lifecycle(unittest.TestCase):
    def test_connection_table_full_refused_cleanly(self):
        with Hemsd("--set", "server.max_connections=4") as h:
            socks = [connect(h.cwmp_port) for _ in range(4)]
            for s in socks:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(read_response(s)[0], 200)
            with connect(h.cwmp_port) as extra:
                st, hd, _ = read_response(extra)
                self.assertEqual(st, 503)
                self.assertIn("retry-after", hd)
            for s in socks:
                s.close()
            time.sleep(0.3)
            st, _, _ = http_request(h.admin_port, "GET", "/metrics")  # admin slots free again
            self.assertEqual(st, 200)
            self.assertGreaterEqual(h.metrics()["hems_connections_refused_total"], 1)
            self.assertIn("connection table full", h.logs())

    def test_per_source_connection_limit(self):
        with Hemsd("--set", "server.max_connections_per_source=3") as h:
            socks = [connect(h.cwmp_port) for _ in range(3)]
            for s in socks:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(read_response(s)[0], 200)
            with connect(h.cwmp_port) as extra:
                st, hd, _ = read_response(extra)
                self.assertEqual(st, 503)
            socks[0].close()
            time.sleep(0.3)
            with connect(h.cwmp_port) as again:
                again.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(read_response(again)[0], 200)
            m = h.metrics()
            self.assertEqual(m["hems_connections_refused_per_source_total"], 1)
            self.assertIn("source at its connection limit", h.logs())
            for s in socks[1:]:
                s.close()

    def test_slots_sized_from_rlimit(self):
        with Hemsd(shards=2) as h:
            m = h.metrics()
            import resource
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            self.assertLessEqual(m["hems_connection_slots"], hard)
            self.assertGreater(m["hems_connection_slots"], hard / 2)

    def test_graceful_shutdown_with_connections_open(self):
        h = Hemsd(config="[http]\nshutdown_timeout_ms = 1500\nheader_timeout_ms = 30000\n").start()
        try:
            idle = [connect(h.cwmp_port) for _ in range(20)]
            for s in idle:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                read_response(s)
            partial = connect(h.cwmp_port)
            partial.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            time.sleep(0.2)
            t0 = time.time()
            h.signal(signal.SIGTERM)
            for s in idle:
                self.assertTrue(is_closed(s), "idle connection not closed at shutdown")
            # The in-flight request may still complete within the drain time.
            partial.sendall(b"defghij")
            st, hd, _ = read_response(partial)
            self.assertEqual(st, 200)
            self.assertEqual(hd.get("connection"), "close")
            rc = h.proc.wait(10)
            self.assertEqual(rc, 0)
            self.assertLess(time.time() - t0, 5)
            self.assertIn("hemsd stopped", h.logs())
            # New connections are refused once draining is over.
            with self.assertRaises(OSError):
                connect(h.cwmp_port, timeout=1)
        finally:
            h.__exit__(None, None, None)

    def test_shutdown_times_out_stuck_requests(self):
        h = Hemsd(config="[http]\nshutdown_timeout_ms = 500\nbody_timeout_ms = 60000\n").start()
        try:
            s = connect(h.cwmp_port)
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            time.sleep(0.2)
            t0 = time.time()
            h.signal(signal.SIGTERM)
            self.assertEqual(h.proc.wait(10), 0)
            self.assertLess(time.time() - t0, 4)
            self.assertTrue(is_closed(s))
            self.assertIn("shutdown timeout", h.logs())
        finally:
            h.__exit__(None, None, None)

    def test_sighup_reloads_limits(self):
        h = Hemsd(config="[http]\nmax_request_line = 1000\n").start()
        try:
            st, _, _ = http_request(h.cwmp_port, "GET", "/healthz?" + "a" * 300)
            self.assertEqual(st, 200)
            with open(h.config_path, "w") as f:
                f.write("[http]\nmax_request_line = 100\n[server]\nrecv_buffers = 2048\n")
            h.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while "configuration reloaded" not in h.logs() and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            st, _, _ = http_request(h.cwmp_port, "GET", "/healthz?" + "a" * 300)
            self.assertEqual(st, 414)
            self.assertIn("needs a restart", h.logs())
            with open(h.config_path, "w") as f:
                f.write("[http]\nmax_request_line = banana\n")
            h.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while "reload refused" not in h.logs() and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn("reload refused", h.logs())
            self.assertEqual(http_request(h.cwmp_port, "GET", "/healthz")[0], 200)
        finally:
            h.__exit__(None, None, None)

    def test_config_errors_are_clear(self):
        hemsd = os.path.join(BIN_DIR, "hemsd")
        r = subprocess.run([hemsd, "--set", "http.max_headers=1000", "--check-config"], capture_output=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"max_headers", r.stderr)
        r = subprocess.run([hemsd, "--set", "nosuch.key=1"], capture_output=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"unknown configuration key", r.stderr)
        r = subprocess.run([hemsd, "--config", "/nonexistent.conf"], capture_output=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"No such file", r.stderr)
        r = subprocess.run([hemsd, "--check-config"], capture_output=True)
        self.assertEqual(r.returncode, 0)
        r = subprocess.run([hemsd, "--print-config"], capture_output=True)
        self.assertIn(b"cwmp_listen = 127.0.0.1:7547", r.stdout)
        r = subprocess.run([hemsd, "--help"], capture_output=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"--cwmp-listen", r.stdout)

    def test_sample_config_is_current_and_valid(self):
        hemsd = os.path.join(BIN_DIR, "hemsd")
        src = os.environ.get("HEMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        sample = os.path.join(src, "ops", "hemsd.conf")
        with open(sample) as f:
            body = "".join(l for l in f if not l.startswith("# hemsd configuration")
                           and not l.startswith("# Generated by") and not l.startswith("# Command-line"))
        printed = subprocess.run([hemsd, "--print-config"], capture_output=True, check=True).stdout.decode()
        self.assertEqual(body.strip(), printed.strip(),
                         "ops/hemsd.conf is stale: regenerate with hemsd --print-config")
        r = subprocess.run([hemsd, "--config", sample, "--check-config"], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_port_in_use_fails_fast(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        try:
            h = Hemsd("--cwmp-listen", "127.0.0.1:%d" % port)
            h.start(wait=False)
            rc = h.proc.wait(10)
            self.assertEqual(rc, 1)
            self.assertIn("cannot listen on 127.0.0.1:%d" % port, h.logs())
            h.log.close()
            h.tmp.cleanup()
        finally:
            blocker.close()


if __name__ == "__main__":
    main()
