"""The schema revision this code writes and reads; stdlib-only so lean readers can check it."""

HEAD_REVISION = "0013"  # keep equal to the newest file in migrations/versions (a test checks it)
