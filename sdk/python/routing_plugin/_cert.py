"""A self-signed ECDSA P-256 certificate for go-plugin's AutoMTLS.

The standard library cannot create certificates and the kit depends on
nothing beyond grpcio and protobuf, so the key pair, the signature and the
DER encoding are done here. The key lives as long as the plugin process
and only secures the local connection to its host; like go-plugin's own
certificate it is valid for "localhost", for server and client use, and is
its own certificate authority.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import secrets
from dataclasses import dataclass

# NIST P-256 (secp256r1).
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_A = _P - 3
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)

_Jacobian = tuple[int, int, int]


def _double(pt: _Jacobian) -> _Jacobian:
    x, y, z = pt
    if y == 0 or z == 0:
        return (0, 0, 0)
    yy = y * y % _P
    s = 4 * x * yy % _P
    zz = z * z % _P
    m = (3 * x * x + _A * zz * zz) % _P
    nx = (m * m - 2 * s) % _P
    ny = (m * (s - nx) - 8 * yy * yy) % _P
    nz = 2 * y * z % _P
    return (nx, ny, nz)


def _add(p1: _Jacobian, p2: _Jacobian) -> _Jacobian:
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1, z2z2 = z1 * z1 % _P, z2 * z2 % _P
    u1, u2 = x1 * z2z2 % _P, x2 * z1z1 % _P
    s1, s2 = y1 * z2 * z2z2 % _P, y2 * z1 * z1z1 % _P
    if u1 == u2:
        return _double(p1) if s1 == s2 else (0, 0, 0)
    h = (u2 - u1) % _P
    r = (s2 - s1) % _P
    hh = h * h % _P
    hhh = h * hh % _P
    v = u1 * hh % _P
    nx = (r * r - hhh - 2 * v) % _P
    ny = (r * (v - nx) - s1 * hhh) % _P
    nz = h * z1 * z2 % _P
    return (nx, ny, nz)


def _multiply(k: int) -> tuple[int, int]:
    """k times the generator, in affine coordinates."""
    result: _Jacobian = (0, 0, 0)
    addend: _Jacobian = (_G[0], _G[1], 1)
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _double(addend)
        k >>= 1
    x, y, z = result
    zinv = pow(z, -1, _P)
    zinv2 = zinv * zinv % _P
    return (x * zinv2 % _P, y * zinv2 * zinv % _P)


def _sign(d: int, message: bytes) -> tuple[int, int]:
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    while True:
        k = secrets.randbelow(_N - 1) + 1
        r = _multiply(k)[0] % _N
        if r == 0:
            continue
        s = pow(k, -1, _N) * (e + r * d) % _N
        if s != 0:
            return r, s


# --- DER ---


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(v: int) -> bytes:
    raw = v.to_bytes(v.bit_length() // 8 + 1, "big")  # a leading 0 keeps it positive
    while len(raw) > 1 and raw[0] == 0 and raw[1] < 0x80:
        raw = raw[1:]
    return _tlv(0x02, raw)


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out.extend(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _time(t: datetime.datetime) -> bytes:
    if t.year < 2050:
        return _tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


def _bits(data: bytes) -> bytes:
    return _tlv(0x03, b"\x00" + data)


_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_PRIME256V1 = "1.2.840.10045.3.1.7"
_ECDSA_SHA256 = "1.2.840.10045.4.3.2"


@dataclass(frozen=True)
class Certificate:
    """A certificate and its private key."""

    der: bytes
    cert_pem: bytes
    key_pem: bytes

    def handshake_field(self) -> str:
        """The certificate as go-plugin's handshake carries it: base64 DER
        without padding."""
        return base64.b64encode(self.der).decode().rstrip("=")


def _pem(kind: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, "\n".join(lines), kind)).encode()


def generate(host: str = "localhost", days: int = 3650) -> Certificate:
    """Returns a new self-signed certificate for host with a new key."""
    d = secrets.randbelow(_N - 1) + 1
    qx, qy = _multiply(d)
    point = b"\x04" + qx.to_bytes(32, "big") + qy.to_bytes(32, "big")
    name = _seq(
        _tlv(0x31, _seq(_oid("2.5.4.10"), _tlv(0x0C, b"routing-layer plugin"))),
        _tlv(0x31, _seq(_oid("2.5.4.3"), _tlv(0x0C, host.encode()))),
    )
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    algorithm = _seq(_oid(_ECDSA_SHA256))
    extensions = _seq(
        # keyUsage (critical): digitalSignature, keyEncipherment, keyCertSign, keyAgreement
        _seq(_oid("2.5.29.15"), _tlv(0x01, b"\xff"), _tlv(0x04, _tlv(0x03, b"\x02\xac"))),
        # extKeyUsage: serverAuth, clientAuth
        _seq(_oid("2.5.29.37"), _tlv(0x04, _seq(_oid("1.3.6.1.5.5.7.3.1"), _oid("1.3.6.1.5.5.7.3.2")))),
        # basicConstraints (critical): CA
        _seq(_oid("2.5.29.19"), _tlv(0x01, b"\xff"), _tlv(0x04, _seq(_tlv(0x01, b"\xff")))),
        # subjectKeyIdentifier
        _seq(_oid("2.5.29.14"), _tlv(0x04, _tlv(0x04, hashlib.sha1(point).digest()))),
        # subjectAltName: dNSName
        _seq(_oid("2.5.29.17"), _tlv(0x04, _seq(_tlv(0x82, host.encode())))),
    )
    tbs = _seq(
        _tlv(0xA0, _int(2)),  # v3
        _int(secrets.randbits(127) | 1 << 126),
        algorithm,
        name,
        _seq(_time(now - datetime.timedelta(seconds=30)), _time(now + datetime.timedelta(days=days))),
        name,
        _seq(_seq(_oid(_EC_PUBLIC_KEY), _oid(_PRIME256V1)), _bits(point)),
        _tlv(0xA3, extensions),
    )
    r, s = _sign(d, tbs)
    der = _seq(tbs, algorithm, _bits(_seq(_int(r), _int(s))))
    key = _seq(
        _int(1),
        _tlv(0x04, d.to_bytes(32, "big")),
        _tlv(0xA0, _oid(_PRIME256V1)),
        _tlv(0xA1, _bits(point)),
    )
    return Certificate(der=der, cert_pem=_pem("CERTIFICATE", der), key_pem=_pem("EC PRIVATE KEY", key))
