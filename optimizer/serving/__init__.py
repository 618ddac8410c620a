"""The optimizer as a service: the Ray Serve app, its gRPC servicer and status mapping, the one
client, the local runner and the CLI. The only part of ``optimizer`` that imports gRPC or Ray."""
