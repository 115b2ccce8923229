import datetime
import pathlib
import unittest
from dataclasses import dataclass
from typing import Optional

from routing_plugin import ConfigError, ConfigKey, env_prefix, load_config, setting
from routing_plugin.config import config_keys, format_duration, parse_duration


@dataclass
class Config:
    dir: str = setting(required=True, help="where")
    api_key: str = setting(help="looks secret by its name")
    password_file: pathlib.Path = setting(secret=True)
    every: datetime.timedelta = setting(default="5s", help="period")
    retries: int = setting(default=3)
    ratio: float = 0.5
    verbose: bool = setting(default=False)
    tags: list[str] = setting(default=["a"])
    limit: Optional[int] = setting(env="MAX")


class ConfigTest(unittest.TestCase):
    def test_keys(self) -> None:
        self.assertEqual(config_keys(Config()), [
            ConfigKey("DIR", required=True, help="where"),
            ConfigKey("API_KEY", secret=True, help="looks secret by its name"),
            ConfigKey("PASSWORD_FILE", secret=True),
            ConfigKey("EVERY", default="5s", help="period"),
            ConfigKey("RETRIES", default="3"),
            ConfigKey("RATIO", default="0.5"),
            ConfigKey("VERBOSE", default="false"),
            ConfigKey("TAGS", default="a"),
            ConfigKey("MAX"),
        ])
        self.assertEqual(config_keys(None), [])

    def test_prefix(self) -> None:
        self.assertEqual(env_prefix("riffyn"), "PLUGIN_RIFFYN_")
        self.assertEqual(env_prefix("my-files"), "PLUGIN_MY_FILES_")

    def test_load(self) -> None:
        cfg = Config()
        load_config(cfg, "my-files", {
            "PLUGIN_MY_FILES_DIR": "/in", "PLUGIN_MY_FILES_EVERY": "1m30s", "PLUGIN_MY_FILES_VERBOSE": "yes",
            "PLUGIN_MY_FILES_TAGS": "x, y", "PLUGIN_MY_FILES_MAX": "0x10", "PLUGIN_MY_FILES_PASSWORD_FILE": "/p",
            "PLUGIN_OTHER_DIR": "/not-mine",
        })
        self.assertEqual(cfg, Config(dir="/in", api_key="", password_file=pathlib.Path("/p"),
                                     every=datetime.timedelta(seconds=90), retries=3, ratio=0.5, verbose=True,
                                     tags=["x", "y"], limit=16))

    def test_defaults_and_zero_values(self) -> None:
        cfg = Config()
        load_config(cfg, "x", {"PLUGIN_X_DIR": "/in"})
        self.assertEqual((cfg.api_key, cfg.every, cfg.limit, cfg.tags), ("", datetime.timedelta(seconds=5), None, ["a"]))

    def test_errors_name_every_variable(self) -> None:
        with self.assertRaises(ConfigError) as cm:
            load_config(Config(), "x", {"PLUGIN_X_RETRIES": "many", "PLUGIN_X_EVERY": "soon"})
        msg = str(cm.exception)
        for part in ("PLUGIN_X_DIR is required (where)", "PLUGIN_X_RETRIES='many': must be an integer",
                     "PLUGIN_X_EVERY='soon': must be a duration"):
            self.assertIn(part, msg)

    def test_an_empty_required_value_is_missing(self) -> None:
        with self.assertRaisesRegex(ConfigError, "PLUGIN_X_DIR is required"):
            load_config(Config(), "x", {"PLUGIN_X_DIR": ""})

    def test_the_class_is_refused(self) -> None:
        with self.assertRaises(TypeError):
            load_config(Config, "x", {})

    def test_durations(self) -> None:
        for text, seconds, formatted in (("5s", 5, "5s"), ("200ms", 0.2, "200ms"), ("1h30m", 5400, "1h30m0s"),
                                         ("1.5s", 1.5, "1.5s"), ("90", 90, "1m30s"), ("0", 0, "0s")):
            with self.subTest(text=text):
                d = parse_duration(text)
                self.assertAlmostEqual(d.total_seconds(), seconds)
                self.assertEqual(format_duration(d), formatted)
        for bad in ("", "s", "5x", "1m5"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                parse_duration(bad)


if __name__ == "__main__":
    unittest.main()
