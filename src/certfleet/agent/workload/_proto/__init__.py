"""Generated protobuf messages of the SPIFFE Workload API (do not edit; regenerate).

Source: workload.proto from https://github.com/spiffe/go-spiffe (proto/spiffe/workload/,
commit e9973f6314a3fa0e36eb1f00fbfe37bdc1554b96), Apache License 2.0, copied here beside
the generated code with ONE change: the line ``package certfleet.agent.workload;``. The
upstream file has no package, so its messages would take the same names in protobuf's
process-wide descriptor pool as every other copy (py-spiffe ships one), and a process that
imports both fails with "duplicate symbol". Message names never travel on the wire, so the
encoding is unchanged; the service, whose name does travel (``/SpiffeWorkloadAPI/<Method>``),
is registered by hand under its upstream name in certfleet.agent.workload.service, which is
why no ``workload_pb2_grpc`` module is generated.

Generated with grpcio-tools 1.85.1 (protoc bundled), from src/:

    python -m grpc_tools.protoc -I . -I <site-packages>/grpc_tools/_proto \\
        --python_out=. --pyi_out=. certfleet/agent/workload/_proto/workload.proto

Excluded from ruff and from strict mypy (pyproject.toml).
"""

__all__: list[str] = []  # the generated modules are imported by name (workload_pb2)
