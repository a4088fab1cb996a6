"""What several route modules share: the job id path parameter and the parsed form."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.datastructures import FormData

__all__ = ["Form", "JobIdPath", "form_data"]

JobIdPath = Annotated[str, Path(pattern=r"^job-[0-9a-f]{32}$")]


async def form_data(request: Request) -> AsyncIterator[FormData]:
    """The submitted form (parsed once, by the CSRF check); its uploads closed afterwards."""
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()


Form = Annotated[FormData, Depends(form_data)]
