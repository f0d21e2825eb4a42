"""moto_server, with requests served one at a time.

moto 5.2.5's DynamoDB is not thread-safe: TransactWriteItems snapshots the tables
with copy.deepcopy and restores the snapshot when a condition fails, so under the
stock threaded server concurrent requests crash ("dictionary changed size during
iteration") or lose each other's writes. A lock around the WSGI app serialises
requests (connections stay concurrent), which is what DynamoDB guarantees per item
anyway. Same arguments as moto_server (-H HOST -p PORT).
"""

import threading

import moto.server as server

_lock = threading.Lock()
_run_simple = server.run_simple


def _serialised(app):
    def call(environ, start_response):
        with _lock:
            # Drain the response inside the lock: moto builds it lazily.
            return list(app(environ, start_response))

    return call


def _run(host, port, app, **kwargs):
    return _run_simple(host, port, _serialised(app), **kwargs)


server.run_simple = _run

if __name__ == "__main__":
    server.main()
