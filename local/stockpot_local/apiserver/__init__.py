"""An embedded Kubernetes API server for the local cluster and the tests (DESIGN §5).

Public interface::

    server = APIServer(host="127.0.0.1", port=0, state_dir=path)   # async: await start() / stop()
    server.url; server.write_kubeconfig(path)
    with ThreadedAPIServer(state_dir=path) as server:               # its own loop in a daemon thread
        server.url; server.kubeconfig                               # <state_dir>/kubeconfig
    python -m stockpot_local.apiserver --port 0 --kubeconfig PATH [--state-dir DIR]   # prints the URL

Semantics follow the real API for what Stockpot uses: discovery and OpenAPI v3, CRUD with server-set
metadata, PUT/merge/JSON/strategic-merge patches and server-side apply, status and scale subresources,
watches with resume, bookmarks and 410 Gone, label/field selectors and pagination, finalizers, graceful
pod deletion (the kubelet finishes it with ``gracePeriodSeconds=0``), propagation policies, garbage
collection, namespace and CRD termination, built-in defaults, schema/CEL validation, and Table output.
Pod logs are read from ``<state_dir>/logs/<namespace>/<pod>/<container>.log`` (``.previous.log`` for
``previous=true``). Request bodies must be JSON or YAML (protobuf bodies get 415).
"""

from .server import APIServer, ThreadedAPIServer

__all__ = ["APIServer", "ThreadedAPIServer"]
