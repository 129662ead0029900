"""Replays the real CPE traffic in ../shared/data/captures against hemsd: for every recorded
session, the ACS requests of the recording are queued as tasks through the API, then each
CPE message is sent in order (its cwmp:ID rewritten to the ID hemsd used) and hemsd must
answer what the recorded ACS answered: InformResponse, the same RPC with the same arguments,
TransferCompleteResponse, or 204 at the end."""
import json
import os
import re
import unittest
import xml.etree.ElementTree as ET

import cpe as C
from hemsd import Hemsd, http_request, main, SHARED

CAPTURES = os.path.join(SHARED, "captures")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def local(tag):
    return tag.split("}")[-1]


def child(el, name):
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def text(el, name, default=""):
    c = child(el, name)
    return (c.text or "") if c is not None else default


def rpc_of(xml):
    root = ET.fromstring(xml)
    body = [c for c in root if local(c.tag) == "Body"][0]
    return list(body)[0]


def task_of(el):
    """The API task that makes hemsd send the recorded ACS request <el>."""
    name = local(el.tag)
    if name == "GetParameterNames":
        return {"rpc": name, "path": text(el, "ParameterPath"),
                "next_level": text(el, "NextLevel").strip().lower() in ("1", "true")}
    if name == "GetParameterValues":
        return {"rpc": name, "names": [s.text for s in child(el, "ParameterNames")]}
    if name == "SetParameterValues":
        params = []
        for pv in child(el, "ParameterList"):
            v = child(pv, "Value")
            t = next((val for k, val in v.attrib.items() if local(k) == "type"), "xsd:string")
            params.append({"name": text(pv, "Name"), "value": v.text or "", "type": t})
        return {"rpc": name, "params": params, "parameter_key": text(el, "ParameterKey")}
    if name in ("AddObject", "DeleteObject"):
        return {"rpc": name, "object": text(el, "ObjectName"), "parameter_key": text(el, "ParameterKey")}
    if name == "Download":
        return {"rpc": name, "file_type": text(el, "FileType"), "url": text(el, "URL"),
                "username": text(el, "Username"), "password": text(el, "Password"),
                "file_size": int(text(el, "FileSize", "0") or 0),
                "target_file_name": text(el, "TargetFileName"),
                "delay_seconds": int(text(el, "DelaySeconds", "0") or 0)}
    if name in ("Reboot", "FactoryReset"):
        return {"rpc": name}
    raise AssertionError("no task form for " + name)


def same_args(sent, recorded):
    """The request hemsd sent carries the recorded request's arguments (CommandKey aside)."""
    def norm(el):
        out = []
        for e in el.iter():
            if local(e.tag) in ("CommandKey",):
                continue
            if e.text and e.text.strip():
                out.append((local(e.tag), e.text.strip()))
        return out
    return norm(sent) == norm(recorded)


class Replay(unittest.TestCase):
    def replay(self, sub):
        folder = os.path.join(CAPTURES, sub)
        if not os.path.isdir(folder):
            self.skipTest("no capture " + sub)
        files = sorted(os.listdir(folder))
        steps = [(f.split("-")[1], os.path.join(folder, f)) for f in files]
        with Hemsd() as h:
            dev = None
            cpe = None
            for i, (who, path) in enumerate(steps):
                if who != "cpe":
                    continue
                body = read(path)
                is_inform = "Inform" in path and "Response" not in path
                if is_inform:
                    inf = rpc_of(body)
                    did = child(inf, "DeviceId")
                    dev = "%s-%s-%s" % (text(did, "OUI"), text(did, "ProductClass"), text(did, "SerialNumber"))
                    # Queue this session's recorded ACS requests as tasks.
                    for who2, p2 in steps[i + 1:]:
                        if who2 == "cpe" and p2.endswith("-Inform.xml"):
                            break
                        if who2 == "acs":
                            el = rpc_of(read(p2))
                            if local(el.tag).endswith("Response"):
                                continue
                            st, _, b = http_request(h.admin_port, "POST", "/api/v1/devices/%s/tasks" % dev,
                                                    body=json.dumps(task_of(el)).encode())
                            self.assertEqual(st, 201, (p2, b))
                    if cpe:
                        cpe.close()
                    cpe = C.Cpe(h.cwmp_port)
                elif self.last_id is not None:
                    body = re.sub(rb"(<(?:\w+:)?ID[^>]*>)[^<]*(</)", lambda m: m.group(1) + self.last_id.encode() + m.group(2),
                                  body, count=1)
                r = cpe.post(body)
                # What the recorded ACS answered: the next file if it is an ACS one, else 204.
                nxt = steps[i + 1] if i + 1 < len(steps) else None
                if nxt is None or nxt[0] != "acs":
                    self.assertEqual(r.status, 204, (path, r.status, r.body[:300]))
                    self.last_id = None
                    continue
                self.assertEqual(r.status, 200, (path, r.body[:300]))
                want = rpc_of(read(nxt[1]))
                name, mid, got = r.rpc()
                self.assertEqual(name, local(want.tag), (path, nxt[1]))
                if name not in ("InformResponse", "TransferCompleteResponse"):
                    self.assertTrue(same_args(got, want), (nxt[1], r.body[:600]))
                self.last_id = mid
            if cpe:
                cpe.close()
            # Every queued task reached a final state through the recorded responses.
            st, _, b = http_request(h.admin_port, "GET", "/api/v1/devices/%s/tasks" % dev)
            return [t["state"] for t in json.loads(b)["tasks"]], h

    def setUp(self):
        self.last_id = None

    def test_genieacs_sim(self):
        states, _ = self.replay("genie")
        # GPN, GPV, SPV, GPV done; Download accepted (sent, then TransferComplete with a
        # foreign CommandKey leaves it sent); Reboot refused by the CPE with fault 9000.
        self.assertEqual(states.count("failed"), 1)
        self.assertNotIn("queued", states)

    def test_genieacs_sim_fap(self):
        states, _ = self.replay("genie-fap")
        self.assertEqual(set(states), {"done"})

    def test_easycwmp(self):
        states, _ = self.replay("easy")
        self.assertNotIn("queued", states)
        self.assertNotIn("failed", states)

    def test_easycwmp_faults(self):
        states, _ = self.replay("f3")
        self.assertEqual(states, ["failed", "failed", "done"])


if __name__ == "__main__":
    main()
