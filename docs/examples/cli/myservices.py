"""The services that docs/cli.md calls: `isc run myservices:Calc` (and the others) hosts them."""

import logging

from isc.server import expose, on

log = logging.getLogger("myservices")


class Calc:
    name = "calc"

    @expose
    def add(self, a: int, b: int) -> int:
        return a + b

    @expose
    def raise_error(self) -> None:
        raise Exception("testing")


class Users:
    name = "users"

    def __init__(self) -> None:
        self.users = {"alice": {"id": 7, "name": "alice"}}

    @expose
    def find_user(self, name: str) -> dict:
        return self.users[name]

    @on("cache_invalidated")
    def drop_cache(self, kind: str, key: int) -> None:
        log.info("dropping cached %s %s", kind, key)


class Mailer:
    name = "mailer"

    @on("user_created")
    def send_welcome(self, user_id: int, source: str = "web") -> None:
        log.info("welcome mail for user %s (signed up from %s)", user_id, source)


class Greeter:
    name = "greeter"

    @expose
    def hello(self, who: str) -> str:
        return f"hello {who}"
