"""LTI 1.3 launches: OIDC login initiation, id_token validation, the tool's keys."""
