import unittest

from routing_client import Plate, consume, dead_letter_name, decode_trigger, nodes
from routing_client.consumer import _Seen, delivery_count


class TriggerTest(unittest.TestCase):
    def test_decode_and_wells(self) -> None:
        t = decode_trigger(b'{"uuid":"u1","apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":2,"columns":1},'
                           b'"spec":[{"volume":1},{"volume":2}]}')
        self.assertEqual((t.uuid, t.api_version, t.protocol, t.plate), ("u1", "OT-2/v1alpha1", "P", Plate(2, 1)))
        self.assertEqual(t.wells(), [{"volume": 1}, {"volume": 2}])
        self.assertEqual(decode_trigger(b'{"uuid":"u2","spec":{"od":0.5}}').wells(), [{"od": 0.5}])
        for bad in (b"{}", b"not json", b"[]", b'{"uuid":""}', b"\xff"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                decode_trigger(bad)
        with self.assertRaises(ValueError):
            decode_trigger(b'{"uuid":"x","spec":[1]}').wells()

    def test_well_names(self) -> None:
        p = Plate(8, 12)
        self.assertEqual([p.well_name(i) for i in (0, 1, 7, 8, 95, 96, -1)], ["A1", "B1", "H1", "A2", "H12", "", ""])
        self.assertEqual(Plate(30, 1).well_name(26), "AA1")
        self.assertEqual(p.wells, 96)


class ConsumerPartsTest(unittest.TestCase):
    def test_nodes(self) -> None:
        self.assertEqual(nodes(" amqp://u:p@a:5672/ , amqps://b/vh"), ["amqp://u:p@a:5672/", "amqps://b/vh"])
        for bad in ("", "amqp://a/,", "http://a/", "amqp://u:secret@/x"):
            with self.subTest(bad=bad), self.assertRaises(ValueError) as cm:
                nodes(bad)
            self.assertNotIn("secret", str(cm.exception))

    def test_seen_window_and_bound(self) -> None:
        now = [1000.0]
        s = _Seen(60, 3, clock=lambda: now[0])
        for i in "abcd":
            s.add(i)
        self.assertNotIn("a", s)
        self.assertIn("b", s)
        self.assertEqual(len(s), 3)
        now[0] += 61
        self.assertNotIn("d", s)
        self.assertEqual(len(s), 0)

    def test_delivery_count_and_names(self) -> None:
        self.assertEqual(delivery_count(None), 0)
        self.assertEqual(delivery_count({"x-delivery-count": 2}), 2)
        self.assertEqual(dead_letter_name("chibio-relay"), "chibio-relay.dead")

    def test_bad_arguments(self) -> None:
        for kw in ({"queue": ""}, {"queue": "amq.x"}, {"queue": "q", "prefetch": 0},
                   {"queue": "q", "retry_min": 5, "retry_max": 1}):
            with self.subTest(kw=kw), self.assertRaises(ValueError):
                consume("amqp://a/", "OT-2.#", lambda m: None, **kw)
        with self.assertRaises(ValueError):
            consume("amqp://a/", "", lambda m: None, queue="q")
        with self.assertRaises(ValueError):
            consume("http://a/", "OT-2.#", lambda m: None, queue="q")


if __name__ == "__main__":
    unittest.main()
