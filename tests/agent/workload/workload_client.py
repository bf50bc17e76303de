"""A SPIFFE workload for the tests: py-spiffe's WorkloadApiClient, run as its own process
(often under another uid with setpriv). Prints one JSON line per result.

    python -m tests.agent.workload.workload_client SOCKET x509
    python -m tests.agent.workload.workload_client SOCKET stream N     (N updates, then exit)
    python -m tests.agent.workload.workload_client SOCKET jwt AUDIENCE
"""

from __future__ import annotations

import json
import queue
import sys

from spiffe import WorkloadApiClient
from spiffe.errors import PySpiffeError


def main() -> int:
    socket, mode, *rest = sys.argv[1:]
    client = WorkloadApiClient(f"unix://{socket}", default_timeout=30)
    try:
        if mode == "x509":
            svid = client.fetch_x509_svid()
            print(json.dumps({"spiffe_id": str(svid.spiffe_id), "serial": svid.leaf.serial_number}))
        elif mode == "stream":
            updates: queue.Queue[object] = queue.Queue()
            handle = client.stream_x509_contexts(updates.put, updates.put, retry_connect=False)
            for _ in range(int(rest[0])):
                update = updates.get(timeout=60)
                if isinstance(update, Exception):
                    print(json.dumps({"error": str(update)}))
                    return 3
                svid = update.default_svid  # type: ignore[attr-defined]
                print(json.dumps({"spiffe_id": str(svid.spiffe_id), "serial": svid.leaf.serial_number}))
                sys.stdout.flush()
            handle.cancel()
        elif mode == "jwt":
            token = client.fetch_jwt_svid({rest[0]})
            print(json.dumps({"spiffe_id": str(token.spiffe_id), "token": token.token}))
    except PySpiffeError as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
