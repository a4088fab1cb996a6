"""A real coordinator app whose settings name an S3 bucket: blobs go there and come back."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx

from califusion.coordinator import create_app
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity
from califusion.crypto.signing import sign_request
from califusion.storage import digest_of

from .conftest import S3Server


def test_blobs_through_the_api_live_in_s3(s3_server: S3Server, tmp_path: Path) -> None:
    settings = CoordinatorSettings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'coordinator.db'}",
        blob_url=f"s3://{s3_server.bucket}/app?endpoint={s3_server.endpoint_url}",
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,  # pydantic wraps it in a SecretStr
        tick_interval_s=3600,
    )
    app = create_app(settings)
    me = Identity.generate()
    data = bytes(range(256)) * 64

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async def send(method: str, path: str, body: bytes, **headers: str) -> httpx.Response:
            headers |= sign_request(me, method, path, body, time.time())
            return await client.request(method, path, content=body, headers=headers)

        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://coordinator.test") as client,
        ):
            public = me.public()
            principal = {
                "signing_public": b64e(public.signing_public),
                "agreement_public": b64e(public.agreement_public),
                "display_name": "s3 test",
            }
            body = httpx.Request("POST", "/", json=principal).content
            registered = await send(
                "POST", "/v1/principals", body, **{"content-type": "application/json"}
            )
            stored = await send("PUT", "/v1/blobs", data)
            fetched = await send("GET", f"/v1/blobs/{digest_of(data)}", b"")
            return registered, stored, fetched

    registered, stored, fetched = anyio.run(scenario)
    assert registered.is_success, registered.text
    assert stored.json() == {"digest": digest_of(data), "size": len(data)}
    assert fetched.status_code == 200
    assert fetched.content == data
    assert s3_server.store("app").get(digest_of(data)) == data  # really in the bucket
    assert not (tmp_path / "blobs").exists()  # and not in the local folder
