"""``POST /api/v1/classify/report``: a category suggestion for a field report's text.

Permission ``reports:submit``: the field-report page asks while a grid worker types, before
anything is filed; staff who only read incidents have no use for it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hub.api.deps import Ctx, guarded
from hub.auth import Permission
from hub.classify.service import classify

router = APIRouter(prefix="/api/v1", tags=["classify"])
MAX_BODY_CHARS = 20_000  # longer texts are refused; the classifier reads the first 2,000


class ClassifyBody(BaseModel):
    model_config = {"extra": "forbid"}
    text: Annotated[str, Field(max_length=MAX_BODY_CHARS)]


class CategoryScore(BaseModel):
    category: str
    confidence: float


class ClassifyResult(BaseModel):
    category: str | None = Field(description="None: no suggestion (too little to go on)")
    confidence: float | None
    alternatives: list[CategoryScore] = Field(description="the runners-up, best first")


@router.post(
    "/classify/report",
    response_model=ClassifyResult,
    **guarded(Permission.FIELD_REPORTS_SUBMIT),
)
def classify_report(body: ClassifyBody, ctx: Ctx) -> ClassifyResult:
    """Suggest a field-reportable category for ``text`` (Chinese, English or mixed)."""
    best, alternatives = classify(ctx.config.classify, body.text)
    return ClassifyResult(
        category=best.category if best else None,
        confidence=best.confidence if best else None,
        alternatives=[
            CategoryScore(category=a.category, confidence=a.confidence) for a in alternatives
        ],
    )
