import os
import tempfile
import unittest

from pyjsonl import JsonlPusher
from routing_plugin import ConfigError, Permanent, Row
from routing_plugin.testing import FakeHost


def rows(*bodies: str) -> list[Row]:
    return [Row.from_json(b) for b in bodies]


class PyJsonlTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = os.path.join(tempfile.mkdtemp(), "out")
        self.pusher = FakeHost().start_pusher(JsonlPusher(), config={"DIR": self.dir})

    def read(self, name: str) -> bytes:
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def test_rows_appended_byte_exact(self) -> None:
        self.pusher.push("run1", rows('{"index": 0, "data": {"zeta": 1.50, "alpha": "x", "flag": true, "none": null}}'))
        self.pusher.push("run1", rows('{"index":1,"data":{"odMeasured":0.42,"mediaTemp":37.1}}',
                                      '{"data":{"note":"with \\"quotes\\" and unicode µ"}}'))
        self.pusher.push("run2", rows('{"data":{"k":-1e-3}}'))
        self.assertEqual(self.read("run1.jsonl"), (
            '{"uuid":"run1","index":0,"data":{"zeta":1.50,"alpha":"x","flag":true,"none":null}}\n'
            '{"uuid":"run1","index":1,"data":{"odMeasured":0.42,"mediaTemp":37.1}}\n'
            '{"uuid":"run1","data":{"note":"with \\"quotes\\" and unicode µ"}}\n').encode())
        self.assertEqual(self.read("run2.jsonl"), b'{"uuid":"run2","data":{"k":-1e-3}}\n')

    def test_unsafe_uuid_is_permanent(self) -> None:
        for uuid in ("../escape", "a/b", ""):
            with self.subTest(uuid=uuid), self.assertRaises(Permanent):
                self.pusher.push(uuid, rows('{"data":{"a":1}}'))

    def test_missing_dir_is_a_config_error(self) -> None:
        with self.assertRaisesRegex(ConfigError, "PLUGIN_PYJSONL_DIR"):
            FakeHost().start_pusher(JsonlPusher())


if __name__ == "__main__":
    unittest.main()
