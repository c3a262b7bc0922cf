"""LTI 1.1 basic launches signed with OAuth 1.0a."""
