"""Asymptotic (d -> infinity) errors; see docs/theory.md."""


def theory(setting, **kwargs):
    raise NotImplementedError("the asymptotic solver is being written")
