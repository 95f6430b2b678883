"""The self-signed certificate ANT serves by default: made on first start, reused afterwards."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ant_scheduler.core.errors import ConfigError


def ensure_self_signed(directory: Path) -> tuple[Path, Path]:
    """Return (certfile, keyfile) in `directory`, creating them if missing.

    The directory is 0700 and the key 0600 (an existing key of ours is tightened to 0600); a key
    that is a symlink or belongs to someone else is refused (ConfigError).
    """
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(directory, 0o700)
    if _private_file_exists(key_path) and cert_path.is_file():
        _tighten(key_path, 0o600)
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    hostname = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ANT on {hostname}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName(hostname),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(key_path, key_bytes, 0o600)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def _private_file_exists(path: Path) -> bool:
    """Whether `path` is there; refuses a symlink or a file of another user."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    shown = os.path.abspath(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise ConfigError(
            f"TLS key {shown} is a symbolic link or not a regular file; remove it (a new "
            "certificate is made on start) or pass --certfile/--keyfile"
        )
    if st.st_uid != os.geteuid():
        raise ConfigError(
            f"TLS key {shown} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}); "
            "use your own STATE_dir"
        )
    return True


def _tighten(path: Path, mode: int) -> None:
    """chmod `path` to `mode` if it is ours and looser (never follows a symlink)."""
    st = os.lstat(path)
    if (
        st.st_uid == os.geteuid()
        and not stat.S_ISLNK(st.st_mode)
        and stat.S_IMODE(st.st_mode) != mode
    ):
        os.chmod(path, mode)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Atomically replace `path` by a new file of `mode` (exclusive create, no symlink follow)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if os.path.lexists(tmp):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            tmp.unlink()
        raise


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of the certificate (DER), hex with colons, as browsers show it."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
