"""One smoke run of the AddressSanitizer + UBSan build (build/check/nixery,
made by `make check`): start an instance, build and pull an image, answer
errors, stop. Any sanitizer report in the instance's log fails the test
(Instance.check_logs), as nginx-tests fail on sanitizer reports in error.log."""

import hashlib
import unittest

from harness import NIXERY_SANITIZED, Instance, TestCase

SANITIZER_ENV = {
    # Halt on the first report, so it cannot scroll by unnoticed; leaks are
    # checked where processes exit normally (the launcher, `nixery serve`).
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


@unittest.skipUnless(NIXERY_SANITIZED.exists(), "no sanitizer build: run `make check` first")
class SanitizerSmokeTest(TestCase):
    def test_build_pull_errors_and_stop(self):
        with Instance(binary=NIXERY_SANITIZED, **SANITIZER_ENV) as instance:
            self.assertEqual(instance.get("/v2/").status, 200)
            r = instance.manifest("app-a")
            self.assertEqual(r.status, 200, r)
            manifest = r.json()
            for blob in [manifest["config"]] + manifest["layers"]:
                got = instance.get("/v2/app-a/blobs/" + blob["digest"])
                self.assertEqual(got.status, 200)
                self.assertEqual("sha256:" + hashlib.sha256(got.body).hexdigest(), blob["digest"])
            self.assertEqual(instance.manifest("app-a").status, 200)  # from the cache
            self.assertEqual(instance.manifest("nosuchpackage").status, 404)
            self.assertEqual(instance.manifest("Hello").status, 400)
            self.assertEqual(instance.get("/v2/app-a/blobs/sha256:" + "0" * 64).status, 404)
            self.assertEqual(instance.get("/metrics").status, 200)
            self.assertEqual(instance.get("/").status, 200)


if __name__ == "__main__":
    unittest.main()
