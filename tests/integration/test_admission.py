"""Admission control against a real hemsd: new sessions beyond the shard's rate get 503 with a
jittered Retry-After (at accept, before a byte is read, or at the first request), a session
already admitted is never shed, the metrics count the sheds by reason, and admission resumes
by itself once the load is gone."""
import errno
import selectors
import socket
import threading
import time
import unittest

import cpe as C
from hemsd import Hemsd, connect, main, read_response

RETRY = 4


def try_session_start(port, sn):
    """Opens a connection and starts a session. Returns ("refused", retry_after) when the
    server answered 503 (at accept or at the Inform), else ("admitted", cpe) with the
    InformResponse received."""
    cp = C.Cpe(port)
    # a connection refused at accept has its 503 waiting before we send anything
    cp.sock.settimeout(0.15)
    try:
        head = cp.sock.recv(4096, socket.MSG_PEEK)
    except socket.timeout:
        head = None
    except ConnectionError:
        head = b""
    cp.sock.settimeout(5)
    if head is not None:
        assert head.startswith(b"HTTP/1.1 503"), head
        st, hd, _ = read_response(cp.sock)
        cp.close()
        return "refused", int(hd["retry-after"])
    r = cp.post(C.inform_xml(sn=sn))
    if r.status == 503:
        assert r.headers.get("connection", "").lower() == "close", r.headers
        cp.close()
        return "refused", int(r.headers["retry-after"])
    assert r.status == 200, (r.status, r.body)
    assert r.rpc()[0] == "InformResponse", r.body
    return "admitted", cp

def connect_storm(port, per_s, secs):
    """Opens per_s non-blocking connections per second for secs seconds (closing each once
    it is established) and returns the establishment times in seconds."""
    sel = selectors.DefaultSelector()
    times, t0, n = [], time.monotonic(), 0
    end = t0 + secs
    while True:
        now = time.monotonic()
        while now < end and n < (now - t0) * per_s:
            sk = socket.socket()
            sk.setblocking(False)
            rc = sk.connect_ex(("127.0.0.1", port))
            assert rc in (0, errno.EINPROGRESS), rc
            sel.register(sk, selectors.EVENT_WRITE, now)
            n += 1
        if now >= end and not sel.get_map():
            return times
        assert now < end + 30, "connections still pending 30 s after the storm"
        for key, _ in sel.select(timeout=0.002):
            err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            assert err == 0, os_error(err)
            times.append(time.monotonic() - key.data)
            sel.unregister(key.fileobj)
            key.fileobj.close()


def storm_with_drop_ratio(h, per_s, secs, then=lambda: None):
    """connect_storm() on h's CWMP port, then() right after it, while a thread reads shard 0's
    SYN drop ratio every 0.1 s. Returns (establishment times, highest ratio seen, then())."""
    key = 'hems_admission_syn_drop_ratio{shard="0"}'
    seen, done = [], threading.Event()

    def poll():
        while not done.is_set():
            seen.append(h.metrics()[key])
            time.sleep(0.1)
    th = threading.Thread(target=poll)
    th.start()
    try:
        times = connect_storm(h.cwmp_port, per_s, secs)
        after = then()
    finally:
        done.set()
        th.join()
    return times, max(seen), after


def wait_gate_places_back(test, h):
    """Every connection the gate let through has made its request or closed: the places
    they held under the in-flight cap are all back."""
    deadline = time.monotonic() + 5
    while True:
        m = h.metrics()
        held = {k: v for k, v in m.items()
                if k.startswith(("hems_admission_gate_pending{", "hems_admission_inflight{"))}
        test.assertTrue(held)
        if not any(held.values()):
            return
        test.assertLess(time.monotonic(), deadline, "places not given back: %r" % held)
        time.sleep(0.1)


def os_error(err):
    return "%s" % errno.errorcode.get(err, err)


class Admission(unittest.TestCase):
    def test_sheds_over_rate_keeps_admitted_and_recovers(self):
        # the 503 path alone (the SYN filter and accept pacing have their own tests below)
        with Hemsd("--set", "admission.max_rate_per_shard=5", "--set", "admission.min_rate_per_shard=1",
                   "--set", "admission.retry_after_s=%d" % RETRY, "--set", "admission.syn_shed=false",
                   "--set", "admission.accept_pacing=false") as h:
            time.sleep(1.2)  # a full bucket to start with
            first = try_session_start(h.cwmp_port, "ADM-0")
            self.assertEqual(first[0], "admitted")
            held = first[1]
            refused, admitted = [], []
            for i in range(1, 25):
                kind, v = try_session_start(h.cwmp_port, "ADM-%d" % i)
                if kind == "refused":
                    refused.append(v)
                else:
                    admitted.append(v)
            # a bucket of 4 plus 5/s over the ~4 s burst (0.15 s per refused probe): most refused
            self.assertGreaterEqual(len(refused), 8, (len(refused), len(admitted)))
            for ra in refused:
                self.assertTrue(RETRY // 2 <= ra <= RETRY // 2 + RETRY, ra)
            self.assertGreater(len(set(refused)), 1, "Retry-After is not jittered: %r" % refused)
            # the session admitted before the overload finishes normally
            r = held.post()
            self.assertEqual(r.status, 204)
            held.close()
            for cp in admitted:
                self.assertEqual(cp.post().status, 204)
                cp.close()
            m = h.metrics()
            shed = sum(v for k, v in m.items() if k.startswith("hems_admission_shed_total{"))
            self.assertEqual(shed, len(refused))
            # sequential probes meet an empty bucket at accept: refused before a byte is read
            self.assertGreaterEqual(m['hems_admission_shed_total{reason="accept"}'], 1)
            self.assertEqual(m["hems_cwmp_sessions_shed_total"], len(refused))
            self.assertEqual(m["hems_admission_admitted_total"], 1 + len(admitted))
            self.assertEqual(m['hems_admission_rate_limit{shard="0"}'], 5)
            self.assertEqual(m['hems_admission_inflight{shard="0"}'], 0)
            # load gone: admission resumes by itself
            time.sleep(1.2)
            kind, cp = try_session_start(h.cwmp_port, "ADM-LATE")
            self.assertEqual(kind, "admitted")
            self.assertEqual(cp.post().status, 204)
            cp.close()
            wait_gate_places_back(self, h)

    def test_syn_shed_drops_syns_in_the_kernel_under_overload(self):
        """Far over the rate, the listener's socket filter drops a share of the SYNs: the
        excess costs hemsd nothing and the clients' TCP retransmits them (establishment
        after ~1 s instead of ~1 ms); without it (syn_shed=false) every connection is
        accepted at once and refused at the gate. Once the load is gone the filter goes.
        (Unpaced: the share that follows the gate's refusals; a paced listener's is in the
        pacing test below.)"""
        slow, peak = {}, {}
        for shed in ("true", "false"):
            with Hemsd("--set", "admission.max_rate_per_shard=40",
                       "--set", "admission.min_rate_per_shard=1",
                       "--set", "admission.accept_pacing=false",
                       "--set", "admission.syn_shed=" + shed, shards=1) as h:
                key = 'hems_admission_syn_drop_ratio{shard="0"}'
                times, peak[shed], _ = storm_with_drop_ratio(h, 400, 1.5)
                slow[shed] = sum(1 for t in times if t >= 0.9)
                # the gate refused what got through beyond the rate, either way
                m = h.metrics()
                self.assertGreater(m['hems_admission_shed_total{reason="accept"}'], 100, shed)
                # load gone: the filter goes within the controller's short window
                deadline = time.monotonic() + 5
                while h.metrics()[key] > 0:
                    self.assertLess(time.monotonic(), deadline, "filter still on, idle")
                    time.sleep(0.2)
                time.sleep(0.3)  # the next shard tick removes it from the listener
                t = time.monotonic()
                connect(h.cwmp_port).close()
                self.assertLess(time.monotonic() - t, 0.5)
        # 600 connections at 10x the rate: most of their SYNs dropped at least once
        self.assertGreater(peak["true"], 0.5, peak)
        self.assertEqual(peak["false"], 0, peak)
        self.assertGreater(slow["true"], 150, slow)
        self.assertLess(slow["false"], 20, slow)

    def test_accept_pacing_leaves_the_excess_in_the_kernel_queue(self):
        """Far over the rate, a paced listener accepts only what the rate allows and leaves
        the rest in a short kernel queue whose overflow drops SYNs: next to nothing is
        refused at accept (unpaced, every connection over the rate is accepted and refused),
        the clients' TCP retransmits (establishment after ~1 s), a session started in the
        storm is admitted, not refused, and the SYN filter keeps the queue from
        overflowing. Once the load is gone the listener is back to its multishot accept.
        (Unpaced, the SYN filter is off too: every connection reaches the gate.)"""
        refused, slow, drop = {}, {}, {}
        for pacing in ("true", "false"):
            with Hemsd("--set", "admission.max_rate_per_shard=200",
                       "--set", "admission.min_rate_per_shard=1",
                       "--set", "admission.syn_shed=" + pacing,
                       "--set", "admission.accept_pacing=" + pacing, shards=1) as h:
                # a session in the overload: waits in the queue, then is admitted
                times, drop[pacing], (kind, cp) = storm_with_drop_ratio(
                    h, 600, 1.0, lambda: try_session_start(h.cwmp_port, "PACED-%s" % pacing))
                m = h.metrics()
                refused[pacing] = m['hems_admission_shed_total{reason="accept"}']
                slow[pacing] = sum(1 for t in times if t >= 0.9)
                if pacing == "true":
                    self.assertEqual(kind, "admitted")
                    self.assertEqual(cp.post().status, 204)
                    cp.close()
                    self.assertGreater(m["hems_admission_deferred_total"], 10)
                    # load gone: unpaced within a second or so, and a session is quick again
                    time.sleep(2.5)
                    t = time.monotonic()
                    kind, cp = try_session_start(h.cwmp_port, "AFTER")
                    self.assertEqual(kind, "admitted")
                    self.assertEqual(cp.post().status, 204)
                    cp.close()
                    self.assertLess(time.monotonic() - t, 0.5)
                    wait_gate_places_back(self, h)
                else:
                    self.assertEqual(m["hems_admission_deferred_total"], 0)
                    if kind == "admitted":
                        cp.close()
        # 600 connections at 3x the rate
        self.assertGreater(refused["false"], 250, refused)
        self.assertLess(refused["true"], refused["false"] / 4, refused)
        self.assertGreater(slow["true"], 150, slow)
        self.assertLess(slow["false"], 20, slow)
        self.assertGreater(drop["true"], 0.2, drop)
        self.assertEqual(drop["false"], 0, drop)

    def test_disabled_admits_all(self):
        with Hemsd("--set", "admission.enabled=false", "--set", "admission.max_rate_per_shard=1") as h:
            for i in range(10):
                kind, cp = try_session_start(h.cwmp_port, "OFF-%d" % i)
                self.assertEqual(kind, "admitted")
                self.assertEqual(cp.post().status, 204)
                cp.close()
            self.assertEqual(h.metrics()["hems_admission_enabled"], 0)


if __name__ == "__main__":
    main()
