"""CWMP over TLS (server.cwmps_listen): handshake matrix, TS 33.320 identity binding, SNI,
session resumption, reload on SIGHUP, start-up errors, and interop with openssl s_client and
curl. The PKI comes from ops/make-test-pki.sh (openssl CLI)."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from cpe import Cpe, inform_xml
from hemsd import Hemsd, free_port, main

SRC = os.environ.get("HEMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PKI = None


def setUpModule():
    global PKI, _tmp
    if not shutil.which("openssl"):
        raise unittest.SkipTest("openssl CLI not installed")
    _tmp = tempfile.TemporaryDirectory(prefix="hems-pki-")
    PKI = _tmp.name
    subprocess.run([os.path.join(SRC, "ops", "make-test-pki.sh"), PKI, "SN0001", "SN0002",
                    "00005A-HeNB-SN0003"] + ["%010d" % i for i in range(1, 5)],
                   check=True, stdout=subprocess.DEVNULL)


def tearDownModule():
    _tmp.cleanup()


def p(name):
    return os.path.join(PKI, name)


def tls_config(port, client_auth="required", cert=None, key=None, crl=True, extra=""):
    cert = cert or "%s,%s" % (p("server-ec.pem"), p("server-rsa.pem"))
    key = key or "%s,%s" % (p("server-ec.key"), p("server-rsa.key"))
    return ("[server]\ncwmps_listen = 127.0.0.1:%d\n[tls]\ncert = %s\nkey = %s\nca = %s\n"
            "crl = %s\nclient_auth = %s\n%s" % (port, cert, key, p("ca.pem"),
                                                 p("crl.pem") if crl else "", client_auth, extra))


def client_ctx(dev=None, version=None, ca="ca.pem"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(p(ca))
    if dev:
        ctx.load_cert_chain(p("dev-%s.pem" % dev), p("dev-%s.key" % dev))
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


class TlsCpe(Cpe):
    """The scripted CPE over TLS."""

    def __init__(self, port, ctx, host="localhost", session=None):
        self.sock = None
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname=host, session=session)
        self.path = "/cwmp"
        self.cookie = None
        self.auth = None
        self.challenge = None
        self.nc = 0


def session(port, ctx, sn="SN0001", oui="00005A", pc="HeNB", prev=None, host="localhost"):
    """One CWMP session (Inform, empty POST); returns (cpe, inform reply, final reply)."""
    c = TlsCpe(port, ctx, host=host, session=prev)
    r = c.post(inform_xml(oui=oui, pc=pc, sn=sn))
    if r.status != 200:
        return c, r, None
    r2 = c.post(b"")
    return c, r, r2


def handshake_refused(port, ctx, sn="SN0001"):
    """True when the server refused the client (at the handshake, or, in TLS 1.3 where the
    client finishes first, on the first read)."""
    try:
        c = TlsCpe(port, ctx)
        c.post(inform_xml(sn=sn))
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    c.close()
    return False


class TlsServer(unittest.TestCase):
    client_auth = "required"

    def setUp(self):
        self.port = free_port()
        self.h = Hemsd(config=tls_config(self.port, self.client_auth), shards=2)
        self.h.start()

    def tearDown(self):
        self.h.__exit__(None, None, None)

    def m(self, name):
        return self.h.metrics().get(name, 0)


class TestHandshakeMatrix(TlsServer):
    def test_cwmp_session_tls13_and_tls12(self):
        for v, name in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
            c, r, r2 = session(self.port, client_ctx("SN0001", v))
            self.assertEqual(c.sock.version(), name)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.rpc()[0], "InformResponse")
            self.assertEqual(r2.status, 204)
            c.close()
        self.assertEqual(self.m('hems_tls_version_total{version="TLSv1.3"}'), 1)
        self.assertEqual(self.m('hems_tls_version_total{version="TLSv1.2"}'), 1)
        self.assertEqual(self.m('hems_tls_handshakes_total{kind="full"}'), 2)

    def test_resumption(self):
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = client_ctx("SN0001", v)
            c, r, _ = session(self.port, ctx)
            self.assertEqual(r.status, 200)
            self.assertFalse(c.sock.session_reused)
            sess = c.sock.session
            c.close()
            c2, r, _ = session(self.port, ctx, prev=sess)
            self.assertTrue(c2.sock.session_reused, v)
            self.assertEqual(r.status, 200)
            c2.close()
        self.assertEqual(self.m('hems_tls_handshakes_total{kind="resumed"}'), 2)

    def test_tls12_session_cache_without_tickets(self):
        ctx = client_ctx("SN0001", ssl.TLSVersion.TLSv1_2)
        ctx.options |= ssl.OP_NO_TICKET
        c, r, _ = session(self.port, ctx)
        sess = c.sock.session
        self.assertFalse(sess.has_ticket)
        c.close()
        c2, r, _ = session(self.port, ctx, prev=sess)
        self.assertTrue(c2.sock.session_reused)
        c2.close()

    def test_bad_client_certificates_refused(self):
        cases = (("rogue", "bad_chain"), ("expired", "expired"), ("revoked", "revoked"),
                 (None, "no_client_cert"))
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            for dev, reason in cases:
                self.assertTrue(handshake_refused(self.port, client_ctx(dev, v)), (dev, v))
        for dev, reason in cases:
            self.assertEqual(self.m('hems_tls_handshake_failures_total{reason="%s"}' % reason),
                             2, reason)
        self.assertEqual(self.m('hems_tls_handshakes_total{kind="full"}'), 0)
        self.assertIn("reason=expired", self.h.logs())

    def test_identity_mismatch_refused(self):
        c = TlsCpe(self.port, client_ctx("SN0001"))
        r = c.post(inform_xml(sn="SN0002"))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.headers.get("connection"), "close")
        c.close()
        self.assertEqual(self.m("hems_tls_identity_mismatch_total"), 1)
        self.assertIn("client certificate names another device", self.h.logs())
        # The device named by the certificate is accepted, in every DeviceId form.
        _, r, _ = session(self.port, client_ctx("SN0002"), sn="SN0002")
        self.assertEqual(r.status, 200)
        _, r, _ = session(self.port, client_ctx("00005A-HeNB-SN0003"), sn="SN0003")
        self.assertEqual(r.status, 200)

    def test_sni_selects_certificate(self):
        for host, cn in (("serving.hems.test", "serving.hems.test"), ("localhost", "hems.test"),
                         ("hems.test", "hems.test")):
            c = TlsCpe(self.port, client_ctx("SN0001"), host=host)
            subj = dict(x[0] for x in c.sock.getpeercert()["subject"])
            self.assertEqual(subj["commonName"], cn)
            c.close()

    def test_plain_http_on_tls_port_refused(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"POST /cwmp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            s.settimeout(5)
            data = s.recv(4096)
            self.assertFalse(data.startswith(b"HTTP/"))
        time.sleep(0.2)
        self.assertGreaterEqual(self.m('hems_tls_handshake_failures_total{reason="protocol"}') +
                                self.m('hems_tls_handshake_failures_total{reason="version"}'), 1)

    def test_plain_listener_unaffected(self):
        c = Cpe(self.h.cwmp_port)
        r = c.post(inform_xml(sn="SN0009"))
        self.assertEqual(r.status, 200)
        c.close()

    def test_pipelined_requests_and_large_body(self):
        # Two requests in one TLS write, then a body bigger than one TLS record.
        c = TlsCpe(self.port, client_ctx("SN0001"))
        body = inform_xml(sn="SN0001")
        req = ("POST /cwmp HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)).encode()
        c.sock.sendall(req + body + b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        from hemsd import read_response
        st, hd, _ = read_response(c.sock)
        self.assertEqual(st, 200)
        st2, _, _ = read_response(c.sock)
        self.assertEqual(st2, 404)
        c.cookie = hd["set-cookie"].split(";")[0]
        big = b"x" * 100000
        c.sock.sendall(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
        st3, _, _ = read_response(c.sock)
        self.assertEqual(st3, 404)
        c.close()

    def test_openssl_s_client_and_curl(self):
        if not shutil.which("curl"):
            self.skipTest("curl not installed")
        out = subprocess.run(
            ["curl", "-sS", "--cacert", p("ca.pem"), "--cert", p("dev-SN0001.pem"), "--key",
             p("dev-SN0001.key"), "-X", "POST", "-H", "Content-Type: text/xml",
             "--data-binary", "@-", "-w", "\n%{http_code}", "https://localhost:%d/cwmp" % self.port],
            input=inform_xml(sn="SN0001"), capture_output=True, timeout=20)
        self.assertTrue(out.stdout.endswith(b"\n200"), out)
        self.assertIn(b"InformResponse", out.stdout)
        sess = os.path.join(self.h.tmp.name, "sess.pem")
        outs = []
        for extra in (["-sess_out", sess], ["-sess_in", sess]):
            r = subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port, "-tls1_2",
                 "-servername", "localhost", "-CAfile", p("ca.pem"), "-cert", p("dev-SN0001.pem"),
                 "-key", p("dev-SN0001.key"), "-verify_return_error", "-ign_eof"] + extra,
                input=b"POST /cwmp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                capture_output=True, timeout=20)
            outs.append(r.stdout.decode(errors="replace"))
        self.assertIn("New, TLSv1.2", outs[0])
        self.assertIn("Verify return code: 0 (ok)", outs[0])
        self.assertIn("HTTP/1.1 400", outs[0])  # an empty POST cannot start a session
        self.assertIn("Reused, TLSv1.2", outs[1])


class TestLoadgenOverTls(TlsServer):
    def test_periodic_sessions_with_device_certificates(self):
        from test_loadgen import LOADGEN, run_loadgen
        if not os.path.exists(LOADGEN):
            self.skipTest("hems-loadgen not built")
        # 4 devices, each with its own certificate (SAN <serial>.hnb.hems.test, bound to
        # its DeviceId), 40 sessions: each device's later sessions resume its ticket.
        r, _ = run_loadgen(self.port, "--scenario", "periodic", "--devices", 4,
                           "--concurrency", 4, "--sessions", 40, "--first-serial", 1,
                           "--host", "localhost", "--tls", "--tls-ca", p("ca.pem"),
                           "--tls-cert-dir", PKI, "--tls-resume")
        self.assertEqual(r["sessions"]["ok"], 40, r["errors"])
        self.assertEqual(r["sessions"]["failed"], 0)
        self.assertEqual(self.m('hems_tls_handshakes_total{kind="full"}'), 4)
        self.assertEqual(self.m('hems_tls_handshakes_total{kind="resumed"}'), 36)
        self.assertEqual(self.m("hems_tls_identity_mismatch_total"), 0)
        # One shared certificate for every device: the identity names device 1 only.
        r, _ = run_loadgen(self.port, "--scenario", "periodic", "--devices", 2,
                           "--concurrency", 2, "--sessions", 2, "--first-serial", 1,
                           "--max-retries", 1, "--tls", "--tls-ca", p("ca.pem"),
                           "--tls-cert", p("dev-0000000001.pem"),
                           "--tls-key", p("dev-0000000001.key"))
        self.assertEqual(r["sessions"]["ok"], 1)
        self.assertEqual(r["http_status"].get("403"), 1)
        self.assertEqual(self.m("hems_tls_identity_mismatch_total"), 1)


class TestAdmissionOverTls(unittest.TestCase):
    def test_shed_at_accept_is_a_reset_before_the_handshake(self):
        port = free_port()
        # the accept-time refusal alone: no SYN dropped before it, no pacing (test_admission
        # covers those)
        with Hemsd("--set", "admission.max_rate_per_shard=2", "--set", "admission.min_rate_per_shard=1",
                   "--set", "admission.syn_shed=false", "--set", "admission.accept_pacing=false",
                   config=tls_config(port, client_auth="none"), shards=1) as h:
            time.sleep(1.2)  # a full bucket (4) to start with
            admitted, reset = 0, 0
            for i in range(12):
                try:
                    c, r, r2 = session(port, client_ctx(), sn="ADMTLS%d" % i)
                except (ssl.SSLError, ConnectionError, OSError):
                    reset += 1
                    continue
                self.assertEqual((r.status, r2.status if r2 else None), (200, 204), r.body)
                c.close()
                admitted += 1
            self.assertGreaterEqual(admitted, 1)
            self.assertGreaterEqual(reset, 5, (admitted, reset))
            m = h.metrics()
            # every refusal happened at accept: no handshake, no request read
            self.assertEqual(m['hems_admission_shed_total{reason="accept"}'], reset)
            self.assertEqual(m['hems_admission_shed_total{reason="rate"}'], 0)
            self.assertEqual(m['hems_tls_handshakes_total{kind="full"}'], admitted)
            self.assertEqual(m["hems_admission_admitted_total"], admitted)


class TestOptionalClientAuth(TlsServer):
    client_auth = "optional"

    def test_without_and_with_certificate(self):
        _, r, _ = session(self.port, client_ctx(None), sn="ANY0001")
        self.assertEqual(r.status, 200)  # no certificate: no binding (HTTP auth would apply)
        _, r, _ = session(self.port, client_ctx("SN0001"), sn="SN0001")
        self.assertEqual(r.status, 200)
        c = TlsCpe(self.port, client_ctx("SN0001"))
        self.assertEqual(c.post(inform_xml(sn="OTHER")).status, 403)
        c.close()
        self.assertTrue(handshake_refused(self.port, client_ctx("expired")))


class TestDigestAndTimeouts(unittest.TestCase):
    def test_certificate_replaces_digest_and_handshake_timeout(self):
        port = free_port()
        cfg = tls_config(port, client_auth="optional",
                         extra="[cwmp]\nauth = digest\nusername = u\npassword = secret\n"
                               "[http]\nheader_timeout_ms = 500\n")
        with Hemsd(config=cfg, shards=1) as h:
            # A verified device certificate authenticates the CPE: no challenge.
            c, r, r2 = session(port, client_ctx("SN0001"))
            self.assertEqual(r.status, 200)
            self.assertEqual(r2.status, 204)
            c.close()
            # Without a certificate (optional), Digest applies inside TLS.
            c = TlsCpe(port, client_ctx(None))
            self.assertEqual(c.post(inform_xml(sn="SN0002")).status, 401)
            c.close()
            # A TCP client that never starts the handshake is cut at the header timeout.
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.settimeout(5)
                t0 = time.time()
                self.assertEqual(s.recv(100), b"")
                self.assertLess(time.time() - t0, 3)
            time.sleep(0.1)
            self.assertEqual(h.metrics()['hems_tls_handshake_failures_total{reason="closed"}'], 1)


class TestReloadAndErrors(unittest.TestCase):
    def test_sighup_reload_keeps_connections(self):
        port = free_port()
        h = Hemsd(config=tls_config(port), shards=1)
        with h:
            c = TlsCpe(port, client_ctx("SN0001"))
            self.assertEqual(c.post(inform_xml(sn="SN0001")).status, 200)
            # Swap the default certificate to the RSA one.
            with open(h.config_path, "w") as f:
                f.write(tls_config(port, cert=p("server-rsa.pem"), key=p("server-rsa.key")))
            h.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while time.time() < deadline and h.metrics().get('hems_tls_reloads_total{result="ok"}', 0) < 1:
                time.sleep(0.05)
            self.assertEqual(h.metrics()['hems_tls_reloads_total{result="ok"}'], 1)
            # The open connection goes on.
            self.assertEqual(c.post(b"").status, 204)
            self.assertEqual(c.post(inform_xml(sn="SN0001", events=("1 BOOT",))).status, 200)
            c.close()
            c2 = TlsCpe(port, client_ctx("SN0001"), host="127.0.0.1")  # no SNI: the default
            subj = dict(x[0] for x in c2.sock.getpeercert()["subject"])
            self.assertEqual(subj["commonName"], "serving.hems.test")
            c2.close()
            # A broken reload (key of another certificate) keeps the running contexts.
            with open(h.config_path, "w") as f:
                f.write(tls_config(port, cert=p("server-rsa.pem"), key=p("server-ec.key")))
            h.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while time.time() < deadline and h.metrics().get('hems_tls_reloads_total{result="failed"}', 0) < 1:
                time.sleep(0.05)
            self.assertIn("TLS reload refused", h.logs())
            c3 = TlsCpe(port, client_ctx("SN0001"), host="127.0.0.1")
            self.assertEqual(c3.post(inform_xml(sn="SN0001")).status, 200)
            c3.close()

    def test_reloads_under_load(self):
        from test_loadgen import LOADGEN
        if not os.path.exists(LOADGEN):
            self.skipTest("hems-loadgen not built")
        port = free_port()
        with Hemsd(config=tls_config(port), shards=2) as h:
            lg = subprocess.Popen(
                [str(a) for a in [LOADGEN, "--target", "127.0.0.1:%d" % port, "--quiet", "--scenario", "periodic",
                 "--devices", 4, "--concurrency", 4, "--duration", 3, "--first-serial", 1,
                 "--host", "localhost", "--tls", "--tls-ca", p("ca.pem"), "--tls-cert-dir", PKI,
                 "--tls-resume", "--json", os.path.join(h.tmp.name, "lg.json")]],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(6):
                time.sleep(0.4)
                h.signal(signal.SIGHUP)
            out, err = lg.communicate(timeout=60)
            self.assertEqual(lg.returncode, 0, err)
            import json
            with open(os.path.join(h.tmp.name, "lg.json")) as f:
                r = json.load(f)
            self.assertGreater(r["sessions"]["ok"], 20)
            self.assertEqual(r["sessions"]["failed"], 0, r["errors"])
            time.sleep(0.3)
            m = h.metrics()
            self.assertEqual(m['hems_tls_reloads_total{result="ok"}'], 6)
            # Ticket keys survive reloads: devices keep resuming.
            self.assertGreater(m['hems_tls_handshakes_total{kind="resumed"}'],
                               m['hems_tls_handshakes_total{kind="full"}'])

    def test_refuses_to_start_on_bad_key_or_file(self):
        port = free_port()
        for cfg, text in (
                (tls_config(port, cert=p("server-ec.pem"), key=p("server-rsa.key")), "does not match"),
                (tls_config(port, cert=p("missing.pem"), key=p("server-ec.key")), "No such file"),
                (tls_config(port, cert=p("server-ec.key"), key=p("server-ec.key")), "not a PEM certificate"),
                (tls_config(port, cert=p("server-ec.pem"), key=p("server-ec.key"), extra="min_version = 1.1\n"),
                 "tls.min_version")):
            h = Hemsd(config=cfg)
            h.start(wait=False)
            rc = h.proc.wait(10)
            logs = h.logs()
            h.log.close()
            h.tmp.cleanup()
            self.assertNotEqual(rc, 0, logs)
            self.assertIn(text, logs)


if __name__ == "__main__":
    main()
