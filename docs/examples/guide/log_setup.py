import logging

from isc.server import LogContextFilter

handler = logging.StreamHandler()
handler.addFilter(LogContextFilter())
handler.setFormatter(
    logging.Formatter("%(asctime)s %(levelname)s %(name)s%(isc_context)s: %(message)s")
)
logging.basicConfig(level=logging.INFO, handlers=[handler])
