import zlib

from isc.server import expose, run_blocking


def render_pdf(report_id: int) -> bytes:
    """Stands for a real renderer: CPU-bound work that never yields to gevent."""
    pages = b"".join(f"report {report_id}, page {n}\n".encode() for n in range(10_000))
    return zlib.compress(pages, 9)


class Reports:
    name = "reports"

    @expose
    def render(self, report_id: int) -> bytes:
        return run_blocking(render_pdf, report_id)  # the loop keeps serving meanwhile
