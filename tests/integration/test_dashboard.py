"""Dashboard end to end: a real hemsd serves the static page (/ and /ui/), simulated HeNBs
send Informs carrying alarms, and headless Chromium loads the page and runs its JavaScript
against the API and the live alarm stream; the test checks what the rendered DOM shows
(device count, registration states, the active alarms, a live event that arrived while the
page was open). Skips (exit 77) only when no chromium binary is installed."""
import re
import shutil
import subprocess
import threading
import time
import unittest

from alarmlib import event, inform, iso, raise_alarms
from hemsd import Hemsd, http_request, main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def dump_dom(url, budget_ms=8000):
    r = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom",
                        "--virtual-time-budget=%d" % budget_ms, url],
                       capture_output=True, timeout=90)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    return r.stdout.decode()


def text_of(dom, elem_id):
    m = re.search(r'id="%s"[^>]*>(.*?)</' % re.escape(elem_id), dom, re.S)
    return m.group(1) if m else None


@unittest.skipIf(CHROMIUM is None, "chromium not installed (apt-get install chromium)")
class Dashboard(unittest.TestCase):
    def test_static_files(self):
        with Hemsd() as h:
            st, hd, body = http_request(h.admin_port, "GET", "/")
            self.assertEqual(st, 200)
            self.assertTrue(hd["content-type"].startswith("text/html"), hd)
            self.assertIn(b'id="alarms-active"', body)
            st, hd, body = http_request(h.admin_port, "GET", "/ui/app.js")
            self.assertEqual(st, 200)
            self.assertTrue(hd["content-type"].startswith("text/javascript"))
            for bad in ("/ui/../CMakeLists.txt", "/ui/%2e%2e/CMakeLists.txt", "/ui/nope.js",
                        "/ui/.hidden"):
                self.assertEqual(http_request(h.admin_port, "GET", bad)[0], 404, bad)
            self.assertEqual(http_request(h.admin_port, "POST", "/")[0], 405)

    def test_page_shows_devices_and_alarms(self):
        with Hemsd(shards=2) as h:
            t0 = 1795741200000
            raise_alarms(h, "UI-1", t0, 2, prefix="UI", sev="Major")
            raise_alarms(h, "UI-2", t0, 1, prefix="CRIT", sev="Critical")
            inform(h, [], "UI-3", events=("0 BOOTSTRAP", "1 BOOT"))
            # acknowledged through the API: the page shows who acknowledged
            st, _, b = http_request(h.admin_port, "GET", "/api/v1/alarms?device=00005A-HeNB-UI-1")
            key = re.search(rb'"key":"([0-9a-f]{32})"', b).group(1).decode()
            self.assertEqual(http_request(h.admin_port, "POST", "/api/v1/alarms/%s/ack" % key,
                                          b'{"by":"noc-alice"}')[0], 200)

            # a new alarm while the page is open arrives on the live stream
            def later():  # once the page has opened its stream
                deadline = time.time() + 30
                while time.time() < deadline and h.metrics().get("hems_alarm_streams", 0) < 1:
                    time.sleep(0.05)
                inform(h, event("Device", "ExpeditedEvent", 1, iso(int(time.time() + 1) * 1000),
                                "LIVE-1", "NewAlarm", "Minor"), "UI-2")
            th = threading.Thread(target=later)
            th.start()
            dom = dump_dom("http://127.0.0.1:%d/" % h.admin_port, budget_ms=25000)
            th.join()

            self.assertEqual(text_of(dom, "dev-total"), "3", dom)
            self.assertIn('data-key="registered">3<', dom)
            self.assertEqual(text_of(dom, "conn-status"), "live")
            rows = re.findall(r'<tr data-key="[0-9a-f]{32}">(.*?)</tr>', dom, re.S)
            ids = [re.findall(r"<td[^>]*>(.*?)</td>", r)[2] for r in rows]
            self.assertIn("CRIT-0", ids)
            self.assertIn("UI-0", ids)
            self.assertIn("UI-1", ids)
            # most severe first
            self.assertEqual(ids[0], "CRIT-0", ids)
            self.assertIn("noc-alice", dom)
            self.assertIn('sev sev-Critical">Critical<', dom)
            # the live event (and the refreshed active list) made it into the page
            events = re.search(r'<ol id="events"[^>]*>(.*?)</ol>', dom, re.S).group(1)
            self.assertIn("LIVE-1", events, dom)
            self.assertIn("LIVE-1", ids, "active list not refreshed after the live event")
            self.assertEqual(text_of(dom, "alarm-count"), "4")
            self.assertRegex(dom, r'id="error" class="error" hidden')

    def test_campaign_panel(self):
        import json
        with Hemsd() as h:
            inform(h, [], "CP-1", events=("0 BOOTSTRAP", "1 BOOT"))
            st, _, b = http_request(h.admin_port, "PUT", "/api/v1/files/c.xml?type=3", b"<c/>")
            self.assertEqual(st, 201, b)
            body = json.dumps({"name": "ui-rollout", "file": "c.xml", "selector": {}}).encode()
            st, _, b = http_request(h.admin_port, "POST", "/api/v1/campaigns", body,
                                    {"Content-Type": "application/json"})
            self.assertEqual(st, 201, b)
            dom = dump_dom("http://127.0.0.1:%d/" % h.admin_port)
            row = re.search(r'<tr data-campaign="ui-rollout">(.*?)</tr>', dom, re.S)
            self.assertIsNotNone(row, dom)
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
            self.assertEqual(cells[1], "created")
            self.assertEqual(cells[2], "1/1")
            self.assertIn('<progress max="1"', cells[3])
            self.assertEqual(cells[4], "1")
            self.assertEqual(text_of(dom, "campaign-count"), "1")

    def test_token_required(self):
        import hashlib
        tok = "dash-token"
        cfg = "[api]\nreader_token_sha256 = %s\n" % hashlib.sha256(tok.encode()).hexdigest()
        with Hemsd(config=cfg) as h:
            dom = dump_dom("http://127.0.0.1:%d/" % h.admin_port, budget_ms=3000)
            self.assertIn("enter a valid token", dom)
            self.assertEqual(text_of(dom, "dev-total"), "–")


if __name__ == "__main__":
    if CHROMIUM is None:
        print("SKIP: chromium not installed (apt-get install chromium)")
        raise SystemExit(77)
    main()
