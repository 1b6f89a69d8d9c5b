#!/usr/bin/env python3
"""Makes the synthetic Intel DCAP (TDX and SGX) test PKI and collateral in this directory.

Run from this directory: `python3 generate.py` (needs the `cryptography` package). It makes new
keys every time, so every file here changes together. This script is the only source of these
files; Rust reads only the files (`covenant_attest::testing` includes them in the test build and
makes TDX and SGX quotes with them), never this script.

What it makes, all under a test root that is NOT Intel's (`root-ca.der`):

- `root-ca.der`: the test root CA (ECDSA P-256, self-signed), standing in for the Intel SGX
  Root CA;
- `pck-chain.pem`: the PCK certificate (with the Intel SGX extensions dcap-qvl reads: PPID, TCB
  with CPUSVN and PCESVN, PCE-ID, FMSPC, SGX type), its PCK CA, and the root;
- `collateral-tdx.json`, `collateral-sgx.json`: dcap-qvl's QuoteCollateralV3 for each TEE: a TCB
  info (`TDX` version 3; `SGX` version 3) and a QE identity (`TD_QE` version 2; `QE` version 2),
  each signed by a TCB signing certificate the root issued, the root CA CRL and the PCK CRL
  (both empty), and the issuer chains;
- `attestation-key.pk8`: the quotes' attestation key (PKCS#8, ECDSA P-256), which the tests sign
  quotes with (ring);
- `qe-auth-data.bin`: the QE authentication data;
- `qe-report-tdx.bin`, `qe-report-signature-tdx.bin`, `qe-report-sgx.bin`,
  `qe-report-signature-sgx.bin`: the report (384 bytes) of the TD quoting enclave (ISVPRODID 2)
  and of the SGX quoting enclave (ISVPRODID 1), each with report data SHA-256(attestation key ||
  QE authentication data), signed by the PCK key (raw r || s).

Everything is valid from 2025-01-01 to 2049-12-31 (the root to 2050-01-01), so that tests can
verify quotes at the current time for years. The platform's FMSPC is C0FFEE000000, its PCE id
0000, CPUSVN all 2, PCESVN 11; each TCB info's only level needs exactly that (and, for TDX, TEE
TCB SVN zero, the TDX module's signer and SEAM attributes zero) and is UpToDate.
"""

import datetime
import hashlib
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2049, 12, 31, tzinfo=datetime.timezone.utc)
ROOT_NOT_AFTER = datetime.datetime(2050, 1, 1, tzinfo=datetime.timezone.utc)
ISSUE_DATE = "2025-01-01T00:00:00Z"
NEXT_UPDATE = "2049-12-31T00:00:00Z"

FMSPC = bytes.fromhex("C0FFEE000000")
PCE_ID = bytes.fromhex("0000")
CPU_SVN = bytes([2] * 16)
PCE_SVN = 11
QE_MRSIGNER = bytes.fromhex("00112233445566778899aabbccddeeff" * 2)
# ISVPRODID of the TD quoting enclave and of the SGX quoting enclave (QE3), as Intel's.
TD_QE_ISVPRODID = 2
SGX_QE_ISVPRODID = 1
QE_ISVSVN = 4
QE_AUTH_DATA = bytes(range(32))


# A little DER, for the SGX extension.
def der(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + content


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return der(0x06, body)


def integer(value):
    octets = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return der(0x02, octets)


def seq(*items):
    return der(0x30, b"".join(items))


SGX = "1.2.840.113741.1.13.1"


def sgx_extension():
    tcb = [seq(oid(f"{SGX}.2.{i + 1}"), integer(svn)) for i, svn in enumerate(CPU_SVN)]
    tcb.append(seq(oid(f"{SGX}.2.17"), integer(PCE_SVN)))
    tcb.append(seq(oid(f"{SGX}.2.18"), der(0x04, CPU_SVN)))
    return seq(
        seq(oid(f"{SGX}.1"), der(0x04, bytes(range(16)))),  # PPID
        seq(oid(f"{SGX}.2"), seq(*tcb)),
        seq(oid(f"{SGX}.3"), der(0x04, PCE_ID)),
        seq(oid(f"{SGX}.4"), der(0x04, FMSPC)),
        seq(oid(f"{SGX}.5"), der(0x0A, b"\x00")),  # SGX type: standard
    )


def name(common_name):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Covenant tests (not Intel)"),
        ]
    )


def key():
    return ec.generate_private_key(ec.SECP256R1())


def certificate(subject, subject_key, issuer, issuer_key, ca, not_after, extra=()):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def crl(issuer, issuer_key):
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(NOT_BEFORE)
        .next_update(NOT_AFTER)
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def raw_signature(private_key, message):
    r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def signed_json(value, signing_key):
    text = json.dumps(value, separators=(",", ":"))
    return text, raw_signature(signing_key, text.encode()).hex()


def tcb_info(tee):
    level = {
        "sgxtcbcomponents": [{"svn": svn} for svn in CPU_SVN],
        "pcesvn": PCE_SVN,
    }
    info = {
        "id": tee,
        "version": 3,
        "issueDate": ISSUE_DATE,
        "nextUpdate": NEXT_UPDATE,
        "fmspc": FMSPC.hex().upper(),
        "pceId": PCE_ID.hex().upper(),
        "tcbType": 0,
        "tcbEvaluationDataNumber": 17,
    }
    if tee == "TDX":
        level["tdxtcbcomponents"] = [{"svn": 0}] * 16
        info["tdxModule"] = {
            "mrsigner": "00" * 48,
            "attributes": "00" * 8,
            "attributesMask": "FF" * 8,
        }
        info["tdxModuleIdentities"] = []
    info["tcbLevels"] = [{"tcb": level, "tcbDate": ISSUE_DATE, "tcbStatus": "UpToDate"}]
    return info


def qe_identity(qe_id, isvprodid):
    return {
        "id": qe_id,
        "version": 2,
        "issueDate": ISSUE_DATE,
        "nextUpdate": NEXT_UPDATE,
        "tcbEvaluationDataNumber": 17,
        "miscselect": "00000000",
        "miscselectMask": "FFFFFFFF",
        "attributes": "11000000000000000000000000000000",
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": QE_MRSIGNER.hex().upper(),
        "isvprodid": isvprodid,
        "tcbLevels": [
            {"tcb": {"isvsvn": QE_ISVSVN}, "tcbDate": ISSUE_DATE, "tcbStatus": "UpToDate"}
        ],
    }


def qe_report(attestation_key, name, isvprodid):
    """A quoting enclave's report certifying the attestation key through its report data."""
    public = attestation_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )[1:]
    report = bytearray(384)
    report[0:16] = CPU_SVN
    report[48:64] = bytes.fromhex("11000000000000000000000000000000")  # not debug
    report[64:96] = hashlib.sha256(name.encode()).digest()  # MRENCLAVE
    report[128:160] = QE_MRSIGNER
    report[256:258] = isvprodid.to_bytes(2, "little")
    report[258:260] = QE_ISVSVN.to_bytes(2, "little")
    report[320:352] = hashlib.sha256(public + QE_AUTH_DATA).digest()
    return bytes(report)


def main():
    root_key, ca_key, pck_key, tcb_key, attestation_key = (key() for _ in range(5))
    root_name = name("Covenant Test SGX Root CA")
    ca_name = name("Covenant Test SGX PCK Processor CA")
    root = certificate(root_name, root_key, root_name, root_key, True, ROOT_NOT_AFTER)
    ca = certificate(ca_name, ca_key, root_name, root_key, True, NOT_AFTER)
    pck = certificate(
        name("Covenant Test SGX PCK Certificate"),
        pck_key,
        ca_name,
        ca_key,
        False,
        NOT_AFTER,
        [x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX), sgx_extension())],
    )
    tcb_signer = certificate(
        name("Covenant Test SGX TCB Signing"), tcb_key, root_name, root_key, False, NOT_AFTER
    )
    root_ca_crl = crl(root_name, root_key).public_bytes(serialization.Encoding.DER).hex()
    pck_crl = crl(ca_name, ca_key).public_bytes(serialization.Encoding.DER).hex()

    def collateral(tee, qe_id, isvprodid):
        info, info_signature = signed_json(tcb_info(tee), tcb_key)
        identity, identity_signature = signed_json(qe_identity(qe_id, isvprodid), tcb_key)
        value = {
            "pck_crl_issuer_chain": pem(ca) + pem(root),
            "root_ca_crl": root_ca_crl,
            "pck_crl": pck_crl,
            "tcb_info_issuer_chain": pem(tcb_signer) + pem(root),
            "tcb_info": info,
            "tcb_info_signature": info_signature,
            "qe_identity_issuer_chain": pem(tcb_signer) + pem(root),
            "qe_identity": identity,
            "qe_identity_signature": identity_signature,
        }
        return (json.dumps(value, indent=2) + "\n").encode()

    tdx_qe_report = qe_report(attestation_key, "covenant test TD QE", TD_QE_ISVPRODID)
    sgx_qe_report = qe_report(attestation_key, "covenant test SGX QE", SGX_QE_ISVPRODID)
    files = {
        "root-ca.der": root.public_bytes(serialization.Encoding.DER),
        "pck-chain.pem": (pem(pck) + pem(ca) + pem(root)).encode(),
        "collateral-tdx.json": collateral("TDX", "TD_QE", TD_QE_ISVPRODID),
        "collateral-sgx.json": collateral("SGX", "QE", SGX_QE_ISVPRODID),
        "attestation-key.pk8": attestation_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "qe-auth-data.bin": QE_AUTH_DATA,
        "qe-report-tdx.bin": tdx_qe_report,
        "qe-report-signature-tdx.bin": raw_signature(pck_key, tdx_qe_report),
        "qe-report-sgx.bin": sgx_qe_report,
        "qe-report-signature-sgx.bin": raw_signature(pck_key, sgx_qe_report),
    }
    for path, content in files.items():
        with open(path, "wb") as out:
            out.write(content)


if __name__ == "__main__":
    main()
