"""PROXY protocol v1/v2 on the CWMP listener (hemsd behind HAProxy): the address in the
header is the one hemsd records for the HeNB; connections without a valid header are closed;
the admin listener is unaffected."""
import json
import socket
import struct
import unittest

import cpe as C
from hemsd import Hemsd, connect, read_response, http_request, is_closed, main


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


if __name__ == "__main__":
    main()
