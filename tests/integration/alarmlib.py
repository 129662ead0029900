"""Helpers for alarm tests: FaultMgmt event parameters, Informs that carry them, and a small
Server-Sent Events client over a raw socket (so a test controls reading and buffers)."""
import json
import socket
import time

import cpe as C


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def event(root, ring, i, t, aid, notif, sev, cause="Loss of Signal", text=""):
    p = "%s.FaultMgmt.%s.%d." % (root, ring, i)
    return [(p + "EventTime", t, "xsd:dateTime"),
            (p + "AlarmIdentifier", aid, "xsd:string"),
            (p + "NotificationType", notif, "xsd:string"),
            (p + "ManagedObjectInstance", "DC=hems,ENBFunction=1", "xsd:string"),
            (p + "EventType", "Communications Alarm", "xsd:string"),
            (p + "ProbableCause", cause, "xsd:string"),
            (p + "SpecificProblem", "S1 down", "xsd:string"),
            (p + "PerceivedSeverity", sev, "xsd:string"),
            (p + "AdditionalText", text, "xsd:string"),
            (p + "AdditionalInformation", "", "xsd:string")]


def inform(h, params, sn, events=("4 VALUE CHANGE",)):
    """One Inform session from device 00005A-HeNB-<sn>; asserts it was answered."""
    cpe = C.Cpe(h.cwmp_port)
    r = cpe.post(C.inform_xml(sn=sn, events=events, params=params))
    assert r.status == 200 and r.rpc()[0] == "InformResponse", (r.status, r.body)
    assert cpe.post().status == 204
    cpe.close()


def raise_alarms(h, sn, t0_ms, n, prefix="X", sev="Major", step_ms=1000):
    """<n> NewAlarm entries (ids <prefix>-0..), 30 per Inform, event times t0 + i*step."""
    i = 0
    while i < n:
        params = []
        for k in range(min(30, n - i)):
            params += event("Device", "ExpeditedEvent", k + 1, iso(t0_ms + (i + k) * step_ms),
                            "%s-%d" % (prefix, i + k), "NewAlarm", sev,
                            text="alarm %s-%d padding %s" % (prefix, i + k, "x" * 120))
        inform(h, params, sn)
        i += 30


class Sse:
    """GET an SSE resource; parse events as they come."""

    def __init__(self, port, path, last_id=None, token=None, rcvbuf=None, timeout=5):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        hdr = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" % path
        if last_id:
            hdr += "Last-Event-ID: %s\r\n" % last_id
        if token:
            hdr += "Authorization: Bearer %s\r\n" % token
        self.sock.sendall((hdr + "\r\n").encode())
        self.buf = b""
        self.eof = False
        self.status = None
        self.headers = {}
        self.comments = []

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def head(self, timeout=5):
        end = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            if self.eof or time.time() > end:
                raise AssertionError("no response head: %r" % self.buf)
            self._fill(0.2)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        return self.status

    def next_event(self, timeout=5):
        """The next event as dict(id, event, data (parsed JSON)); None on timeout or EOF."""
        end = time.time() + timeout
        while True:
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                ev = {}
                for ln in block.decode().split("\n"):
                    if ln.startswith(":"):
                        self.comments.append(ln)
                    elif ":" in ln:
                        k, v = ln.split(":", 1)
                        ev[k] = v[1:] if v.startswith(" ") else v
                if "data" in ev:
                    ev["data"] = json.loads(ev["data"])
                    return ev
            if self.eof or time.time() > end:
                return None
            self._fill(min(0.2, max(0.01, end - time.time())))

    def events(self, n, timeout=10):
        out = []
        end = time.time() + timeout
        while len(out) < n:
            e = self.next_event(max(0.01, end - time.time()))
            if e is None:
                break
            out.append(e)
        return out

    def close(self):
        self.sock.close()
