"""A small site certificate authority: the broker's server certificate and device client
certificates. Keys are EC P-256; private keys are written 0600 and never logged."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.validators import check_segment


@dataclass(frozen=True, slots=True)
class CertPair:
    cert_file: Path
    key_file: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class SiteCA:
    """Loads the CA in ``directory`` or creates one there."""

    def __init__(self, directory: Path, org: str = "gridward") -> None:
        self.directory = directory
        self.org = org
        self.cert_file = directory / "ca.crt"
        self.key_file = directory / "ca.key"
        directory.mkdir(parents=True, exist_ok=True)
        if self.cert_file.exists() and self.key_file.exists():
            self._cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{self.key_file} is not an EC private key")
            self._key = key
        else:
            self._key = ec.generate_private_key(ec.SECP256R1())
            now = dt.datetime.now(dt.UTC)
            name = _name(f"{org} site CA", org)
            self._cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(self._key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        key_cert_sign=True,
                        crl_sign=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .sign(self._key, hashes.SHA256())
            )
            _write_key(self.key_file, self._key)
            self.cert_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def _issue(
        self, common_name: str, out_dir: Path, stem: str, *, server: bool, days: int
    ) -> CertPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, self.org))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(common_name),
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(self._key, hashes.SHA256())
        out_dir.mkdir(parents=True, exist_ok=True)
        pair = CertPair(out_dir / f"{stem}.crt", out_dir / f"{stem}.key")
        pair.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pair.key_file, key)
        return pair

    def issue_server(self, host: str, out_dir: Path, days: int = 825) -> CertPair:
        return self._issue(host, out_dir, "server", server=True, days=days)

    def issue_client(self, device: str, out_dir: Path, days: int = 825) -> CertPair:
        """A client certificate whose CN is the device id (the broker's username for it)."""
        check_segment(device, "device")
        return self._issue(device, out_dir, device, server=False, days=days)
