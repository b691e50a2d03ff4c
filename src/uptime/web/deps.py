"""The dependencies routes declare (FastAPI ``Annotated`` types): the database (``DbDep``), the
settings (``SettingsDep``), the report service (``ServiceDep``), all taken from the app's state
set in its lifespan (``uptime.web.app``), and the bearer-token check (``require_token``)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pymongo.asynchronous.database import AsyncDatabase

from uptime.report.service import ReportService
from uptime.platform.settings import Settings


# -- dependencies --------------------------------------------------------------------------
def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> AsyncDatabase:
    return request.app.state.db


def get_service(request: Request) -> ReportService:
    return request.app.state.reports


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DbDep = Annotated[AsyncDatabase, Depends(get_db)]
ServiceDep = Annotated[ReportService, Depends(get_service)]
_bearer = HTTPBearer(auto_error=False, description="UPTIME_API_TOKEN, when the service sets one")


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless ``UPTIME_API_TOKEN`` is unset or the request carries it as a bearer token."""
    expected = settings.api_token
    if expected is None:
        return
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected.encode()
    ):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token (send Authorization: Bearer <UPTIME_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
