"""The start page (/) and /metrics reflect the builds just made: the page
lists them with their durations and layers, shows Nix's messages of the
failed ones as text (never as markup), and the Prometheus counters add up
the requests and builds of every worker process and thread."""

import html
import os
import re
import signal
import threading
import time

from harness import Instance, TestCase

METRIC = re.compile(r'^([a-z_]+)(\{[^}]*\})? ([0-9.e+]+)$')


def escape(text):
    """As the start page escapes: ' as &#39;."""
    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


def parse_metrics(text):
    """{(name, labels): value} from the text exposition format, checking what
    Prometheus relies on: every sample's family has a # TYPE line before it,
    and a histogram's buckets are cumulative, end with le="+Inf", and that
    bucket equals its _count."""
    out = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ")
            assert family not in types, "two # TYPE lines for " + family
            types[family] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = METRIC.match(line)
        assert m, "not an exposition line: %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, "no # TYPE line before %r" % line
        out[(name, m.group(2) or "")] = float(m.group(3))
    for family, kind in types.items():
        if kind != "histogram":
            continue
        buckets = [(labels, value) for (name, labels), value in out.items()
                   if name == family + "_bucket"]  # in exposition order
        assert buckets, "histogram %s has no buckets" % family
        bounds = [float(re.fullmatch(r'\{le="([^"]+)"\}', labels).group(1)) for labels, _ in buckets]
        assert bounds == sorted(set(bounds)), "bucket bounds of %s: %r" % (family, bounds)
        values = [value for _, value in buckets]
        assert values == sorted(values), "buckets of %s are not cumulative: %r" % (family, buckets)
        assert buckets[-1][0] == '{le="+Inf"}', "the last bucket of %s is not +Inf" % family
        assert buckets[-1][1] == out[(family + "_count", "")], "+Inf bucket != _count of " + family
        assert (family + "_sum", "") in out, "histogram %s has no _sum" % family
    return out


class PagesTest(TestCase):
    def test_start_page_and_metrics_reflect_builds(self):
        # Every manifest request reaches the pool (none from nginx's cache),
        # so the metrics count them all.
        with Instance(NIXERY_WORKERS=2, NIXERY_TAG_CACHE_SECONDS=0, expected_errors=()) as inst:
            empty = inst.get("/")
            self.assertEqual(empty.status, 200)
            self.assertIn(b"Nothing built yet", empty.body)

            self.assertEqual(inst.manifest("app-a").status, 200)
            self.assertEqual(inst.manifest("app-b").status, 200)  # reuses app-a's layers
            self.assertEqual(inst.manifest("injects").status, 404)
            self.assertEqual(inst.manifest("nosuchpackage").status, 404)
            # Many cached requests at once, spread over both workers' threads.
            results = []
            threads = [threading.Thread(target=lambda: results.append(inst.manifest("app-a").status))
                       for _ in range(24)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(results, [200] * 24)
            builds = inst.builds()
            self.assertEqual(len(builds), 4)

            # nginx refuses Host headers with spaces or slashes, not these.
            host = 'evil"\'><img&x=1>'
            page = inst.get("/", {"Host": host})
            self.assertEqual(page.status, 200)
            self.assertEqual(page.header("Content-Type"), "text/html; charset=utf-8")
            self.assertIn("default-src 'none'", page.header("Content-Security-Policy"))
            body = page.body.decode()
            self.assertNotIn("<img", body)
            self.assertNotIn("<script", body)
            self.assertNotIn("<b>bold", body)
            self.assertIn("docker pull " + escape(host) + "/shell/hello", body)
            self.assertIn(escape("<script>alert('nix')</script> & <b>bold</b>"), body)
            # The source is described without its server path.
            self.assertIn("a local package set", body)
            self.assertNotIn(str(inst.package_set), body)
            self.assertIn("<code>shell</code>", body)
            self.assertIn("bashInteractive", body)
            for b in builds:
                row = re.search(r"<tr><td><code>%s</code></td><td><code>latest</code></td>"
                                r"<td>[0-9: -]+</td><td>([0-9.]+ s)</td><td class=\"n\">(\d+)</td>"
                                r"<td class=\"n\">(\d+)</td>" % re.escape(b["image"]), body)
                self.assertIsNotNone(row, b["image"])
                self.assertEqual((int(row.group(2)), int(row.group(3))),
                                 (b["layers_built"], b["layers_reused"]))
            app_b = next(b for b in builds if b["image"] == "app-b")
            self.assertGreater(app_b["layers_reused"], 0)
            errors = body.split("Recent build errors", 1)[1]
            self.assertIn("nosuchpackage", errors)
            self.assertIn("nixery-test: &lt;script&gt;", errors)
            head = inst.head("/")
            self.assertEqual(head.status, 200)
            self.assertEqual(head.body, b"")

            r = inst.get("/metrics")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"))
            m = parse_metrics(r.body.decode())
            self.assertEqual(m[("nixery_http_requests_total", '{route="manifest",status="200"}')], 26)
            self.assertEqual(m[("nixery_http_requests_total", '{route="manifest",status="404"}')], 2)
            self.assertEqual(m[("nixery_http_requests_total", '{route="start_page",status="200"}')], 3)
            self.assertGreaterEqual(m[("nixery_http_requests_total", '{route="base",status="200"}')], 1)
            self.assertEqual(m[("nixery_builds_total", "")], 4)
            self.assertEqual(m[("nixery_build_failures_total", "")], 2)
            self.assertEqual(m[("nixery_build_duration_seconds_count", "")], 4)
            self.assertEqual(m[("nixery_build_duration_seconds_bucket", '{le="+Inf"}')], 4)
            self.assertAlmostEqual(m[("nixery_build_duration_seconds_sum", "")],
                                   sum(b["duration"] for b in builds), delta=0.01)
            self.assertEqual(m[("nixery_layers_packed_total", "")], sum(b["layers_built"] for b in builds))
            self.assertEqual(m[("nixery_layers_reused_total", "")], sum(b["layers_reused"] for b in builds))
            packed = [r for r in inst.log_records() if r.get("msg") == "layer packed"]
            self.assertEqual(m[("nixery_layer_bytes_packed_total", "")], sum(r["size"] for r in packed))
            self.assertEqual(m[("nixery_worker_restarts_total", "")], 0)
            # (That counters add up across processes is a unit test: which
            # worker accepts which request is the kernel's choice.)

            # The master counts a worker it had to replace.
            victim = inst.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            deadline = time.time() + 30
            while time.time() < deadline:
                r = inst.get("/metrics")
                # A connection the killed worker had accepted is reset: nginx
                # answers that one request with 503 UNAVAILABLE.
                if r.status == 200:
                    m = parse_metrics(r.body.decode())
                    if m[("nixery_worker_restarts_total", "")] == 1:
                        break
                time.sleep(0.2)
            self.assertEqual(m[("nixery_worker_restarts_total", "")], 1)
            # The replacement shares the counters: nothing was lost.
            self.assertEqual(m[("nixery_builds_total", "")], 4)
