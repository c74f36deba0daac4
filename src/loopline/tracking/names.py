"""A new run's name: the rule every store applies (``name_new_run``), and readable random names
like MLflow's ("clever-owl-417")."""

from __future__ import annotations

import random
from collections.abc import Mapping

from loopline.errors import InvalidInput

RUN_NAME_TAG = "mlflow.runName"

_ADJECTIVES = [
    "able",
    "amazing",
    "bold",
    "brave",
    "bright",
    "calm",
    "capable",
    "clever",
    "crisp",
    "curious",
    "daring",
    "eager",
    "fast",
    "fearless",
    "gentle",
    "glad",
    "grand",
    "honest",
    "keen",
    "kind",
    "lively",
    "lucky",
    "mellow",
    "merry",
    "nimble",
    "noble",
    "patient",
    "placid",
    "polite",
    "proud",
    "quick",
    "quiet",
    "rare",
    "sharp",
    "shy",
    "silent",
    "sleek",
    "smart",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "upbeat",
    "vast",
    "vivid",
    "warm",
    "wise",
    "witty",
    "zealous",
]
_NOUNS = [
    "ant",
    "bass",
    "bat",
    "bear",
    "bee",
    "bird",
    "boar",
    "carp",
    "cat",
    "colt",
    "crab",
    "crane",
    "crow",
    "deer",
    "doe",
    "dog",
    "dove",
    "duck",
    "eel",
    "elk",
    "finch",
    "fish",
    "fly",
    "foal",
    "fox",
    "frog",
    "goat",
    "gull",
    "hare",
    "hawk",
    "hen",
    "heron",
    "horse",
    "jay",
    "koi",
    "lark",
    "lion",
    "lynx",
    "mole",
    "moth",
    "mouse",
    "newt",
    "owl",
    "ox",
    "panda",
    "perch",
    "pig",
    "pony",
    "ram",
    "rat",
    "robin",
    "seal",
    "shark",
    "sheep",
    "slug",
    "snail",
    "snake",
    "sow",
    "stag",
    "swan",
    "tern",
    "toad",
    "trout",
    "wasp",
    "whale",
    "wolf",
    "wren",
    "yak",
]


def random_run_name() -> str:
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(0, 999)}"


def name_new_run(run_name: str | None, tags: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The name a new run gets, and its tags with ``mlflow.runName`` set to it, as every store does.

    ``run_name`` wins, then the ``mlflow.runName`` tag, then a readable random name; a ``run_name``
    that disagrees with the tag is refused.
    """
    tag_map = dict(tags)
    name = run_name or tag_map.get(RUN_NAME_TAG) or random_run_name()
    if run_name and tag_map.get(RUN_NAME_TAG, run_name) != run_name:
        raise InvalidInput(
            f"run_name {run_name!r} disagrees with the {RUN_NAME_TAG} tag {tag_map[RUN_NAME_TAG]!r}."
        )
    tag_map[RUN_NAME_TAG] = name
    return name, tag_map
