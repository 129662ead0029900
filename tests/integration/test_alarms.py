"""FaultMgmt alarms end to end: Informs carrying ExpeditedEvent/QueuedEvent entries are decoded
into alarms committed with the Inform (visible as soon as the InformResponse arrives),
deduplicated when the ring entries are re-sent, cleared, and queried through the API."""
import json
import unittest

import cpe as C
from alarmlib import event
from hemsd import Hemsd, http_request, main

DEV = "00005A-HeNB-ALM-1"


def api(h, path):
    st, _, b = http_request(h.admin_port, "GET", path)
    return st, (json.loads(b) if b.strip() else None)


class Alarms(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def inform(self, params, events=("4 VALUE CHANGE",), sn="ALM-1"):
        cpe = C.Cpe(self.h.cwmp_port)
        r = cpe.post(C.inform_xml(sn=sn, events=events, params=params))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.rpc()[0], "InformResponse")
        self.assertEqual(cpe.post().status, 204)
        cpe.close()

    def test_raise_dedupe_clear_query(self):
        raise_a = event("Device", "ExpeditedEvent", 1, "2026-11-27T01:00:00Z", "A-1", "NewAlarm",
                        "Major", text="MME 10.0.0.1")
        queued_b = event("InternetGatewayDevice.Services.FAPService.1", "QueuedEvent", 2,
                         "2026-11-27T00:58:00Z", "B-1", "NewAlarm", "Minor")
        unused = [("Device.FaultMgmt.ExpeditedEvent.2.EventTime", "0001-01-01T00:00:00Z", "xsd:dateTime"),
                  ("Device.FaultMgmt.ExpeditedEvent.2.AlarmIdentifier", "", "xsd:string")]
        self.inform(raise_a + queued_b + unused)
        # Committed with the Inform: visible right after the session, no polling.
        st, cur = api(self.h, "/api/v1/devices/%s/alarms" % DEV)
        self.assertEqual(st, 200, cur)
        got = {a["alarm_id"]: a for a in cur["alarms"]}
        self.assertEqual(sorted(got), ["A-1", "B-1"])
        a = got["A-1"]
        self.assertEqual((a["notification"], a["severity"], a["probable_cause"], a["additional_text"],
                          a["managed_object"], a["event_time_ms"]),
                         ("new", "Major", "Loss of Signal", "MME 10.0.0.1", "DC=hems,ENBFunction=1",
                          1795741200000))
        self.assertEqual(len(a["key"]), 32)

        # The ring entries re-sent with the next periodic Inform: no new alarm.
        self.inform(raise_a + queued_b, events=("2 PERIODIC",))
        st, hist = api(self.h, "/api/v1/alarms?device=%s" % DEV)
        self.assertEqual(st, 200)
        self.assertEqual([x["alarm_id"] for x in hist["alarms"]], ["B-1", "A-1"])

        # Changed then cleared.
        self.inform(event("Device", "ExpeditedEvent", 2, "2026-11-27T01:02:00Z", "A-1",
                          "ChangedAlarm", "Critical"))
        st, cur = api(self.h, "/api/v1/devices/%s/alarms" % DEV)
        self.assertEqual({x["alarm_id"]: x["severity"] for x in cur["alarms"]},
                         {"A-1": "Critical", "B-1": "Minor"})
        clear = event("Device", "ExpeditedEvent", 3, "2026-11-27T01:03:00Z", "A-1", "ClearedAlarm",
                      "Cleared")
        self.inform(clear)
        self.inform(clear)  # re-sent clear: a duplicate
        st, cur = api(self.h, "/api/v1/devices/%s/alarms" % DEV)
        self.assertEqual([x["alarm_id"] for x in cur["alarms"]], ["B-1"])
        st, hist = api(self.h, "/api/v1/alarms?device=%s" % DEV)
        self.assertEqual([(x["alarm_id"], x["notification"]) for x in hist["alarms"]],
                         [("B-1", "new"), ("A-1", "new"), ("A-1", "changed"), ("A-1", "cleared")])

        # since= and paging by cursor.
        st, h2 = api(self.h, "/api/v1/alarms?device=%s&since=1795741300000" % DEV)
        self.assertEqual([x["notification"] for x in h2["alarms"]], ["changed", "cleared"])
        st, p1 = api(self.h, "/api/v1/alarms?device=%s&limit=2" % DEV)
        self.assertEqual(len(p1["alarms"]), 2)
        self.assertIsNotNone(p1["next"])
        st, p2 = api(self.h, "/api/v1/alarms?device=%s&after=%s" % (DEV, p1["next"]))
        self.assertEqual([x["notification"] for x in p2["alarms"]], ["changed", "cleared"])
        st, e = api(self.h, "/api/v1/alarms?after=xyz")
        self.assertEqual(st, 400)

        # Other devices are filtered out.
        self.inform(event("Device", "QueuedEvent", 1, "2026-11-27T01:10:00Z", "C-1", "NewAlarm",
                          "Warning"), sn="ALM-2")
        st, hist = api(self.h, "/api/v1/alarms?device=%s" % DEV)
        self.assertEqual(len(hist["alarms"]), 4)
        st, allh = api(self.h, "/api/v1/alarms?since=1795741800000")
        self.assertEqual([x["alarm_id"] for x in allh["alarms"]], ["C-1"])


if __name__ == "__main__":
    main()
