import unittest

from routing_plugin import FieldError, Metadata, Plate, Row, Trigger, ValidationError


def fields(err: ValidationError) -> dict[str, str]:
    return {f.field: f.reason for f in err.fields}


class RowTest(unittest.TestCase):
    def test_values_kept_as_sent(self) -> None:
        row = Row.from_json('{"index": 2, "data": {"zeta": 1.50, "b": "\\u00b5", "n": null, "t": true, "e": -1E+3}}')
        self.assertEqual(row.index, 2)
        self.assertEqual(row.fields, (("zeta", b"1.50"), ("b", b'"\\u00b5"'), ("n", b"null"), ("t", b"true"),
                                      ("e", b"-1E+3")))
        self.assertEqual(row.data_json(), b'{"zeta":1.50,"b":"\\u00b5","n":null,"t":true,"e":-1E+3}')
        self.assertEqual(row.data, {"zeta": 1.5, "b": "µ", "n": None, "t": True, "e": -1000.0})
        self.assertEqual(row.get("b"), "µ")
        self.assertIsNone(row.get("missing"))

    def test_of_and_key_quoting(self) -> None:
        row = Row.of({"a": 1, "x<y": "s"})
        self.assertIsNone(row.index)
        self.assertEqual(row.data_json(), b'{"a":1,"x\\u003cy":"s"}')
        self.assertEqual(Row(()).data_json(), b"{}")

    def test_bad_rows(self) -> None:
        for bad in ('{"data": {"a": 1}', '{"index": 1}', '{"data": {"a": 1}, "x": 2}', '[1]', '{"data": {"a" 1}}',
                    '{"data": {"a": 1}} x'):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                Row.from_json(bad)


class TriggerTest(unittest.TestCase):
    def test_valid(self) -> None:
        t = Trigger.from_json(b'\xef\xbb\xbf{"apiVersion": "ChiBio/v1alpha1/ChiBio1", "protocol": "P",'
                              b' "plate": {"rows": 2, "columns": 1}, "spec": [{"v": 1}, {"v": 2}],'
                              b' "metadata": {"source": "s", "spec": {"run": "r1"}}}')
        self.assertEqual(t.plate, Plate(2, 1))
        self.assertEqual(t.metadata, Metadata("s", {"run": "r1"}))
        self.assertEqual(Trigger.from_dict(t.to_dict()), t)

    def test_validation_names_every_field(self) -> None:
        t = Trigger(api_version="OT-2", protocol=" P", spec=[{"v": 1}, 2], plate=Plate(3, 0),
                    metadata=Metadata(" ", 5), uuid="a/b")
        with self.assertRaises(ValidationError) as cm:
            t.validate()
        self.assertEqual(fields(cm.exception), {
            "uuid": "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
            "apiVersion": '"OT-2" must look like <api>/v<N>[suffix][/<device>], e.g. OT-2/v1alpha1 or ChiBio/v1alpha1/ChiBio1',
            "protocol": "must not start or end with white space",
            "plate.columns": "must be between 1 and 1000",
            "spec[1]": "must be an object",
            "metadata.source": "is required when metadata is set",
            "metadata.spec": "must be an object or an array",
        })

    def test_spec_rules(self) -> None:
        cases = [
            (dict(spec=None), "is required: an object, or an array of objects (one per well)"),
            (dict(spec={}), "must not be empty"),
            (dict(spec=[]), "must not be empty"),
            (dict(spec="x"), "must be an object or an array of objects"),
            (dict(spec={"v": 1}, plate=Plate(2, 1)), "must be an array of 2 well objects when plate is set"),
            (dict(spec=[{"v": 1}], plate=Plate(2, 1)), "has 1 wells but plate 2x1 has 2"),
            (dict(spec={"v": float("nan")}), "cannot be written as JSON: Out of range float values are not JSON compliant"),
        ]
        for kw, reason in cases:
            with self.subTest(**{k: repr(v) for k, v in kw.items()}), self.assertRaises(ValidationError) as cm:
                Trigger(api_version="OT-2/v1", protocol="P", **kw).validate()
            self.assertEqual(fields(cm.exception)["spec"], reason)

    def test_decoding_errors(self) -> None:
        for doc, field in (('{"apiVersion": "a/v1", "protocol": "P", "spec": {"v": 1}, "extra": 1}', "extra"),
                           ('{"apiVersion": "a/v1", "apiVersion": "b/v1", "protocol": "P", "spec": {"v": 1}}', "apiVersion"),
                           ('{"apiVersion": 1, "protocol": "P", "spec": {"v": 1}}', "apiVersion"),
                           ('{"apiVersion": "a/v1", "protocol": "P", "plate": {"rows": "2", "columns": 1}, "spec": [{}]}', "plate.rows"),
                           ('{"apiVersion": "a/v1",', ""),
                           ('[]', "")):
            with self.subTest(doc=doc), self.assertRaises(ValidationError) as cm:
                Trigger.from_json(doc)
            self.assertIn(field, fields(cm.exception))

    def test_field_error_text(self) -> None:
        self.assertEqual(str(ValidationError([FieldError("a", "b"), FieldError("", "c")])), "a: b; c")


if __name__ == "__main__":
    unittest.main()
