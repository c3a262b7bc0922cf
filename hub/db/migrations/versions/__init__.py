"""One file per revision of LearnHub's tables, oldest first."""
