"""The worker pool and `nixery run` when the machine says no: forks and
threads refused (systemd's TasksMax, RLIMIT_NPROC), a hang-up, nginx's
master killed, a second instance started on the same state directory."""

import concurrent.futures
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from harness import NIXERY, ROOT, Instance, TestCase, alive, keep_dirs, wait_for


class RefusingLibc:
    """tests/integration/data/refusing_libc.c built into a preload library;
    fork() and pthread_create() fail while a flag file exists."""

    def __init__(self, work):
        self.library = work / "refusing_libc.so"
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(self.library),
                        str(ROOT / "tests/integration/data/refusing_libc.c"), "-ldl"], check=True)
        self.fork_flag = work / "refuse-fork"
        self.thread_flag = work / "refuse-thread"

    def settings(self):
        return {"LD_PRELOAD": str(self.library), "REFUSE_FORK_FLAG": str(self.fork_flag),
                "REFUSE_THREAD_FLAG": str(self.thread_flag)}


class WorkerPoolTest(TestCase):
    def setUp(self):
        self.work = Path(tempfile.mkdtemp(prefix="nixery-pool-"))
        if not keep_dirs():
            self.addCleanup(shutil.rmtree, self.work, True)

    def test_workers_are_replaced_once_forks_work_again(self):
        # Before, a refused fork lost its worker for good, and with every
        # worker lost the pool stopped with status 0: systemd would not
        # restart it.
        libc = RefusingLibc(self.work)
        with Instance(expected_errors=["fork failed"], **libc.settings()) as inst:
            self.assertEqual(inst.manifest("hello").status, 200)
            master = inst.pool_pid()
            workers = inst.worker_pids()
            libc.fork_flag.touch()
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: "fork failed; trying again" in inst.log_text(), 10, "a refused fork")
            time.sleep(1.5)
            self.assertTrue(alive(master), "the pool stopped")
            libc.fork_flag.unlink()
            wait_for(lambda: len(inst.worker_pids()) == len(workers), 10, "the workers back")
            self.assertEqual(inst.manifest("hello").status, 200)

    def test_no_thread_for_a_request_or_a_build_is_an_answer_not_a_crash(self):
        # Before, std::thread's exception ended the worker (abort) with
        # every request in it: the waiting request's thread, and the build
        # job's the dispatcher starts.
        libc = RefusingLibc(self.work)
        with Instance(NIXERY_WORKERS=1, expected_errors=["no thread for a"],
                      **libc.settings()) as inst:
            self.assertEqual(inst.manifest("hello").status, 200)
            worker = inst.worker_pids()
            libc.thread_flag.touch()
            r = inst.manifest("pause.s1.v62")  # not built yet: a job and a waiter
            self.assertRegistryError(r, 429, "TOOMANYREQUESTS")
            wait_for(lambda: "no thread for a build job" in inst.log_text(), 10,
                     "the job's refused thread")
            libc.thread_flag.unlink()
            self.assertEqual(inst.worker_pids(), worker, "the worker died")
            # The failed job is not remembered: the next pull builds.
            wait_for(lambda: inst.manifest("pause.s1.v62").status == 200, 30, "a build")

    def test_a_hang_up_leaves_the_workers_and_their_builds(self):
        with Instance() as inst:
            workers = inst.worker_pids()
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pull = pool.submit(inst.manifest, "pause.s4.v61")
                time.sleep(1.5)
                for pid in workers:
                    os.kill(pid, signal.SIGHUP)
                self.assertEqual(pull.result(60).status, 200)
            self.assertEqual(inst.worker_pids(), workers)

    def test_nginx_killed_leaves_nothing_on_the_port(self):
        inst = Instance().start()
        try:
            web = [p for p in inst.children(inst.process.pid) if p != inst.pool_pid()][0]
            group = inst.children(web)
            self.assertTrue(group)  # its workers
            os.kill(web, signal.SIGKILL)
            self.assertEqual(inst.process.wait(60), 1)
            wait_for(lambda: not any(alive(p) for p in group), 10, "nginx's workers to go")
        finally:
            inst.stop()

    def test_a_second_run_on_the_same_state_directory_is_refused(self):
        with Instance() as inst:
            conf = (inst.state / "nginx.conf").read_text()
            env = dict(inst.env)
            env["PORT"] = "1"
            r = subprocess.run([str(NIXERY), "run"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(b"another nixery is running with this NIXERY_STATE_DIR", r.stdout)
            self.assertEqual((inst.state / "nginx.conf").read_text(), conf)
            self.assertTrue((inst.state / "nginx.pid").exists())
            self.assertEqual(inst.manifest("hello").status, 200)
