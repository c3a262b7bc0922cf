"""nbgrader settings for the PY4E course; LearnHub copies this file into each course directory.

Paths stay relative to the course directory (nbgrader's root is the directory it runs
in), so the file works wherever it is copied. LearnHub may append its own settings
(course_id, db_url) below; later assignments win.
"""

c = get_config()  # noqa: F821 -- provided by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "py4e"

# Released notebooks: solutions become a stub that fails loudly, so a blank answer
# scores zero instead of passing by accident.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Every solution region must sit in a cell marked as a solution, so a marker typo fails
# generate_assignment instead of leaking an answer.
c.ClearSolutions.enforce_metadata = True
c.ClearHiddenTests.enforce_metadata = True

# Autograding runs learner code: bound every cell, and keep going after an error so one
# broken answer costs only its own points.
c.Execute.timeout = 30  # seconds per cell
c.Execute.interrupt_on_timeout = True
c.Execute.execute_retries = 0

# Data files beside a notebook (ps06's mbox-short.txt) are released with it; keep
# editor and Python clutter out of releases and submissions.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]
