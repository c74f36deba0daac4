"""Readable random run names, like MLflow's ("clever-owl-417")."""

from __future__ import annotations

import random

_ADJECTIVES = ["able", "amazing", "bold", "brave", "bright", "calm", "capable", "clever", "crisp", "curious", "daring", "eager", "fast", "fearless", "gentle", "glad", "grand", "honest", "keen", "kind", "lively", "lucky", "mellow", "merry", "nimble", "noble", "patient", "placid", "polite", "proud", "quick", "quiet", "rare", "sharp", "shy", "silent", "sleek", "smart", "steady", "sunny", "swift", "tidy", "upbeat", "vast", "vivid", "warm", "wise", "witty", "zealous"]
_NOUNS = ["ant", "bass", "bat", "bear", "bee", "bird", "boar", "carp", "cat", "colt", "crab", "crane", "crow", "deer", "doe", "dog", "dove", "duck", "eel", "elk", "finch", "fish", "fly", "foal", "fox", "frog", "goat", "gull", "hare", "hawk", "hen", "heron", "horse", "jay", "koi", "lark", "lion", "lynx", "mole", "moth", "mouse", "newt", "owl", "ox", "panda", "perch", "pig", "pony", "ram", "rat", "robin", "seal", "shark", "sheep", "slug", "snail", "snake", "sow", "stag", "swan", "tern", "toad", "trout", "wasp", "whale", "wolf", "wren", "yak"]


def random_run_name() -> str:
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(0, 999)}"
