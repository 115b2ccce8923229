import json
import os
import tempfile
import time
import unittest

from pyfiledrop import FileDropWatcher
from routing_plugin import ConfigError, Unavailable
from routing_plugin.testing import FakeHost

TRIGGER = {"apiVersion": "OT-2/v1alpha1", "protocol": "SimpleDilution",
           "plate": {"rows": 2, "columns": 1}, "spec": [{"volume": 150}, {"volume": 100}]}


class PyFileDropTest(unittest.TestCase):
    def setUp(self) -> None:
        self.inbox = tempfile.mkdtemp()
        self.host = FakeHost()
        self.config = {"DIR": self.inbox, "SCAN_INTERVAL": "20ms"}

    def drop(self, name: str, content: object) -> None:
        tmp = os.path.join(self.inbox, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        os.rename(tmp, os.path.join(self.inbox, name))

    def test_each_file_emitted_once_across_restarts(self) -> None:
        self.drop("a.json", TRIGGER)
        with self.host.run_watcher(FileDropWatcher(), config=self.config):
            (got,) = self.host.wait_triggers(1)
        self.assertEqual(got.trigger.protocol, "SimpleDilution")
        self.assertEqual(got.trigger.metadata.source, "pyfiledrop")
        self.assertEqual(got.trigger.metadata.spec, {"file": "a.json"})
        self.assertEqual(got.key.split(":")[:2], ["pyfiledrop", "a.json"])
        # A restarted watcher finds the file in State: nothing new is emitted.
        self.drop("b.json", dict(TRIGGER, protocol="Second"))
        with self.host.run_watcher(FileDropWatcher(), config=self.config):
            self.host.wait_triggers(2)
        self.assertEqual([e.trigger.protocol for e in self.host.emitted], ["SimpleDilution", "Second"])

    def test_new_content_is_a_new_trigger(self) -> None:
        self.drop("a.json", TRIGGER)
        with self.host.run_watcher(FileDropWatcher(), config=self.config):
            self.host.wait_triggers(1)
            self.drop("a.json", dict(TRIGGER, protocol="Rewritten"))
            self.host.wait_triggers(2)

    def test_invalid_file_recorded_and_skipped(self) -> None:
        self.drop("bad.json", {"apiVersion": "OT-2", "protocol": "X", "spec": {"v": 1}})
        self.drop("good.json", TRIGGER)
        with self.host.run_watcher(FileDropWatcher(), config=self.config):
            self.host.wait_triggers(1)
        self.assertIsNotNone(self.host.state.get("invalid/bad.json"))
        self.assertEqual(len(self.host.emitted), 1)

    def test_host_unavailable_is_retried(self) -> None:
        self.host.emit_error = Unavailable("store down")
        self.drop("a.json", TRIGGER)
        with self.assertLogs("plugin", "WARNING") as logs, self.host.run_watcher(FileDropWatcher(), config=self.config):
            deadline = time.monotonic() + 5
            while not any("store down" in str(getattr(r, "error", "")) for r in logs.records):
                self.assertLess(time.monotonic(), deadline, "no failed emission logged")
                time.sleep(0.01)
            self.assertEqual(self.host.emitted, [])
            self.host.emit_error = None
            self.host.wait_triggers(1)
        self.assertIsNotNone(self.host.state.get("emitted/a.json"))

    def test_missing_dir(self) -> None:
        with self.assertRaisesRegex(ConfigError, "PLUGIN_PYFILEDROP_DIR"):
            self.host.run_watcher(FileDropWatcher())
        run = self.host.run_watcher(FileDropWatcher(), config={"DIR": os.path.join(self.inbox, "nope")})
        with self.assertRaisesRegex(ConfigError, "PLUGIN_PYFILEDROP_DIR="):
            run.wait()


if __name__ == "__main__":
    unittest.main()
