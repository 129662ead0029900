"""GET /api/v1/devices filters (registration state, role, product class, software version,
last Inform age, active alarms) with pagination, against a real hemsd."""
import json
import time
import unittest

import cpe as C
from hemsd import Hemsd, http_request, main
from alarmlib import event


def get(h, q):
    st, _, b = http_request(h.admin_port, "GET", "/api/v1/devices" + q)
    return st, json.loads(b)


def ids(h, q, page=2):
    """Every device id the filter selects, following "next" with small pages."""
    out, after = [], None
    for _ in range(100):
        st, j = get(h, q + "&limit=%d" % page + ("&after=" + after if after else ""))
        assert st == 200, j
        out += [d["id"] for d in j["devices"]]
        if not j["next"]:
            return out
        after = j["next"]
    raise AssertionError("pagination did not end")


class DeviceFilters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd().start()
        fleet = [("HeNB", "A1", "4.2.1"), ("HeNB", "A2", "4.2.1"), ("HeNB", "A3", "4.3.0"),
                 ("HeNB-Lab", "L1", "4.2.1"), ("HeNB-Lab", "L2", "5.0.0")]
        for pc, sn, sw in fleet:
            params = [("Device.DeviceInfo.SoftwareVersion", sw, "xsd:string")]
            events = ("2 PERIODIC",)
            if sn == "A2":  # an active alarm
                params += event("Device", "ExpeditedEvent", 1, "2026-11-27T01:00:00Z", "S1-1",
                                "NewAlarm", "Major")
                events = ("4 VALUE CHANGE",)
            cpe = C.Cpe(cls.h.cwmp_port)
            r = cpe.post(C.inform_xml(pc=pc, sn=sn, events=events, params=params))
            assert r.status == 200, r.body
            assert cpe.post().status == 204
            cpe.close()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def test_filters(self):
        h = self.h
        every = ["00005A-HeNB-A1", "00005A-HeNB-A2", "00005A-HeNB-A3", "00005A-HeNB-Lab-L1",
                 "00005A-HeNB-Lab-L2"]
        self.assertEqual(ids(h, "?registration=registered"), every)
        self.assertEqual(ids(h, "?registration=blocked"), [])
        self.assertEqual(ids(h, "?role=initial"), [])
        self.assertEqual(ids(h, "?software_version=4.2.1"),
                         ["00005A-HeNB-A1", "00005A-HeNB-A2", "00005A-HeNB-Lab-L1"])
        self.assertEqual(ids(h, "?product_class=HeNB-Lab"), every[3:])
        self.assertEqual(ids(h, "?product_class=HeNB&software_version=4.2.1"), every[:2])
        self.assertEqual(ids(h, "?alarms=active"), ["00005A-HeNB-A2"])
        self.assertEqual(ids(h, "?alarms=none"), [d for d in every if d != "00005A-HeNB-A2"])
        self.assertEqual(ids(h, "?inform_age_lt=3600"), every)
        self.assertEqual(ids(h, "?inform_age_gt=3600"), [])
        time.sleep(1.2)
        self.assertEqual(ids(h, "?inform_age_gt=1"), every)
        self.assertEqual(ids(h, "?inform_age_lt=1"), [])

    def test_bad_filters(self):
        for q in ("?registration=sleepy", "?role=boss", "?inform_age_gt=soon",
                  "?inform_age_lt=-1", "?alarms=some"):
            st, j = get(self.h, q)
            self.assertEqual(st, 400, q)
            self.assertEqual(j["error"]["code"] if isinstance(j.get("error"), dict) else j.get("code"),
                             "bad_request", j)


if __name__ == "__main__":
    main()
