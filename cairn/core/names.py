"""Generated run names: short, readable, and random enough to rarely collide."""

from __future__ import annotations

import secrets

__all__ = ["generate_run_name"]

_ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clever", "crisp", "daring", "eager", "fair", "fleet",
    "gentle", "glad", "golden", "hardy", "keen", "lively", "lucid", "merry", "nimble", "noble",
    "quick", "quiet", "rapid", "sharp", "shy", "silver", "steady", "swift", "tidy", "vivid",
    "wise", "witty",
)  # fmt: skip
_NOUNS = (
    "badger", "beacon", "birch", "brook", "cairn", "cedar", "comet", "crane", "delta", "ember",
    "falcon", "fern", "fjord", "glacier", "harbor", "heron", "lark", "maple", "meadow", "otter",
    "pebble", "pine", "quartz", "raven", "ridge", "river", "sparrow", "summit", "thistle", "tundra",
    "willow", "wren",
)  # fmt: skip


def generate_run_name(choice: object = secrets) -> str:
    """E.g. ``swift-otter-3f9a``: two words and 16 random bits."""
    rng = secrets.SystemRandom() if choice is secrets else choice
    adjective = rng.choice(_ADJECTIVES)  # type: ignore[attr-defined]
    noun = rng.choice(_NOUNS)  # type: ignore[attr-defined]
    suffix = rng.getrandbits(16)  # type: ignore[attr-defined]
    return f"{adjective}-{noun}-{suffix:04x}"
