"""The promotion rule: the candidate takes the production alias only if it beats production by the margin."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlplatform.training.scoring import better


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str
    candidate_score: float
    production_score: float | None
    margin: float

    def as_dict(self) -> dict:
        return asdict(self)


def decide(
    metric: str,
    candidate_score: float,
    production_score: float | None,
    margin: float,
    candidate_version: int,
    production_version: int | None,
) -> Decision:
    if margin < 0:
        raise ValueError(f"promotion margin must be >= 0, got {margin}")

    def verdict(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, metric, candidate_score, production_score, margin)

    if production_version is None:
        return verdict(True, "no production version yet")
    if production_version == candidate_version:
        return verdict(False, f"version {candidate_version} is already production")
    if production_score is None:
        return verdict(True, f"production version {production_version} cannot score the current dataset schema")
    if better(metric, candidate_score, production_score, margin):
        return verdict(
            True,
            f"candidate {metric} {candidate_score:.4f} beats production {production_score:.4f} by more than {margin}",
        )
    return verdict(
        False,
        f"candidate {metric} {candidate_score:.4f} does not beat production {production_score:.4f}"
        f" by more than {margin}",
    )
