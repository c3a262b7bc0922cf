"""Every LearnHub table on the one metadata, for `alembic check` and `alembic revision`.

Only the alembic command and the tests import this: it loads the grading service (nbgrader),
which the hub process must not.
"""

from .. import store
from ..grading import queue
from ..grading import service as grading
from ..passback import outbox
from ..privacy import analytics
from .engine import Base

MODULES = (store, queue, grading, outbox, analytics)
metadata = Base.metadata
