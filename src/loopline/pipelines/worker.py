"""``python -m loopline.pipelines.worker TASK_FILE RESULT_FILE``: run one pickled step task.

A module of its own so that the task's classes are pickled as ``loopline.pipelines.task.*``,
not as ``__main__.*`` (which the parent could not unpickle).
"""

from __future__ import annotations

import sys

from loopline.pipelines.task import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
