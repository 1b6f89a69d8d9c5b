#!/usr/bin/env python3
"""Makes the TEST-ONLY AMD SEV-SNP chain in this directory (see README.md).

    ark.pem       test ARK: self-signed, RSA-4096, RSASSA-PSS SHA-384 (MGF1 SHA-384, salt 48)
    ask.pem       test ASK: RSA-4096, signed by the test ARK the same way
    vcek.der      test VCEK: P-384, signed by the test ASK, with AMD's VCEK extensions
                  (TCB SPLs and hwID) for CHIP_ID and the TCB below
    vcek-key.pk8  the test VCEK's private key, PKCS#8 DER (what the tests sign reports with)

The ARK and ASK private keys are thrown away: nothing but this script could issue another
certificate under the test ARK. Running it again makes a new, different chain; the tests read
the files, so they follow. Needs python3 with `cryptography` (version 41 or later).

The layout is AMD's: the Versioned Chip Endorsement Key specification gives the extension
OIDs; `crates/attest/src/sev_snp.rs` is the verifier these certificates must pass. CHIP_ID and
the TCB values must equal `TEST_CHIP_ID` and `TEST_TCB` in `crates/attest/src/testing.rs`.
"""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))

# The test chip: CHIP_ID bytes 0xc0, 0xc1, ..., 0xff.
CHIP_ID = bytes(range(0xC0, 0x100))
# The test TCB (Milan layout): bootloader, TEE, SNP, microcode SPLs. The microcode SPL is at
# least 0x80 so that its DER INTEGER needs a leading zero byte, which the verifier must read.
TCB = {"bl": 4, "tee": 0, "snp": 22, "ucode": 213}

NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)

AMD_ARC = "1.3.6.1.4.1.3704.1."


def der_integer(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return bytes([0x02, len(body)]) + body


def der_ia5(text: str) -> bytes:
    data = text.encode("ascii")
    return bytes([0x16, len(data)]) + data


def amd_extension(suffix: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(AMD_ARC + suffix), value)


def name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Covenant tests"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST ONLY - not AMD"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def ca_builder(subject: x509.Name, issuer: x509.Name, key) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def main() -> None:
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    vcek_key = ec.generate_private_key(ec.SECP384R1())

    ark_name = name("ARK-Milan-TEST")
    ask_name = name("SEV-Milan-TEST")
    ark = ca_builder(ark_name, ark_name, ark_key).sign(ark_key, hashes.SHA384(), rsa_padding=PSS)
    ask = ca_builder(ask_name, ark_name, ask_key).sign(ark_key, hashes.SHA384(), rsa_padding=PSS)

    vcek = (
        x509.CertificateBuilder()
        .subject_name(name("SEV-VCEK"))
        .issuer_name(ask_name)
        .public_key(vcek_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(amd_extension("1", der_integer(1)), critical=False)  # structVersion
        .add_extension(amd_extension("2", der_ia5("Milan-B0")), critical=False)  # productName
        .add_extension(amd_extension("3.1", der_integer(TCB["bl"])), critical=False)
        .add_extension(amd_extension("3.2", der_integer(TCB["tee"])), critical=False)
        .add_extension(amd_extension("3.3", der_integer(TCB["snp"])), critical=False)
        .add_extension(amd_extension("3.4", der_integer(0)), critical=False)
        .add_extension(amd_extension("3.5", der_integer(0)), critical=False)
        .add_extension(amd_extension("3.6", der_integer(0)), critical=False)
        .add_extension(amd_extension("3.7", der_integer(0)), critical=False)
        .add_extension(amd_extension("3.8", der_integer(TCB["ucode"])), critical=False)
        # hwID as a DER OCTET STRING of 64 bytes, as AMD's newer VCEKs carry it.
        .add_extension(amd_extension("4", bytes([0x04, 0x40]) + CHIP_ID), critical=False)
        .sign(ask_key, hashes.SHA384(), rsa_padding=PSS)
    )

    def write(file: str, data: bytes) -> None:
        with open(os.path.join(HERE, file), "wb") as out:
            out.write(data)

    write("ark.pem", ark.public_bytes(serialization.Encoding.PEM))
    write("ask.pem", ask.public_bytes(serialization.Encoding.PEM))
    write("vcek.der", vcek.public_bytes(serialization.Encoding.DER))
    write(
        "vcek-key.pk8",
        vcek_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


if __name__ == "__main__":
    main()
