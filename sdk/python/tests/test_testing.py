import threading
import unittest
from dataclasses import dataclass

from routing_plugin import ConfigError, Info, Permanent, PluginError, Trigger, Unavailable, ValidationError, setting
from routing_plugin.testing import FakeHost


@dataclass
class Config:
    name: str = setting(required=True)


class Emitter:
    def __init__(self, triggers: list) -> None:
        self.cfg = Config()
        self.triggers = triggers
        self.results: list = []
        self.ran = threading.Event()

    def info(self) -> Info:
        return Info(name="emitter", version="1", config=self.cfg)

    def run(self, host) -> None:
        for t, key in self.triggers:
            try:
                self.results.append(host.emit(t, key=key))
            except Exception as err:  # noqa: BLE001 - recorded for the test
                self.results.append(err)
        host.state.put("ran", self.cfg.name)
        self.ran.set()
        host.stopping.wait()


class Failing:
    def info(self) -> Info:
        return Info(name="failing", version="1")

    def start(self, host) -> None:
        host.state.put("k", "v")

    def push(self, request):
        raise {"perm": Permanent("no"), "key": KeyError("x")}[request.uuid]


GOOD = {"apiVersion": "OT-2/v1alpha1", "protocol": "P", "spec": {"v": 1}}


class FakeHostTest(unittest.TestCase):
    def test_emissions_stored_once_per_key_and_validated(self) -> None:
        host = FakeHost()
        w = Emitter([(GOOD, "k"), (GOOD, "k"), (dict(GOOD, protocol=""), None),
                     (Trigger("OT-2/v1alpha1", "Q", {"v": 2}), None)])
        with host.run_watcher(w, config={"NAME": "n"}):
            self.assertTrue(w.ran.wait(5))
        first, dup, invalid, other = w.results
        self.assertFalse(first.duplicate)
        self.assertEqual((dup.uuid, dup.duplicate), (first.uuid, True))
        self.assertIsInstance(invalid, ValidationError)
        self.assertEqual([e.trigger.protocol for e in host.triggers], ["P", "Q"])
        self.assertEqual(len(host.emitted), 3)
        self.assertEqual(host.state.get("ran"), b"n")
        self.assertEqual(host.state.list(), [("ran", b"n")])

    def test_emit_error(self) -> None:
        host = FakeHost()
        host.emit_error = Unavailable("down")
        w = Emitter([(GOOD, None)])
        with host.run_watcher(w, config={"NAME": "n"}):
            self.assertTrue(w.ran.wait(5))
        self.assertIsInstance(w.results[0], Unavailable)
        with self.assertRaisesRegex(AssertionError, "0 stored"):
            host.wait_triggers(1, timeout=0.05)

    def test_config_error(self) -> None:
        with self.assertRaisesRegex(ConfigError, "PLUGIN_OTHER_NAME"):
            FakeHost().run_watcher(Emitter([]), instance="other")

    def test_push_errors_as_the_host_sees_them(self) -> None:
        host = FakeHost()
        pusher = host.start_pusher(Failing())
        self.assertEqual(host.state.get("k"), b"v")
        with self.assertRaises(Permanent):
            pusher.push("perm", [])
        with self.assertRaises(PluginError) as cm:
            pusher.push("key", [])
        self.assertEqual(str(cm.exception), "KeyError: 'x'")
        self.assertIsInstance(cm.exception.__cause__, KeyError)


if __name__ == "__main__":
    unittest.main()
