"""Initial HeMS identity check by TLS identity (TS 32.593 5.1.2.2 with TS 33.320): a whitelist
entry {"tls_identity": ...} admits a bootstrap only over a connection whose verified client
certificate carries that identity (the ACS has bound it to the DeviceId already); the same
device without its certificate, or another certified device, is refused and counted."""
import json
import os
import tempfile
import unittest

import test_tls as T
import cpe as C
from cpe import Cpe
from hemsd import Hemsd, free_port, main


def setUpModule():
    T.setUpModule()


def tearDownModule():
    T.tearDownModule()


def bootstrap(c, sn):
    """0 BOOTSTRAP on <c>; the RPCs hemsd sends back (answered with success)."""
    return [name for name, _ in C.run_session(c, sn)[1]]


class TlsWhitelist(unittest.TestCase):
    def test_tls_identity_admits_only_that_certificate(self):
        pol = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"whitelist": [{"tls_identity": "*0001.hnb.hems.test"}],
                   "serving_nodes": [{"id": "s1", "url": "https://serving.hems.test:7548/cwmp"}]}, pol)
        pol.close()
        tport = free_port()
        conf = T.tls_config(tport, client_auth="optional") + \
            "[hems]\nrole = initial\npolicy_file = %s\n" % pol.name
        try:
            with Hemsd(config=conf) as h:
                ok = bootstrap(T.TlsCpe(tport, T.client_ctx("SN0001")), "SN0001")
                self.assertEqual(ok, ["SetParameterValues"])
                # another valid certificate, bound to its own DeviceId: not whitelisted
                self.assertEqual(bootstrap(T.TlsCpe(tport, T.client_ctx("SN0002")), "SN0002"), [])
                # the whitelisted serial without a certificate (TLS, and plain HTTP)
                self.assertEqual(bootstrap(T.TlsCpe(tport, T.client_ctx()), "SN0001"), [])
                self.assertEqual(bootstrap(Cpe(h.cwmp_port), "SN0001"), [])
                self.assertEqual(h.metrics()["hems_discovery_refused_total"], 3)
                self.assertIn('tls_identity="SN0002.hnb.hems.test"', h.logs())
        finally:
            os.unlink(pol.name)


if __name__ == "__main__":
    main()
