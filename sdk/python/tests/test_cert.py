import base64
import os
import ssl
import tempfile
import unittest

from routing_plugin import _cert


class CertTest(unittest.TestCase):
    def test_openssl_accepts_it_for_mutual_tls_on_localhost(self) -> None:
        server_cert, client_cert = _cert.generate(), _cert.generate()
        d = tempfile.mkdtemp()

        def files(c: _cert.Certificate, name: str) -> tuple[str, str]:
            paths = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
            for path, data in zip(paths, (c.cert_pem, c.key_pem)):
                with open(path, "wb") as f:
                    f.write(data)
            return paths

        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(*files(server_cert, "server"))  # the key matches the certificate
        server.load_verify_locations(cadata=client_cert.cert_pem.decode())
        server.verify_mode = ssl.CERT_REQUIRED
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.load_cert_chain(*files(client_cert, "client"))
        client.load_verify_locations(cadata=server_cert.cert_pem.decode())

        s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        s = server.wrap_bio(s_in, s_out, server_side=True)
        c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
        done = {"c": False, "s": False}
        for _ in range(20):
            for name, conn in (("c", c), ("s", s)):
                if not done[name]:
                    try:
                        conn.do_handshake()
                        done[name] = True
                    except ssl.SSLWantReadError:
                        pass
            s_in.write(c_out.read())
            c_in.write(s_out.read())
            if all(done.values()):
                break
        self.assertTrue(all(done.values()))
        self.assertEqual(c.getpeercert()["subjectAltName"], (("DNS", "localhost"),))
        self.assertIsNotNone(s.getpeercert())

    def test_handshake_field_is_unpadded_base64_der(self) -> None:
        c = _cert.generate()
        field = c.handshake_field()
        self.assertNotIn("=", field)
        self.assertEqual(base64.b64decode(field + "=" * (-len(field) % 4)), c.der)
        self.assertEqual(ssl.DER_cert_to_PEM_cert(c.der).encode().replace(b"\n", b""), c.cert_pem.replace(b"\n", b""))

    def test_keys_differ(self) -> None:
        self.assertNotEqual(_cert.generate().key_pem, _cert.generate().key_pem)


if __name__ == "__main__":
    unittest.main()
