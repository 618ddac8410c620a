"""mTLS: with certificate files configured, a client with a certificate from the CA gets answers
and a client without one is refused. The gateway runs in-process (its downstreams are absent,
which ListModels does not need) on a free loopback port."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import grpc
import pytest
from tailorline.v1 import model_service_pb2 as mp
from tailorline.v1 import model_service_pb2_grpc as mp_grpc

from services.common.settings import CoreSettings
from services.gateway.settings import GatewaySettings
from services.local.stack import free_port
from services.store import migrate


def _pem_pair(name: str, issuer: Any = None, *, ca: bool = False) -> tuple[Any, Any, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert, key, cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_mtls_accepts_a_client_certificate_from_the_ca_and_refuses_none(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from services.gateway.server import start

    ca_cert, ca_key, ca_pem, _ = _pem_pair("tailorline test CA", ca=True)
    _, _, server_pem, server_key = _pem_pair("gateway", (ca_cert, ca_key))
    _, _, client_pem, client_key = _pem_pair("client", (ca_cert, ca_key))
    files = {}
    for name, data in {
        "ca.pem": ca_pem,
        "server.pem": server_pem,
        "server.key": server_key,
    }.items():
        (tmp_path / name).write_bytes(data)
        files[name] = tmp_path / name
    settings = GatewaySettings(
        port=free_port(),
        metrics_port=0,
        predictor_url=f"127.0.0.1:{free_port()}",
        optimizer_url=f"127.0.0.1:{free_port()}",
        tls_cert_file=files["server.pem"],
        tls_key_file=files["server.key"],
        tls_ca_file=files["ca.pem"],
        health_interval_s=5.0,
    )
    core = CoreSettings(home=tmp_path / "home")
    migrate(core.resolved_db_url)  # the gateway refuses a store that is not migrated

    async def scenario() -> tuple[int, grpc.StatusCode]:
        gw = await start(settings, core)
        target = f"localhost:{gw.port}"
        try:
            good = grpc.ssl_channel_credentials(ca_pem, client_key, client_pem)
            async with grpc.aio.secure_channel(target, good) as ch:
                reply = await mp_grpc.ModelServiceStub(ch).ListModels(
                    mp.ListModelsRequest(), timeout=10
                )
            no_cert = grpc.ssl_channel_credentials(ca_pem)
            async with grpc.aio.secure_channel(target, no_cert) as ch:
                try:
                    await mp_grpc.ModelServiceStub(ch).ListModels(
                        mp.ListModelsRequest(), timeout=10
                    )
                    refused = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as exc:
                    refused = exc.code()
            return len(reply.models), refused
        finally:
            await gw.stop(grace_s=1)

    n_models, refused = asyncio.run(scenario())
    assert n_models == 0  # an empty store and model folder: nothing registered, no error
    assert refused == grpc.StatusCode.UNAVAILABLE  # the TLS handshake fails without a cert
