"""The CAs verify with openssl, and the discovery hash is kubeadm's documented openssl recipe."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bootstrap.material import ClusterBootstrap
from bootstrap.pki import KeyPair, discovery_hash, new_ca
from tests.support.tools import require_tool


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        [require_tool("openssl"), *args], input=stdin, capture_output=True, check=True
    ).stdout


def write(path: Path, pair: KeyPair) -> tuple[Path, Path]:
    cert, key = path.with_suffix(".crt"), path.with_suffix(".key")
    cert.write_text(pair.cert_pem)
    key.write_text(pair.key_pem)
    return cert, key


def test_each_ca_verifies_and_owns_its_key(cluster_bootstrap: ClusterBootstrap, tmp_path) -> None:
    pki = cluster_bootstrap.material.pki
    for name, pair in (
        ("ca", pki.ca),
        ("etcd-ca", pki.etcd_ca),
        ("front-proxy-ca", pki.front_proxy_ca),
    ):
        cert, key = write(tmp_path / name, pair)
        assert b": OK" in openssl("verify", "-CAfile", str(cert), str(cert))
        text = openssl("x509", "-in", str(cert), "-noout", "-text").decode()
        assert "CA:TRUE" in text and "Certificate Sign" in text
        assert f"CN = {'kubernetes' if name == 'ca' else name}" in text
        assert openssl("x509", "-in", str(cert), "-noout", "-pubkey") == openssl(
            "pkey", "-in", str(key), "-pubout"
        )


def test_a_leaf_signed_by_the_ca_verifies_and_a_stranger_does_not(
    cluster_bootstrap: ClusterBootstrap, tmp_path
) -> None:
    """What kubeadm does with the CA on the node: sign leaf certificates that chain to it."""
    ca_cert, ca_key = write(tmp_path / "ca", cluster_bootstrap.material.pki.ca)
    stranger, _ = write(tmp_path / "stranger", new_ca("kubernetes"))
    leaf_key, csr, leaf = tmp_path / "leaf.key", tmp_path / "leaf.csr", tmp_path / "leaf.crt"
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(leaf_key),
            "-subj", "/CN=kube-apiserver", "-out", str(csr))  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "1", "-out", str(leaf))  # fmt: skip
    assert b": OK" in openssl("verify", "-CAfile", str(ca_cert), str(leaf))
    refused = subprocess.run(
        ["openssl", "verify", "-CAfile", str(stranger), str(leaf)], capture_output=True
    )
    assert refused.returncode != 0


def test_service_account_key_pair_matches(cluster_bootstrap: ClusterBootstrap, tmp_path) -> None:
    sa = cluster_bootstrap.material.pki.service_account
    key = tmp_path / "sa.key"
    key.write_text(sa.key_pem)
    assert openssl("pkey", "-in", str(key), "-pubout").decode() == sa.cert_pem


def test_discovery_hash_is_kubeadms_openssl_recipe(
    cluster_bootstrap: ClusterBootstrap, tmp_path
) -> None:
    cert, _ = write(tmp_path / "ca", cluster_bootstrap.material.pki.ca)
    assert discovery_hash(cluster_bootstrap.material.pki.ca.cert_pem) == openssl_hash(cert)


def openssl_hash(cert: Path) -> str:
    """`openssl x509 -pubkey -in ca.crt | openssl rsa -pubin -outform der | openssl dgst -sha256`"""
    pubkey = openssl("x509", "-pubkey", "-noout", "-in", str(cert))
    der = openssl("rsa", "-pubin", "-outform", "der", stdin=pubkey)
    digest = openssl("dgst", "-sha256", "-hex", stdin=der).decode()
    return "sha256:" + digest.strip().rsplit(" ", 1)[-1]


def test_every_ca_is_new() -> None:
    assert discovery_hash(new_ca("kubernetes").cert_pem) != discovery_hash(
        new_ca("kubernetes").cert_pem
    )
