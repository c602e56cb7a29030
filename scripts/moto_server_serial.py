"""moto server answering one request at a time, on 127.0.0.1.

`moto_server` runs Werkzeug threaded, and moto's DynamoDB evaluates a condition and then
writes without a lock: two concurrent conditional UpdateItem calls can both pass (seen here:
two of twenty racing `kscaler run` processes acquired the same lease, both with fencing
token 1). DynamoDB itself makes every conditional write atomic, and that is the guarantee
kscaler's lease is built on, so the test peer must keep it too: serving requests one by one
does. moto's requests take milliseconds, so the tests lose little.

Usage: python moto_server_serial.py PORT   (0 = any free port; the bound port is printed in
Werkzeug's "Running on http://127.0.0.1:PORT" line, as moto_server prints it)
"""
import sys

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
