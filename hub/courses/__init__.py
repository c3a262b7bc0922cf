"""Courses: one nbgrader course per LMS context, its exchange, and its formgrader."""
