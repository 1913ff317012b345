"""Certificates for a simulated fleet: one CA per fleet, server and client certificates.

ECDSA P-256 keys keep generation to about a millisecond per certificate, so a fleet of hundreds
of clusters starts quickly. kubectl (Go) and Python's ssl module both accept them.
"""

from __future__ import annotations

import datetime as dt
import inspect
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)
_BACKDATE = dt.timedelta(hours=1)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.CertificateBuilder:
    """What a CA and the certificates it issues share: validity, basic constraints and key
    usage (a CA also signs certificates and CRLs)."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            _key_usage("digital_signature", *(("key_cert_sign", "crl_sign") if ca else ())),
            critical=True,
        )
    )


# KeyUsage's nine flags, as its constructor names them.
_KEY_USAGE_FLAGS = tuple(inspect.signature(x509.KeyUsage).parameters)


def _key_usage(*usages: str) -> x509.KeyUsage:
    """The KeyUsage extension that asserts ``usages`` (flag names) and no other."""
    unknown = set(usages) - set(_KEY_USAGE_FLAGS)
    if unknown:
        raise ValueError(f"not key usages: {sorted(unknown)}")
    return x509.KeyUsage(**{flag: flag in usages for flag in _KEY_USAGE_FLAGS})


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA able to issue server and client certificates."""

    pair: KeyPair
    _key: ec.EllipticCurvePrivateKey
    _cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.pair.cert_pem

    @classmethod
    def generate(cls, common_name: str = "kubeinv-sim-ca") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            _builder(name, name, key, ca=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(_pair(cert, key), key, cert)

    def _issue(
        self,
        subject: x509.Name,
        *,
        server: bool,
        sans: list[x509.GeneralName] | None = None,
    ) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(subject, self._cert.subject, key, ca=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return _pair(builder.sign(self._key, hashes.SHA256()), key)

    def issue_server(self, common_name: str = "kube-apiserver") -> KeyPair:
        """A serving certificate valid for 127.0.0.1, ::1 and localhost (shared by all
        clusters)."""
        sans: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default.svc"),
        ]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return self._issue(subject, server=True, sans=sans)

    def issue_client(self, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
        """A client certificate: CN is the user name, O the groups (as kube-apiserver reads)."""
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
        return self._issue(x509.Name(attrs), server=False)


def _pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> KeyPair:
    return KeyPair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )
