import datetime
import unittest

from routing_plugin import (ConfigError, FieldError, NotFound, Permanent, PluginError, PushRequest, Row, Skip,
                            StoredTrigger, TooLarge, Unavailable, ValidationError)
from routing_plugin._convert import (from_pb_error, from_pb_push_request, from_pb_trigger, to_pb_error,
                                     to_pb_push_request, to_pb_trigger)
from routing_plugin._pb import plugin_pb2 as pb


class ConvertTest(unittest.TestCase):
    def test_errors_keep_their_class_and_message(self) -> None:
        for err, code in ((Skip("other source"), pb.ERROR_CODE_SKIPPED), (Permanent("no"), pb.ERROR_CODE_PERMANENT),
                          (NotFound("k"), pb.ERROR_CODE_NOT_FOUND), (ConfigError("c"), pb.ERROR_CODE_CONFIG),
                          (TooLarge("t"), pb.ERROR_CODE_TOO_LARGE), (Unavailable("u"), pb.ERROR_CODE_UNAVAILABLE),
                          (PluginError("p"), pb.ERROR_CODE_UNSPECIFIED)):
            with self.subTest(err=err):
                wire = to_pb_error(err)
                self.assertEqual((wire.code, wire.message), (code, str(err)))
                back = from_pb_error(wire)
                self.assertIs(type(back), type(err))
                self.assertEqual(str(back), str(err))
        self.assertIsNone(to_pb_error(None))
        self.assertIsNone(from_pb_error(None))

    def test_other_exceptions_are_retryable_with_their_type(self) -> None:
        wire = to_pb_error(KeyError("x"))
        self.assertEqual((wire.code, wire.message), (pb.ERROR_CODE_UNSPECIFIED, "KeyError: 'x'"))
        self.assertEqual(to_pb_error(TimeoutError()).message, "TimeoutError")

    def test_validation_fields(self) -> None:
        wire = to_pb_error(ValidationError([FieldError("spec", "no")]))
        self.assertEqual((wire.code, wire.fields[0].field), (pb.ERROR_CODE_INVALID, "spec"))
        self.assertEqual(from_pb_error(wire).fields, (FieldError("spec", "no"),))
        plain = from_pb_error(pb.Error(code=pb.ERROR_CODE_INVALID, message="bad"))
        self.assertEqual(str(plain), "bad")

    def test_push_request_round_trip(self) -> None:
        created = datetime.datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc)
        req = PushRequest("u1", [Row.from_json('{"index":0,"data":{"a":1.50}}'), Row.of({"b": "x"})],
                          StoredTrigger(api_version="OT-2/v1", protocol="P", spec={"v": 1}, uuid="u1",
                                        created_at=created, source="http", status="published"), attempt=3)
        wire = to_pb_push_request(req)
        self.assertEqual(wire.trigger.created_at_unix_micro, 1740830400123456)
        self.assertEqual(wire.trigger.published_at_unix_micro, 0)
        self.assertEqual(from_pb_push_request(wire), req)
        self.assertIsNone(from_pb_push_request(pb.PushRequest(uuid="u")).trigger)

    def test_trigger_without_metadata(self) -> None:
        wire = pb.Trigger(api_version="a/v1", protocol="P", spec_json=b'{"v":1}')
        t = from_pb_trigger(wire)
        self.assertIsNone(t.metadata)
        self.assertIsNone(t.plate)
        self.assertEqual(to_pb_trigger(t), wire)


if __name__ == "__main__":
    unittest.main()
