"""The bad-input matrix of docs/security.md for the CWMP and API listeners: each class of
hostile or broken input gets its documented answer from a real hemsd, and hemsd keeps
serving afterwards. (HTTP framing classes are in test_http_engine.py.)"""
import json
import time
import unittest

import cpe as C
from hemsd import Hemsd, http_request, connect, read_response, main

BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  b'<lolz>&lol2;</lolz>')
XXE = (b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
       b'&xxe;</soapenv:Body></soapenv:Envelope>')


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(config="[cwmp]\nmax_parameters = 100\n").start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def post(self, body):
        cpe = C.Cpe(self.h.cwmp_port)
        try:
            return cpe.post(body)
        finally:
            cpe.close()

    def assert_alive(self):
        cpe = C.Cpe(self.h.cwmp_port)
        r = cpe.post(C.inform_xml(sn="ALIVE-%f" % time.time()))
        self.assertEqual(r.status, 200)
        cpe.post()
        cpe.close()

    def test_entity_expansion_and_xxe_refused(self):
        for body in (BILLION_LAUGHS, XXE):
            r = self.post(body)
            self.assertEqual(r.status, 400)
            self.assertIn(b"DTD", r.body)
        self.assert_alive()

    def test_invalid_utf8_and_garbage(self):
        bad = C.inform_xml(sn="UTF8").replace(b"Acme", b"Ac\xff\xfeme")
        r = self.post(bad)
        self.assertIn(r.status, (200, 400))  # refused, or kept as opaque bytes: never a crash
        self.assertEqual(self.post(b"\x00\x01\x02" * 100).status, 400)
        self.assertEqual(self.post(b"<a>" * 10 + b"</a>" * 9).status, 400)  # unbalanced
        self.assert_alive()

    def test_deep_nesting_refused(self):
        body = (b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                b'xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soapenv:Body><cwmp:Inform>'
                + b"<a>" * 500 + b"</a>" * 500 + b"</cwmp:Inform></soapenv:Body></soapenv:Envelope>")
        r = self.post(body)
        self.assertEqual(r.status, 400)
        self.assertIn(b"limit", r.body)
        self.assert_alive()

    def test_oversized_parameter_list_refused(self):
        params = [("Device.X.P%d" % i, "v", "xsd:string") for i in range(101)]
        r = self.post(C.inform_xml(sn="BIG", params=params))
        self.assertEqual(r.status, 400)
        params = params[:100]
        cpe = C.Cpe(self.h.cwmp_port)
        r = cpe.post(C.inform_xml(sn="BIG", params=params))
        self.assertEqual(r.status, 200)
        cpe.post()
        cpe.close()

    def test_wrong_namespaces(self):
        # A SOAP 1.2 envelope, and a CWMP method in an unknown namespace.
        soap12 = C.inform_xml(sn="NS").replace(b"http://schemas.xmlsoap.org/soap/envelope/",
                                              b"http://www.w3.org/2003/05/soap-envelope")
        self.assertEqual(self.post(soap12).status, 400)
        # Not a CWMP namespace: not a CWMP message at all (400), never taken as an Inform.
        foreign = C.inform_xml(sn="NS", ns="urn:example:not-cwmp")
        r = self.post(foreign)
        self.assertEqual(r.status, 400)
        self.assert_alive()

    def test_oversized_values_refused(self):
        long_name = "Device." + "A" * 300
        r = self.post(C.inform_xml(sn="LONG", params=[(long_name, "1", "xsd:string")]))
        self.assertIn(r.status, (200, 400))
        if r.status == 200:
            self.assertEqual(r.fault_code(), 8003)
        r = self.post(C.inform_xml(oui="00005A", sn="S" * 100))
        self.assertEqual(r.fault_code(), 8003)

    def test_bad_api_input(self):
        for body in (b"", b"[]", b'{"rpc": 5}', b'{"rpc":"GetParameterValues","names":"x"}',
                     b'{"rpc":"GetParameterValues","names":["a"],"rpc":"Reboot"}', b"\xff\xfe"):
            st, _, b = http_request(self.h.admin_port, "POST", "/api/v1/devices/00005A-HeNB-J/tasks", body=body)
            self.assertIn(st, (400, 422), body)
            err = json.loads(b)["error"]
            self.assertTrue(err["code"] and err["message"])
        st, _, _ = http_request(self.h.admin_port, "GET", "/api/v1/devices/%zz")
        self.assertEqual(st, 400)
        st, _, _ = http_request(self.h.admin_port, "GET", "/api/v1/devices?limit=100000")
        self.assertEqual(st, 400)
        st, _, _ = http_request(self.h.admin_port, "GET", "/api/v1/../../etc/passwd")
        self.assertEqual(st, 404)


if __name__ == "__main__":
    main()
