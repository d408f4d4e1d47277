"""How the CLI reaches NATS: --nats and the credential options, for a query or a service."""

from __future__ import annotations

import argparse
import os

from ctilink.adapters.errors import UserError

URL_ENV = "CTILINK_NATS_URL"
PASSWORD_ENV = "CTILINK_NATS_PASSWORD"


NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def nats_urls(text: str) -> str:
    """An argparse type: one or more NATS URLs, comma-separated (nats://host:port)."""
    for url in text.split(","):
        scheme, sep, rest = url.strip().partition("://")
        host, _, port = rest.rstrip("/").rpartition(":") if ":" in rest else (rest, "", "")
        if (
            not sep
            or scheme not in NATS_SCHEMES
            or not (host or rest)
            or (port and not port.isdigit())
        ):
            raise argparse.ArgumentTypeError(
                f"{url.strip()!r} is not a NATS URL (nats://host:port; tls://, ws://, wss:// too)"
            )
    return text


def nats_url(args: argparse.Namespace) -> str | None:
    """--nats, else $CTILINK_NATS_URL (checked like --nats), else None."""
    if args.nats:
        return str(args.nats)
    from_env = os.environ.get(URL_ENV) or None
    if from_env is not None:
        try:
            nats_urls(from_env)
        except argparse.ArgumentTypeError as error:
            raise BadUrl(f"${URL_ENV}: {error}") from None
    return from_env


class BadUrl(UserError):
    """$CTILINK_NATS_URL is not a NATS URL."""


def add_connection_arguments(p: argparse.ArgumentParser, what: str = "") -> None:
    """--nats and the credential options."""
    default = f"NATS server (default: ${URL_ENV})"
    p.add_argument("--nats", metavar="URL", type=nats_urls, help=what or default)
    p.add_argument("--creds", help="NATS credentials file")
    p.add_argument("--nkey", metavar="FILE", help="NATS user nkey seed file (from `ctilink nkey`)")
    p.add_argument("--user", help="NATS user")
    p.add_argument("--password", help=f"NATS password (or ${PASSWORD_ENV})")
    p.add_argument("--token", help="NATS token")
    p.add_argument("--tls-ca", help="CA file to verify the server")
    p.add_argument("--tls-cert", help="client certificate")
    p.add_argument("--tls-key", help="client key")


def nats_options(args: argparse.Namespace) -> dict[str, object]:
    """Credentials and TLS, in the keywords nats.connect() takes."""
    options: dict[str, object] = {}
    if args.creds:
        options["user_credentials"] = args.creds
    if args.nkey:
        options["nkeys_seed"] = args.nkey
    if args.user:
        options["user"] = args.user
        options["password"] = args.password or os.environ.get(PASSWORD_ENV, "")
    if args.token:
        options["token"] = args.token
    if args.tls_ca or args.tls_cert:
        import ssl  # only TLS connections pay for loading it

        context = ssl.create_default_context(cafile=args.tls_ca)
        if args.tls_cert:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        options["tls"] = context
    return options


def connection_argv(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The connection options as arguments for a child process (password in its env)."""
    argv: list[str] = []
    for flag in ("creds", "nkey", "user", "token", "tls_ca", "tls_cert", "tls_key"):
        value = getattr(args, flag)
        if value:
            argv += [f"--{flag.replace('_', '-')}", value]
    env = dict(os.environ)
    if args.password:
        env[PASSWORD_ENV] = args.password
    return argv, env


def nats_target(args: argparse.Namespace, command: str) -> tuple[str, dict[str, object]]:
    """Where a command asks NATS, and how it logs in: --nats (or $CTILINK_NATS_URL) with the
    credential options, else the embedded server `ctilink serve` runs for the store."""
    url = nats_url(args)
    if url:
        return url, nats_options(args)
    return embedded_target(getattr(args, "store", None), command)


def embedded_target(store: str | None, command: str) -> tuple[str, dict[str, object]]:
    """The URL and login of a store's embedded nats-server (from the files beside it)."""
    from ctilink.adapters.bootstrap import embedded_folder
    from ctilink.adapters.nats.embedded import credentials, kept_port
    from ctilink.adapters.store.selection import resolve

    folder = embedded_folder(resolve(store))
    port = kept_port(folder)
    if port is None or not (folder / "credentials").exists():
        raise BadUrl(
            f"{command}: no --nats given, and the store has no embedded nats-server yet "
            f"({folder} is missing or empty: `ctilink serve` starts one)"
        )
    user, password = credentials(folder)
    return f"nats://127.0.0.1:{port}", {"user": user, "password": password}
