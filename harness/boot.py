"""`tokenmill-worker-boot`: starts one Beam Python SDK worker for an EXTERNAL worker pool, with the run's options.

Why: a cluster's Python workers come from an EXTERNAL worker pool (`python -m
apache_beam.runners.worker.worker_pool_main --service_port=PORT`) on each worker machine, with tokenmill's wheel
installed beside Beam. Asked to start a worker, the pool in Beam 2.62 runs `python -c "SdkHarness(control_url)"`
unless given `--container_executable`: that harness never asks the runner for the pipeline's options, so Beam's
FileSystems on the worker had no --s3_endpoint_url, keys or region (or GCP project), and the first s3:// read
failed while the driver, which had them, had matched the inputs fine (found on Flink 1.19, 2026-12-07). Beam's
SDK containers boot through a program that follows Beam's container contract instead: it asks the provision
service for the run's options and endpoints, then starts `sdk_worker_main` with them. This module is that
program for a pool whose workers already hold tokenmill (it installs no staged artifact: the pool's environment
is the worker's code). Start the pool with `--container_executable=tokenmill-worker-boot`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile


def provision(endpoint: str, worker_id: str):
    """The run's ProvisionInfo from the runner's provision service."""
    import grpc
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        reply = stub.GetProvisionInfo(beam_provision_api_pb2.GetProvisionInfoRequest(),
                                      metadata=[("worker_id", worker_id)], timeout=120)
    return reply.info


def worker_environment(info, args: argparse.Namespace, base: dict[str, str]) -> dict[str, str]:
    """The environment sdk_worker_main reads (the names Beam's Go boot program sets)."""
    from apache_beam.portability.api import endpoints_pb2
    from google.protobuf import json_format, text_format

    def descriptor(url: str) -> str:
        return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))

    control = info.control_endpoint.url or args.control_endpoint
    logging = info.logging_endpoint.url or args.logging_endpoint
    env = {**base, "WORKER_ID": args.id,
           "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
           "CONTROL_API_SERVICE_DESCRIPTOR": descriptor(control),
           "LOGGING_API_SERVICE_DESCRIPTOR": descriptor(logging),
           "SEMI_PERSISTENT_DIRECTORY": args.semi_persistent_directory or tempfile.mkdtemp(prefix="beam-worker-")}
    if info.runner_capabilities:
        env["RUNNER_CAPABILITIES"] = " ".join(info.runner_capabilities)
    if info.HasField("status_endpoint") and info.status_endpoint.url:
        env["STATUS_API_SERVICE_DESCRIPTOR"] = descriptor(info.status_endpoint.url)
    return env


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tokenmill-worker-boot", description=__doc__.split("\n\n")[0])
    ap.add_argument("--id", required=True, help="the worker id the runner gave")
    ap.add_argument("--provision_endpoint", required=True)
    ap.add_argument("--control_endpoint", default="")
    ap.add_argument("--logging_endpoint", default="")
    ap.add_argument("--artifact_endpoint", default="", help="not used: the pool's environment holds the code")
    ap.add_argument("--semi_persistent_directory", default="")
    return ap


def main(argv: list[str] | None = None) -> int:
    args, _unknown = parser().parse_known_args(argv)
    info = provision(args.provision_endpoint, args.id)
    env = worker_environment(info, args, dict(os.environ))
    # Beam 2.62's pool starts this program with stdout a pipe it never reads (worker_pool_main.StartWorker):
    # the worker would block once it filled it. Its standard error goes where the pool's goes.
    os.dup2(2, 1)
    os.execve(sys.executable, [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
