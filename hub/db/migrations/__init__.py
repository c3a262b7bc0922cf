"""Alembic migrations of LearnHub's tables; learnhub.db.migrate runs them."""
