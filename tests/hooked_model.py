"""A fault injected at a known point of a batch: a model that runs an action just before predicting its n-th chunk."""

from __future__ import annotations

from collections.abc import Callable


class OnChunk:
    """Wraps a fitted model; before predicting chunk ``chunk`` (1-based) it calls ``action`` (kill a connection,
    restart the database...), then predicts as the model would."""

    def __init__(self, model, chunk: int, action: Callable[[], None]) -> None:
        self.model, self.chunk, self.action, self.calls = model, chunk, action, 0
        self.classes_ = model.classes_

    def predict(self, features):
        self.calls += 1
        if self.calls == self.chunk:
            self.action()
        return self.model.predict(features)

    def predict_proba(self, features):
        return self.model.predict_proba(features)
