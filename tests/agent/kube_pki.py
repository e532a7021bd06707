"""A throwaway cluster CA, API server certificate and admin client certificate, as kubeadm
makes them (CN kubernetes-admin, O system:masters), for the stand-in API server over TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _issue(
    subject: x509.Name,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    *,
    ca: bool = False,
    server_ip: str | None = None,
    client: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server_ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    certificate = builder.sign(issuer_key or key, hashes.SHA256())
    return certificate, key


def _pem(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    return Pem(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass(frozen=True)
class ClusterPki:
    ca: Pem
    server: Pem
    admin: Pem

    @classmethod
    def make(cls, server_ip: str = "127.0.0.1") -> ClusterPki:
        ca_name = _name("kubernetes")
        ca_cert, ca_key = _issue(ca_name, ca_name, None, ca=True)
        server = _issue(_name("kube-apiserver"), ca_name, ca_key, server_ip=server_ip)
        admin = _issue(_name("kubernetes-admin", "system:masters"), ca_name, ca_key, client=True)
        return cls(_pem(ca_cert, ca_key), _pem(*server), _pem(*admin))

    def server_context(self, directory: Path) -> ssl.SSLContext:
        """TLS that, like the API server, accepts only client certificates of the cluster CA."""
        cert, key, ca = directory / "server.crt", directory / "server.key", directory / "ca.crt"
        cert.write_bytes(self.server.cert)
        key.write_bytes(self.server.key)
        ca.write_bytes(self.ca.cert)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        context.verify_mode = ssl.CERT_REQUIRED
        return context
