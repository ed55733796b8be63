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
from model_trainer.api.openapi import refusals
from model_trainer.api.routes.jobs import listed_user
from model_trainer.api.schemas import (
    AdminUserId,
    CreateModelRequest,
    PromoteRequest,
    RegisterVersionRequest,
)
from model_trainer.api.submit import owned_manifest
from model_trainer.contracts import limits as L
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.models import AliasState, ModelRecord, ModelStore, ModelVersion
from model_trainer.storage.provenance import VersionMetrics, version_source
from model_trainer.storage.runs import utc_now
from platform_core.json_types import JSONObject, JSONValue

Name = Annotated[
    str,
    Path(pattern=L.MODEL_NAME_PATTERN, description="a model of yours", examples=["shakespeare"]),
]
Alias = Annotated[
    str,
    Path(
        pattern=L.MODEL_NAME_PATTERN,
        description="a movable name for one of the model's versions",
        examples=["production"],
    ),
]
Version = Annotated[
    int,
    Path(ge=1, le=L.MAX_VERSIONS_PER_MODEL, description="a version's number", examples=[2]),
]
UserId = AdminUserId
# Two to MAX_COMPARE_VERSIONS version numbers, comma-separated.
_COMPARED = rf"^[0-9]{{1,9}}(,[0-9]{{1,9}}){{1,{L.MAX_COMPARE_VERSIONS - 1}}}$"


class ModelListBody(TypedDict):
    """Your models, each with its aliases and latest version."""

    models: list[ModelRecord]


class VersionListBody(TypedDict):
    """A page of a model's versions, oldest first."""

    versions: list[ModelVersion]
    # Pass as `after` for the next page; None on the last one.
    next_after: int | None


class ComparedVersion(TypedDict):
    """One version's run, data and metrics, for a side-by-side comparison."""

    version: int
    run_id: str
    step: int | None
    corpus_sha256: str
    tokenizer_id: str
    metrics: VersionMetrics


class CompareBody(TypedDict):
    """Versions of a model side by side: config differences and metrics."""

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
    router = APIRouter(tags=["models"])
    key = Depends(ctx["caller"])
    store = ModelStore(ctx["redis"])

    @router.post(
        "/v1/models",
        status_code=201,
        response_model=ModelRecord,
        responses=refusals("MODEL_EXISTS", "QUOTA_EXCEEDED"),
    )
    def create_model(body: CreateModelRequest, caller: Principal = key) -> ModelRecord:
        """A new, empty model name in your registry."""
        return store.create(caller, body.name, body.description, utc_now())

    @router.get("/v1/models", response_model=ModelListBody, responses=refusals())
    def list_models(user_id: UserId = None, caller: Principal = key) -> ModelListBody:
        """Your models, with their aliases and latest versions."""
        return {"models": store.list_for_user(listed_user(caller, user_id))}

    @router.get(
        "/v1/models/{name}", response_model=ModelRecord, responses=refusals("MODEL_NOT_FOUND")
    )
    def get_model(name: Name, user_id: UserId = None, caller: Principal = key) -> ModelRecord:
        """One model, with its aliases and latest version."""
        return store.get(listed_user(caller, user_id), name)

    @router.post(
        "/v1/models/{name}/versions",
        status_code=201,
        response_model=ModelVersion,
        responses=refusals("MODEL_NOT_FOUND", "MODEL_LOAD_FAILED", "QUOTA_EXCEEDED"),
    )
    def register_model_version(
        name: Name, body: RegisterVersionRequest, caller: Principal = key
    ) -> ModelVersion:
        """The model's next version: a finished run of yours (or one of its checkpoints), with
        its provenance copied from the run."""
        store.get(caller["user_id"], name)
        manifest = owned_manifest(ctx, caller, body.run_id)
        source = version_source(ctx["settings"], manifest, body.run_id, body.step)
        return store.add_version(caller, name, source, utc_now())

    @router.get(
        "/v1/models/{name}/versions",
        response_model=VersionListBody,
        responses=refusals("MODEL_NOT_FOUND"),
    )
    def list_model_versions(
        name: Name,
        *,
        after: Annotated[
            int,
            Query(
                ge=0,
                le=L.MAX_VERSIONS_PER_MODEL,
                description="versions after this number (the previous page's `next_after`)",
                examples=[50],
            ),
        ] = 0,
        limit: Annotated[
            int,
            Query(ge=1, le=L.MAX_VERSIONS_PAGE, description="versions per page", examples=[20]),
        ] = 50,
        user_id: UserId = None,
        caller: Principal = key,
    ) -> VersionListBody:
        """Versions oldest first, `limit` at a time after version `after`."""
        owner = listed_user(caller, user_id)
        versions, next_after = store.versions(owner, name, after=after, limit=limit)
        return {"versions": versions, "next_after": next_after}

    @router.get(
        "/v1/models/{name}/versions/{version}",
        response_model=ModelVersion,
        responses=refusals("MODEL_NOT_FOUND"),
    )
    def get_model_version(
        name: Name, version: Version, user_id: UserId = None, caller: Principal = key
    ) -> ModelVersion:
        """One version: its run, step, provenance and metrics."""
        return store.version(listed_user(caller, user_id), name, version)

    @router.get(
        "/v1/models/{name}/compare",
        response_model=CompareBody,
        responses=refusals("MODEL_NOT_FOUND"),
    )
    def compare_model_versions(
        name: Name,
        versions: Annotated[
            str,
            Query(
                pattern=_COMPARED,
                description="2 to 10 version numbers, comma-separated",
                examples=["1,2,3"],
            ),
        ],
        user_id: UserId = None,
        caller: Principal = key,
    ) -> CompareBody:
        """Versions side by side: the train-config keys that differ, and their metrics."""
        owner = listed_user(caller, user_id)
        numbers = list(dict.fromkeys(int(number) for number in versions.split(",")))
        found = [store.version(owner, name, number) for number in numbers]
        return {
            "name": name,
            "versions": numbers,
            "config_diff": config_diff([version["config"] for version in found]),
            "metrics": [compared(version) for version in found],
        }

    @router.get(
        "/v1/models/{name}/aliases/{alias}",
        response_model=AliasState,
        responses=refusals("MODEL_NOT_FOUND"),
    )
    def get_model_alias(
        name: Name, alias: Alias, user_id: UserId = None, caller: Principal = key
    ) -> AliasState:
        """The version the alias points at, and the ones it pointed at before."""
        return store.alias(listed_user(caller, user_id), name, alias)

    @router.put(
        "/v1/models/{name}/aliases/{alias}",
        response_model=AliasState,
        responses=refusals("MODEL_NOT_FOUND", "PROMOTION_REFUSED", "QUOTA_EXCEEDED"),
    )
    def promote_model_version(
        name: Name, alias: Alias, body: PromoteRequest, caller: Principal = key
    ) -> AliasState:
        """Point the alias at a version; refused (PROMOTION_REFUSED) when its val_loss is
        worse than the current holder's, unless `force`."""
        return store.promote(caller["user_id"], name, alias, body.version, force=body.force)

    @router.post(
        "/v1/models/{name}/aliases/{alias}/rollback",
        response_model=AliasState,
        responses=refusals("MODEL_NOT_FOUND", "ALIAS_NO_HISTORY"),
    )
    def rollback_model_alias(name: Name, alias: Alias, caller: Principal = key) -> AliasState:
        """Move the alias back to the version it held before (ALIAS_NO_HISTORY if none)."""
        return store.rollback(caller["user_id"], name, alias)

    @router.delete(
        "/v1/models/{name}/aliases/{alias}",
        response_model=AliasState,
        responses=refusals("MODEL_NOT_FOUND"),
    )
    def delete_model_alias(name: Name, alias: Alias, caller: Principal = key) -> AliasState:
        """Remove the alias and its history; the versions stay."""
        return store.delete_alias(caller["user_id"], name, alias)

    return router
