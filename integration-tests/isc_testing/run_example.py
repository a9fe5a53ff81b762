"""Run a documentation example program against the suite's broker, unchanged.

``python run_example.py PROGRAM [ARG ...]`` runs PROGRAM as ``__main__`` after pointing every
``Client`` and ``Node`` it creates at ``ISC_URL`` and ``ISC_EXCHANGE`` (and, with
``ISC_CODEC``, the client's codec, pickle allowed on nodes when it is ``pickle``). The quick
start's programs stay what a reader copies, with no test plumbing: this is that plumbing.
"""

from __future__ import annotations

import functools
import inspect
import os
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _pointed(init: Callable[..., None], **settings: Any) -> Callable[..., None]:
    """``init`` with the keyword arguments ``settings`` replacing what the program passed."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.arguments.update(settings)
        init(*bound.args, **bound.kwargs)

    return wrapper


def main(argv: list[str]) -> None:
    """Patch ``Client`` (and ``Node`` for programs that use isc.server), run the program."""
    program = Path(argv[0]).resolve()
    url, exchange = os.environ["ISC_URL"], os.environ["ISC_EXCHANGE"]
    codec_name = os.environ.get("ISC_CODEC")
    if "isc.server" in program.read_text():
        import isc.server  # first: it applies gevent's monkey patching, as the program would

        node = isc.server.Node
        node.__init__ = _pointed(  # type: ignore[method-assign]
            node.__init__, url=url, exchange=exchange, allow_pickle=codec_name == "pickle"
        )
    import isc.client
    from isc.codecs import get_codec

    client_settings: dict[str, Any] = {"host": url, "exchange": exchange}
    if codec_name:
        client_settings["codec"] = get_codec(codec_name)
    client = isc.client.Client
    client.__init__ = _pointed(client.__init__, **client_settings)  # type: ignore[method-assign]
    sys.argv = [str(program), *argv[1:]]
    sys.path.insert(0, str(program.parent))
    runpy.run_path(str(program), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
