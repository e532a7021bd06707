"""The cluster's certificate authorities and service-account key pair, as kubeadm expects them.

kubeadm uses an existing CA under /etc/kubernetes/pki instead of generating one, so the
control plane generates them once per cluster and every control-plane node shares them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict, Field

# kubeadm's own defaults: RSA 2048 keys, CAs valid ten years.
KEY_BITS = 2048
CA_VALIDITY = timedelta(days=3650)


class KeyPair(BaseModel):
    """A PEM certificate (or public key) and its PEM private key."""

    model_config = ConfigDict(frozen=True)

    cert_pem: str
    key_pem: str = Field(repr=False)


class ClusterPki(BaseModel):
    """Everything kubeadm's shared-certificates list holds, minus what it derives from them."""

    model_config = ConfigDict(frozen=True)

    ca: KeyPair
    etcd_ca: KeyPair
    front_proxy_ca: KeyPair
    service_account: KeyPair = Field(description="cert_pem holds the PEM public key (sa.pub)")


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def new_ca(common_name: str, now: datetime | None = None) -> KeyPair:
    """A self-signed CA like kubeadm's: CA:TRUE, keyCertSign + digitalSignature + keyEncipherment."""
    now = now or datetime.now(UTC)
    key = _private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # tolerate a node clock slightly behind
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem=_key_pem(key)
    )


def new_service_account_key() -> KeyPair:
    """sa.key / sa.pub: the key pair that signs service-account tokens."""
    key = _private_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(cert_pem=public.decode(), key_pem=_key_pem(key))


def new_cluster_pki() -> ClusterPki:
    """Names as kubeadm gives them, so certificates it signs later look like its own."""
    return ClusterPki(
        ca=new_ca("kubernetes"),
        etcd_ca=new_ca("etcd-ca"),
        front_proxy_ca=new_ca("front-proxy-ca"),
        service_account=new_service_account_key(),
    )


def discovery_hash(ca_cert_pem: str) -> str:
    """kubeadm's `--discovery-token-ca-cert-hash`: SHA-256 of the CA's DER SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()
