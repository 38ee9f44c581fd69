"""A tiny HTTP file server on 127.0.0.1 for the download tests: serves a folder, honours Range requests,
and can drop the connection after N bytes of a file's first response (to test resuming)."""

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        server = self.server
        name = self.path.lstrip("/").split("?", 1)[0]
        server.requests.append((name, self.headers.get("Range")))
        path = Path(server.root) / name
        if not name or not path.is_file():
            self.send_error(404, "Not Found")
            return
        body = path.read_bytes()
        total = len(body)
        start, status = 0, 200
        header = self.headers.get("Range")
        if header and header.startswith("bytes=") and server.honour_range:
            start = int(header[len("bytes="):].split("-", 1)[0])
            if start >= total:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        payload = body[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        self.end_headers()
        drop_after = server.drop_after.pop(name, None)
        if drop_after is not None:
            # Send part of the body, then cut the connection as a flaky network would.
            self.wfile.write(payload[:drop_after])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        self.wfile.write(payload)


@contextlib.contextmanager
def serve_folder(root, drop_after=None, honour_range=True):
    """Serve ``root`` on 127.0.0.1 (a free port); yield the server (``.url``, ``.requests``, ``.drop_after``).

    ``drop_after``: {file name: bytes} sent before the first response for that file is cut off.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.root = str(root)
    server.requests = []
    server.drop_after = dict(drop_after or {})
    server.honour_range = honour_range
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
