"""deltaprop playground: watch backpropagation live in a local web page."""

from __future__ import annotations

import argparse
import ipaddress
import sys
import threading
import time
import webbrowser

from deltaprop.cli import UsageError
from deltaprop.playground.problems import read_csv_upload
from deltaprop.playground.session import Session
from deltaprop.playground.settings import Settings

HELP = "train a small network live in a local web page: every δ and Δw, step by step"
EXAMPLES = """examples:
  deltaprop playground                          # opens http://127.0.0.1:8765/
  deltaprop playground --port 9000 --no-browser
  deltaprop playground --data my.csv            # your own data (read as train --data reads it)
  open http://127.0.0.1:8765/#example=classic   # the seed's worked 2-2-2 example: press Step
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0: any)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--data", metavar="FILE", help="a CSV to start with (header row, target last)")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {port}")
    return port


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    # Starlette and uvicorn load only for this command.
    import uvicorn

    from deltaprop.playground.server import create_app

    upload = None
    if args.data:
        try:
            with open(args.data, "rb") as f:
                upload = read_csv_upload(args.data, f.read())
        except ValueError as exc:
            raise ValueError(str(exc).replace(args.data.rsplit("/", 1)[-1], args.data, 1)) from None
        Session(Settings(dataset="csv"), upload)  # the settings fit these data: fail now if not
    if not _is_local(args.host):
        print(
            f"deltaprop playground: warning: listening on {args.host}, not this machine only; "
            "the page has no login, so anyone who can reach this address can use it",
            file=sys.stderr,
        )
    settings = Settings(dataset="csv") if upload is not None else None
    hosts = ["127.0.0.1", "localhost", args.host] if args.host not in ("0.0.0.0", "::") else ["*"]
    app = create_app(settings, upload, allowed_hosts=hosts)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
        print(url, flush=True)
        if not args.no_browser:
            webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()  # returns after Ctrl-C (uvicorn handles SIGINT and shuts down cleanly)
    except KeyboardInterrupt:
        pass
    except SystemExit:  # uvicorn exits when it cannot listen
        server.started = False
    if not server.started:
        raise UsageError(f"could not listen on {args.host}:{args.port} (is the port in use?)")
    print("playground stopped", file=sys.stderr)
    return 0
