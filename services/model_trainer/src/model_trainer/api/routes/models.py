"""`/v1/models`: the caller's model registry (names, numbered versions, aliases).

Writes act in the caller's own registry; reads take `?user_id=` from admins, as job listings
do. Another user's model is as unknown as one that never existed: registries are per user, so
the caller's lookup never reaches it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.routes import ERROR_RESPONSES
from model_trainer.api.routes.jobs import listed_user
from model_trainer.api.schemas import CreateModelRequest, PromoteRequest, RegisterVersionRequest
from model_trainer.api.submit import owned_manifest
from model_trainer.contracts import limits as L
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.models import AliasState, ModelRecord, ModelStore, ModelVersion
from model_trainer.storage.provenance import VersionMetrics, version_source
from model_trainer.storage.runs import utc_now
from platform_core.json_types import JSONObject, JSONValue

Name = Annotated[str, Path(pattern=L.MODEL_NAME_PATTERN)]
Alias = Annotated[str, Path(pattern=L.MODEL_NAME_PATTERN)]
Version = Annotated[int, Path(ge=1, le=L.MAX_VERSIONS_PER_MODEL)]
UserId = Annotated[int | None, Query(ge=0, le=2**53, description="admins: another user's registry")]
# Two to MAX_COMPARE_VERSIONS version numbers, comma-separated.
_COMPARED = rf"^[0-9]{{1,9}}(,[0-9]{{1,9}}){{1,{L.MAX_COMPARE_VERSIONS - 1}}}$"


class ModelListBody(TypedDict):
    models: list[ModelRecord]


class VersionListBody(TypedDict):
    versions: list[ModelVersion]
    # Pass as `after` for the next page; None on the last one.
    next_after: int | None


class ComparedVersion(TypedDict):
    version: int
    run_id: str
    step: int | None
    corpus_sha256: str
    tokenizer_id: str
    metrics: VersionMetrics


class CompareBody(TypedDict):
    name: str
    versions: list[int]
    # Only the train-config keys whose values differ: key -> one value per version, in order.
    config_diff: dict[str, list[JSONValue]]
    metrics: list[ComparedVersion]


def config_diff(configs: list[JSONObject]) -> dict[str, list[JSONValue]]:
    """The keys (of any config) whose values are not all equal; a missing key reads null."""
    keys = sorted({key for config in configs for key in config})
    table = {key: [config.get(key) for config in configs] for key in keys}
    return {key: values for key, values in table.items() if any(v != values[0] for v in values)}


def compared(version: ModelVersion) -> ComparedVersion:
    return {
        "version": version["version"],
        "run_id": version["run_id"],
        "step": version["step"],
        "corpus_sha256": version["corpus_sha256"],
        "tokenizer_id": version["tokenizer_id"],
        "metrics": version["metrics"],
    }


def build_models_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["models"], responses=ERROR_RESPONSES)
    key = Depends(ctx["caller"])
    store = ModelStore(ctx["redis"])

    @router.post("/v1/models", status_code=201, response_model=ModelRecord)
    def create_model(body: CreateModelRequest, caller: Principal = key) -> ModelRecord:
        return store.create(caller, body.name, body.description, utc_now())

    @router.get("/v1/models", response_model=ModelListBody)
    def list_models(user_id: UserId = None, caller: Principal = key) -> ModelListBody:
        return {"models": store.list_for_user(listed_user(caller, user_id))}

    @router.get("/v1/models/{name}", response_model=ModelRecord)
    def get_model(name: Name, user_id: UserId = None, caller: Principal = key) -> ModelRecord:
        return store.get(listed_user(caller, user_id), name)

    @router.post("/v1/models/{name}/versions", status_code=201, response_model=ModelVersion)
    def register_version(
        name: Name, body: RegisterVersionRequest, caller: Principal = key
    ) -> ModelVersion:
        store.get(caller["user_id"], name)
        manifest = owned_manifest(ctx, caller, body.run_id)
        source = version_source(ctx["settings"], manifest, body.run_id, body.step)
        return store.add_version(caller, name, source, utc_now())

    @router.get("/v1/models/{name}/versions", response_model=VersionListBody)
    def list_versions(
        name: Name,
        *,
        after: Annotated[int, Query(ge=0, le=L.MAX_VERSIONS_PER_MODEL)] = 0,
        limit: Annotated[int, Query(ge=1, le=L.MAX_VERSIONS_PAGE)] = 50,
        user_id: UserId = None,
        caller: Principal = key,
    ) -> VersionListBody:
        """Versions oldest first, `limit` at a time after version `after`."""
        owner = listed_user(caller, user_id)
        versions, next_after = store.versions(owner, name, after=after, limit=limit)
        return {"versions": versions, "next_after": next_after}

    @router.get("/v1/models/{name}/versions/{version}", response_model=ModelVersion)
    def get_version(
        name: Name, version: Version, user_id: UserId = None, caller: Principal = key
    ) -> ModelVersion:
        return store.version(listed_user(caller, user_id), name, version)

    @router.get("/v1/models/{name}/compare", response_model=CompareBody)
    def compare(
        name: Name,
        versions: Annotated[
            str, Query(pattern=_COMPARED, description="2 to 10 version numbers: 1,2,3")
        ],
        user_id: UserId = None,
        caller: Principal = key,
    ) -> CompareBody:
        owner = listed_user(caller, user_id)
        numbers = list(dict.fromkeys(int(number) for number in versions.split(",")))
        found = [store.version(owner, name, number) for number in numbers]
        return {
            "name": name,
            "versions": numbers,
            "config_diff": config_diff([version["config"] for version in found]),
            "metrics": [compared(version) for version in found],
        }

    @router.get("/v1/models/{name}/aliases/{alias}", response_model=AliasState)
    def get_alias(
        name: Name, alias: Alias, user_id: UserId = None, caller: Principal = key
    ) -> AliasState:
        return store.alias(listed_user(caller, user_id), name, alias)

    @router.put("/v1/models/{name}/aliases/{alias}", response_model=AliasState)
    def promote(
        name: Name, alias: Alias, body: PromoteRequest, caller: Principal = key
    ) -> AliasState:
        """Point the alias at a version; refused (PROMOTION_REFUSED) when its val_loss is
        worse than the current holder's, unless `force`."""
        return store.promote(caller["user_id"], name, alias, body.version, force=body.force)

    @router.post("/v1/models/{name}/aliases/{alias}/rollback", response_model=AliasState)
    def rollback(name: Name, alias: Alias, caller: Principal = key) -> AliasState:
        """Move the alias back to the version it held before (ALIAS_NO_HISTORY if none)."""
        return store.rollback(caller["user_id"], name, alias)

    @router.delete("/v1/models/{name}/aliases/{alias}", response_model=AliasState)
    def delete_alias(name: Name, alias: Alias, caller: Principal = key) -> AliasState:
        return store.delete_alias(caller["user_id"], name, alias)

    return router
