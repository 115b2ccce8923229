import io
import json
import logging
import unittest

from routing_plugin.log import TRACE, HclogHandler, StdoutToLog, level_from_name


class LogTest(unittest.TestCase):
    def setUp(self) -> None:
        self.out = io.StringIO()
        self.log = logging.getLogger("plugin.test-log")
        self.log.propagate = False
        self.log.setLevel(TRACE)
        self.handler = HclogHandler(self.out)
        self.log.addHandler(self.handler)
        self.addCleanup(self.log.removeHandler, self.handler)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def test_hclog_json_lines(self) -> None:
        self.log.log(TRACE, "t")
        self.log.debug("d")
        self.log.info("emitted %s", "x", extra={"file": "a.json", "n": 2})
        self.log.warning("w")
        self.log.critical("c")
        lines = self.lines()
        self.assertEqual([e["@level"] for e in lines], ["trace", "debug", "info", "warn", "error"])
        self.assertEqual((lines[2]["@message"], lines[2]["file"], lines[2]["n"]), ("emitted x", "a.json", 2))
        self.assertEqual(lines[2]["@module"], "plugin.test-log")
        for e in lines:
            self.assertRegex(e["@timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")

    def test_exceptions_carry_their_traceback(self) -> None:
        try:
            {}["k"]
        except KeyError:
            self.log.error("failed", exc_info=True)
        (e,) = self.lines()
        self.assertEqual(e["error"], "KeyError: 'k'")
        self.assertIn("Traceback (most recent call last)", e["traceback"])

    def test_one_line_per_record(self) -> None:
        self.log.info("two\nlines")
        self.assertEqual(len(self.out.getvalue().splitlines()), 1)

    def test_levels_by_name(self) -> None:
        self.assertEqual([level_from_name(n) for n in ("trace", "DEBUG", "warn", "error", "", None, "x")],
                         [TRACE, logging.DEBUG, logging.WARNING, logging.ERROR, logging.INFO, logging.INFO, logging.INFO])

    def test_stdout_lines_are_logged(self) -> None:
        stdout_log = logging.getLogger("stdout")
        stdout_log.addHandler(self.handler)
        stdout_log.setLevel(logging.INFO)
        self.addCleanup(stdout_log.removeHandler, self.handler)
        self.addCleanup(stdout_log.setLevel, logging.NOTSET)
        w = StdoutToLog()
        print("hello", "world", file=w)
        w.write("partial")
        w.flush()
        self.assertEqual([(e["@module"], e["@message"]) for e in self.lines()], [("stdout", "hello world"), ("stdout", "partial")])


if __name__ == "__main__":
    unittest.main()
