"""PROXY protocol v1/v2 on the CWMP listener (hemsd behind HAProxy): the address in the
header is the one hemsd records for the HeNB; connections without a valid header are closed;
the admin listener is unaffected. The same on the TLS listener (server.cwmps_proxy_protocol):
the header comes before the ClientHello."""
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

import cpe as C
from hemsd import Hemsd, connect, free_port, read_response, http_request, is_closed, main


def v2_header(src, sport, dst="127.0.0.1", dport=7547):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addr)) + addr


class Proxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd("--set", "server.cwmp_proxy_protocol=true").start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def inform_through(self, header, sn):
        s = connect(self.h.cwmp_port)
        body = C.inform_xml(sn=sn)
        req = (b"POST /cwmp HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
               % len(body)) + body
        s.sendall(header + req)
        st, hd, b = read_response(s)
        self.assertEqual(st, 200, b)
        s.sendall(b"POST /cwmp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nCookie: "
                  + hd["set-cookie"].split(";")[0].encode() + b"\r\n\r\n")
        self.assertEqual(read_response(s)[0], 204)
        s.close()
        st, _, b = http_request(self.h.admin_port, "GET", "/api/v1/devices/00005A-HeNB-%s" % sn)
        return json.loads(b)["source_address"]

    def test_v1_source_address_recorded(self):
        self.assertEqual(self.inform_through(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 7547\r\n", "PX1"),
                         "198.51.100.7:40000")

    def test_v2_source_address_recorded(self):
        self.assertEqual(self.inform_through(v2_header("203.0.113.9", 50123), "PX2"), "203.0.113.9:50123")

    def test_header_split_across_reads(self):
        s = connect(self.h.cwmp_port)
        hdr = v2_header("192.0.2.44", 1234)
        s.sendall(hdr[:7])
        import time
        time.sleep(0.1)
        s.sendall(hdr[7:] + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_response(s)[0], 200)
        s.close()

    def test_missing_header_closes(self):
        s = connect(self.h.cwmp_port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(is_closed(s))
        s.close()
        self.assertIn("without a valid PROXY header", self.h.logs())
        # The admin listener takes plain HTTP.
        self.assertEqual(http_request(self.h.admin_port, "GET", "/healthz")[0], 200)


class ProxyTls(unittest.TestCase):
    """PROXY v2 before the TLS ClientHello on the CWMPS listener, mutual TLS."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("openssl CLI not installed")
        cls.tmp = tempfile.TemporaryDirectory(prefix="hems-pki-")
        src = os.environ.get("HEMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        cls.pki = cls.tmp.name
        subprocess.run([os.path.join(src, "ops", "make-test-pki.sh"), cls.pki, "SN0001"],
                       check=True, stdout=subprocess.DEVNULL)
        cls.port = port = free_port()
        p = lambda n: os.path.join(cls.pki, n)
        cls.h = Hemsd("--set", "server.cwmps_listen=127.0.0.1:%d" % port,
                      "--set", "server.cwmps_proxy_protocol=true",
                      "--set", "tls.cert=" + p("server-ec.pem"), "--set", "tls.key=" + p("server-ec.key"),
                      "--set", "tls.ca=" + p("ca.pem")).start()
        cls.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cls.ctx.load_verify_locations(p("ca.pem"))
        cls.ctx.load_cert_chain(p("dev-SN0001.pem"), p("dev-SN0001.key"))

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)
        cls.tmp.cleanup()

    def test_v2_header_split_then_tls_session(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        hdr = v2_header("203.0.113.77", 40404, dport=self.port)
        raw.sendall(hdr[:9])  # the header in two reads, then the ClientHello
        time.sleep(0.1)
        raw.sendall(hdr[9:])
        s = self.ctx.wrap_socket(raw, server_hostname="localhost")
        body = C.inform_xml(sn="SN0001")
        s.sendall((b"POST /cwmp HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body)) + body)
        st, hd, b = read_response(s)
        self.assertEqual(st, 200, b)  # the certificate's identity matched the DeviceId
        s.close()
        st, _, b = http_request(self.h.admin_port, "GET", "/api/v1/devices/00005A-HeNB-SN0001")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(b)["source_address"], "203.0.113.77:40404")

    def test_tls_listener_needs_the_header(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        with self.assertRaises((ssl.SSLError, OSError)):
            s = self.ctx.wrap_socket(raw, server_hostname="localhost")  # no PROXY header
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if not s.recv(100):
                raise OSError("closed")
        raw.close()
        self.assertIn("without a valid PROXY header", self.h.logs())


if __name__ == "__main__":
    main()
