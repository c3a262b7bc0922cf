"""Operator settings: one YAML file, validated by a schema, with secrets from the environment."""

from __future__ import annotations

import copy
import difflib
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

DEFAULT_STATE_DIR = "learnhub-state"
SETTINGS_FILE_NAME = "learnhub.yaml"

# The schema is the single source of truth for keys, types, bounds and defaults. Each
# property's "description" is what the operator reads when a value is wrong and in the
# configuration reference (`learnhub settings reference`, docs/configuration.md). "sets" names
# the JupyterHub option a key is copied to unchanged (apply_config's update_options); a
# LearnHub trait among them takes its default, bounds and help from here (trait_arguments).
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "public_url": {
            "type": "string",
            "format": "uri",
            "pattern": "^https?://[^/]+/?$",
            "default": "http://127.0.0.1:8000",
            "description": "the URL learners and LMSs use to reach the hub, "
            "scheme and host only, e.g. https://learnhub.example.edu",
        },
        "bind_url": {
            "type": ["string", "null"],
            "pattern": "^https?://[^/]+/?$",
            "default": None,
            "description": "where the proxy listens, e.g. http://0.0.0.0:8000; "
            "defaults to public_url",
        },
        "hub": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "api_ip": {
                    "type": "string",
                    "default": "127.0.0.1",
                    "description": "address the hub API listens on (learner servers call it)",
                },
                "api_port": {
                    "sets": "JupyterHub.hub_port",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 65535,
                    "default": 8081,
                    "description": "port of the hub API (learner servers and services call it)",
                },
                "admin_users": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[a-z0-9._-]+$"},
                    "default": ["admin"],
                    "description": "usernames of operators who log in directly at /hub/login",
                },
                "log_level": {
                    "sets": "JupyterHub.log_level",
                    "enum": ["DEBUG", "INFO", "WARNING", "ERROR"],
                    "default": "INFO",
                    "description": "how much the hub logs; DEBUG only while tracing a problem "
                    "(it logs more of every request)",
                },
                "max_body_size": {
                    "type": "integer",
                    "minimum": 65536,
                    "maximum": 16777216,
                    "default": 262144,
                    "description": "largest request body, in bytes, that the hub's LearnHub "
                    "endpoints (LTI launches, formgrader, the bulk-erasure API) accept; larger "
                    "ones are refused with 413 before they are read (65536 to 16777216)",
                },
            },
        },
        "proxy": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "api_port": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 65535,
                    "default": 8001,
                    "description": "port of configurable-http-proxy's REST API, on loopback "
                    "only (the hub adds and removes routes through it)",
                },
                "command": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "path to configurable-http-proxy; found on PATH or in the "
                    "virtual environment when unset",
                },
            },
        },
        "database": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "url": {
                    "type": ["string", "null"],
                    "default": None,
                    "pattern": "^(sqlite|postgresql)(\\+[a-z0-9]+)?://",
                    "description": "SQLAlchemy URL of the platform database, "
                    "e.g. postgresql://learnhub@db/learnhub; SQLite in the state "
                    "directory when unset",
                },
            },
        },
        "lti": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "session_lifetime": {
                    "sets": "LearnHubAuthenticator.session_lifetime",
                    "type": "integer",
                    "minimum": 300,
                    "maximum": 86400,
                    "default": 14400,
                    "description": "seconds an LMS launch's server token stays valid "
                    "(300 to 86400)",
                },
                "timestamp_window": {
                    "sets": "LearnHubAuthenticator.timestamp_window",
                    "type": "integer",
                    "minimum": 30,
                    "maximum": 3600,
                    "default": 300,
                    "description": "seconds an LTI 1.1 oauth_timestamp may differ from now",
                },
                "login_state_lifetime": {
                    "sets": "LearnHubAuthenticator.login_state_lifetime",
                    "type": "integer",
                    "minimum": 30,
                    "maximum": 1800,
                    "default": 300,
                    "description": "seconds between LTI 1.3 login initiation and launch",
                },
                "jwks_cache_lifetime": {
                    "sets": "LearnHubAuthenticator.jwks_cache_lifetime",
                    "type": "integer",
                    "minimum": 60,
                    "maximum": 86400,
                    "default": 3600,
                    "description": "seconds a platform's JWKS is cached",
                },
                "clock_skew": {
                    "sets": "LearnHubAuthenticator.clock_skew",
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 300,
                    "default": 30,
                    "description": "seconds of clock difference tolerated on id_token exp/iat",
                },
                "deep_linking_lifetime": {
                    "sets": "LearnHubAuthenticator.deep_linking_lifetime",
                    "type": "integer",
                    "minimum": 300,
                    "maximum": 86400,
                    "default": 1800,
                    "description": "seconds an instructor has to pick assignments in a deep-"
                    "linking picker before it must be opened again from the LMS (300 to 86400)",
                },
                "frame_origins": {
                    "sets": "LearnHubAuthenticator.frame_origins",
                    "type": "array",
                    "items": {"type": "string", "pattern": "^https?://[^/]+$"},
                    "default": [],
                    "description": "extra origins allowed to frame LearnHub besides the "
                    "registered platforms, e.g. https://lms.example.edu",
                },
            },
        },
        "spawner": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "backend": {
                    "enum": ["auto", "docker", "kubernetes", "local"],
                    "default": "auto",
                    "description": "how learner servers run: docker (a container each, "
                    "isolated), kubernetes (a pod each, through Zero to JupyterHub: "
                    "deploy/kubernetes, not yet run on a cluster), local (processes of the "
                    "hub's user, NOT isolated: demos only) or auto (docker when an engine "
                    "answers and the learner image is there, else local with a warning)",
                },
                "images": {
                    "sets": "DockerLearnerSpawner.allowed_images",
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._/:@-]*$"},
                    "minItems": 1,
                    "uniqueItems": True,
                    "default": ["learnhub/learner:latest"],
                    "description": "the images learner containers may run, the default "
                    "first, e.g. [learnhub/learner:latest]; nobody can start another",
                },
                "cpu_limit": {
                    "sets": "DockerLearnerSpawner.cpu_limit",
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 256,
                    "default": 1,
                    "description": "CPUs one learner container may use, e.g. 1 or 0.5",
                },
                "mem_limit": {
                    "sets": "DockerLearnerSpawner.mem_limit",
                    "type": "string",
                    "pattern": "^[0-9]+(\\.[0-9]+)?[KMGT]$",
                    "default": "2G",
                    "description": "memory of one learner container, with a unit K, M, G or "
                    "T, e.g. 2G or 512M (/tmp counts towards it)",
                },
                "pids_limit": {
                    "sets": "DockerLearnerSpawner.pids_limit",
                    "type": "integer",
                    "minimum": 64,
                    "maximum": 65536,
                    "default": 256,
                    "description": "processes and threads one learner container may hold "
                    "(64 to 65536)",
                },
                "egress": {
                    "type": "boolean",
                    "default": True,
                    "description": "whether learner containers may open connections beyond "
                    "this machine (PY4E assignments fetch web pages); false puts them on an "
                    "internal Docker network",
                },
                "network": {
                    "sets": "DockerLearnerSpawner.network_name",
                    "type": "string",
                    "pattern": "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$",
                    "default": "learnhub-learners",
                    "description": "name of the Docker network of learner containers, made "
                    "at hub start with inter-container traffic disabled",
                },
                "kubernetes": {
                    "type": "object",
                    "additionalProperties": False,
                    "default": {},
                    "description": "learner servers as pods (backend kubernetes): where they "
                    "reach the hub's pod and where their files live",
                    "properties": {
                        "hub_host": {
                            "type": "string",
                            "pattern": "^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$",
                            "default": "hub",
                            "description": "the name learner pods reach the hub's pod and "
                            "LearnHub's services at: Zero to JupyterHub's hub Service, hub",
                        },
                        "storage_capacity": {
                            "type": "string",
                            "pattern": "^[0-9]+(Ki|Mi|Gi|Ti)$",
                            "default": "1Gi",
                            "description": "size of each learner's home claim, e.g. 1Gi",
                        },
                        "storage_class": {
                            "type": ["string", "null"],
                            "default": None,
                            "description": "storage class of the home claims; default (null) "
                            "the cluster's default class",
                        },
                        "state_claim": {
                            "sets": "KubeLearnerSpawner.state_claim",
                            "type": "string",
                            "pattern": "^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$",
                            "default": "learnhub-state",
                            "description": "the ReadWriteMany claim of LearnHub's state "
                            "directory (courses, exchange), mounted whole by the hub's pod and "
                            "by each grader server its course's folder only",
                        },
                        "node_selector": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "default": {},
                            "description": "node labels a learner pod must run on, e.g. "
                            "{node-role: learners}",
                        },
                    },
                },
                "start_timeout": {
                    "sets": "Spawner.start_timeout",
                    "type": "integer",
                    "minimum": 10,
                    "maximum": 1800,
                    "default": 120,
                    "description": "seconds a learner server may take to start",
                },
            },
        },
        "login": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "direct": {
                    "sets": "LearnHubAuthenticator.direct_login",
                    "type": "boolean",
                    "default": True,
                    "description": "allow operators and instructors to log in at /hub/login",
                },
                "open_signup": {
                    "sets": "LearnHubAuthenticator.open_signup",
                    "type": "boolean",
                    "default": False,
                    "description": "let anyone create a direct-login account without approval",
                },
            },
        },
        "culler": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "the idle culler, a hub service that stops learner servers nobody "
            "uses; their files stay and the next launch from the LMS starts them again",
            "properties": {
                "enabled": {
                    "type": "boolean",
                    "default": True,
                    "description": "true to stop idle learner servers, false to leave them "
                    "running until an operator stops them",
                },
                "idle_timeout": {
                    "type": "integer",
                    "minimum": 30,
                    "maximum": 604800,
                    "default": 3600,
                    "description": "seconds a learner server may go without activity (kernel "
                    "execution, saves, an open JupyterLab tab) before it is stopped, 30 to "
                    "604800; default 3600; values under 1800 make learner servers report "
                    "activity more often than every 300 seconds",
                },
                "check_every": {
                    "type": "integer",
                    "minimum": 5,
                    "maximum": 3600,
                    "default": 300,
                    "description": "seconds between two checks for idle servers, 5 to 3600 and "
                    "at most culler.idle_timeout; default 300",
                },
                "max_age": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 2592000,
                    "default": 0,
                    "description": "seconds after its start when a learner server is stopped "
                    "even while in use (work typed since the last save is lost), 0 to "
                    "2592000; default 0, which never stops a server for its age",
                },
            },
        },
        "courses": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "nbgrader courses, one per LMS context, and the exchange service "
            "learners fetch and submit through",
            "properties": {
                "port": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": 65535,
                    "default": None,
                    "description": "port of the course service (the exchange), on the address "
                    "learner servers reach the hub API at; default (null) hub.api_port + 1",
                },
                "template": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "a folder holding nbgrader_config.py and source/ that every "
                    "new course starts from (e.g. the repository's assignments/), or null for "
                    "empty courses",
                },
                "submission_limit_mb": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1000,
                    "default": 25,
                    "description": "largest submission the exchange keeps, in MB; default 25",
                },
                "roster_sync_minutes": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "maximum": 10080,
                    "default": 60,
                    "description": "read an LTI 1.3 course's roster (NRPS) at a launch when the "
                    "last read is this many minutes old (0: at every launch; null: never); "
                    "default 60",
                },
                "roster_names": {
                    "type": "boolean",
                    "default": False,
                    "description": "keep the names and emails the LMS's roster sends for "
                    "people who have not launched yet, so formgrader shows them by name (a "
                    "launch keeps what it sends either way); default false: only their "
                    "pseudonym and role until their first launch",
                },
            },
        },
        "grading": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "the grading service, which autogrades each submission in a sandbox "
            "and sends the score to the LMS",
            "properties": {
                "port": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": 65535,
                    "default": None,
                    "description": "port of the grading service; default (null) hub.api_port + 2",
                },
                "workers": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": 64,
                    "default": None,
                    "description": "submissions graded at once; default (null) one per CPU core",
                },
                "sandbox": {
                    "enum": ["auto", "docker", "process"],
                    "default": "auto",
                    "description": "where learners' code runs while graded: a fresh container "
                    "per submission (docker), a limited process (process, weaker), or docker "
                    "when an engine answers (auto)",
                },
                "image": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "the grader image (default learnhub/grader, built by "
                    "`learnhub images build`)",
                },
                "cpu_limit": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 64,
                    "default": 1.0,
                    "description": "CPUs one submission may use; default 1",
                },
                "memory_mb": {
                    "type": "integer",
                    "minimum": 64,
                    "maximum": 65536,
                    "default": 512,
                    "description": "memory one submission may use, in MB; default 512",
                },
                "pids_limit": {
                    "type": "integer",
                    "minimum": 16,
                    "maximum": 4096,
                    "default": 128,
                    "description": "processes and threads one submission may hold; default 128",
                },
                "cell_timeout": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 3600,
                    "default": 30,
                    "description": "seconds one cell may run; default 30",
                },
                "notebook_timeout": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 86400,
                    "default": 300,
                    "description": "seconds one notebook may run in all; default 300, at least "
                    "grading.cell_timeout",
                },
                "unlinked_assignments": {
                    "enum": ["course-link", "hold"],
                    "default": "course-link",
                    "description": "where the grade of an assignment goes when the learner "
                    "never opened a link naming it (custom parameter assignment=): through the "
                    "course's link (course-link: under LTI 1.3 a column of its own; where that "
                    "link gives one grade cell, the first assignment sent keeps it and the "
                    "others wait), or kept until the learner opens the assignment's link (hold)",
                },
            },
        },
        "demo": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "lms_port": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 65535,
                    "default": 8090,
                    "description": "port of the demo LMS that `learnhub run --demo` starts",
                },
            },
        },
        "smtp": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "the mail server `learnhub notify-breach` sends through",
            "properties": {
                "host": {
                    "type": ["string", "null"],
                    "default": None,
                    "pattern": "^[A-Za-z0-9.:-]+$",
                    "description": "host name of the SMTP server, e.g. smtp.example.edu; "
                    "required to send breach notifications",
                },
                "port": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 65535,
                    "default": 587,
                    "description": "SMTP port: 587 for starttls, 465 for tls, 25 for none",
                },
                "security": {
                    "enum": ["starttls", "tls", "none"],
                    "default": "starttls",
                    "description": "how the connection is encrypted: starttls (upgrade a plain "
                    "connection), tls (encrypted from the start) or none (loopback hosts only)",
                },
                "ca_file": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "PEM file of the certificate authorities to trust for the "
                    "SMTP server; the system's when unset",
                },
                "username": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "SMTP login name; no authentication when unset",
                },
                "password": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "SMTP password; prefer the LEARNHUB_SMTP_PASSWORD "
                    "environment variable, which wins over this key",
                },
                "from_address": {
                    "type": ["string", "null"],
                    "default": None,
                    "pattern": "^[^@\\s]+@[^@\\s]+$",
                    "description": "the sender address of notifications, e.g. "
                    "privacy@example.edu; required to send breach notifications",
                },
                "rate_per_minute": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 6000,
                    "default": 60,
                    "description": "messages sent per minute at most (1 to 6000)",
                },
                "timeout": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 600,
                    "default": 30,
                    "description": "seconds to wait for the SMTP server to answer (1 to 600)",
                },
            },
        },
        "tls": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "how browsers reach LearnHub over HTTPS: a certificate the proxy "
            "serves, or a trusted proxy in front that terminates TLS",
            "properties": {
                "cert_file": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "PEM certificate chain the proxy serves on bind_url, e.g. "
                    "/etc/letsencrypt/live/learnhub.example.edu/fullchain.pem; needs "
                    "tls.key_file and an https public_url",
                },
                "key_file": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "PEM private key of tls.cert_file, e.g. "
                    "/etc/letsencrypt/live/learnhub.example.edu/privkey.pem",
                },
                "terminated_by_proxy": {
                    "type": "boolean",
                    "default": False,
                    "description": "true when a trusted proxy in front of LearnHub (Caddy, "
                    "nginx, a load balancer) terminates TLS and forwards plain HTTP to "
                    "bind_url; public_url must then be https",
                },
            },
        },
        "privacy": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "the privacy policy page and first-party statistics",
            "properties": {
                "analytics": {
                    "type": "boolean",
                    "default": True,
                    "description": "true to keep daily counts in the platform database "
                    "(launches per LTI version, distinct learners who launched, learner "
                    "servers started, hub page views per route), never for a request or "
                    "launch with DNT or GPC; false to keep none",
                },
                "policy_template": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "path of a Jinja template served at /hub/privacy instead "
                    "of LearnHub's default policy, e.g. /etc/learnhub/privacy.html; it may "
                    "extend learnhub-base.html and use operator_name, contact_email, "
                    "postal_lines and site",
                },
                "retention": {
                    "type": "object",
                    "additionalProperties": False,
                    "default": {},
                    "description": "scheduled expiry of inactive data by the learnhub-retention "
                    "service; administrators and direct-login accounts never expire",
                    "properties": {
                        "enabled": {
                            "type": "boolean",
                            "default": True,
                            "description": "true to expire inactive data every "
                            "privacy.retention.interval_hours; false to expire nothing (the "
                            "learner's data page and erasure on request still work)",
                        },
                        "scrub_after_days": {
                            "type": "integer",
                            "minimum": 30,
                            "maximum": 3650,
                            "default": 365,
                            "description": "days without a launch or any activity after which a "
                            "learner's name and email are deleted, 30 to 3650; default 365",
                        },
                        "delete_after_days": {
                            "type": "integer",
                            "minimum": 30,
                            "maximum": 3650,
                            "default": 730,
                            "description": "days without a launch or any activity after which a "
                            "learner and everything about them is deleted (account, files, "
                            "submissions, grades), 30 to 3650 and at least "
                            "privacy.retention.scrub_after_days; default 730",
                        },
                        "course_delete_after_days": {
                            "type": "integer",
                            "minimum": 30,
                            "maximum": 3650,
                            "default": 1095,
                            "description": "days without any launch after which a course is "
                            "deleted with its material and gradebook, 30 to 3650; default 1095",
                        },
                        "interval_hours": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 168,
                            "default": 24,
                            "description": "hours between two sweeps, 1 to 168; default 24",
                        },
                        "service_port": {
                            "type": ["integer", "null"],
                            "minimum": 1,
                            "maximum": 65535,
                            "default": None,
                            "description": "port of the learnhub-retention service (learners' "
                            "data pages call it), on the address learner servers reach the hub "
                            "API at; default hub.api_port + 3",
                        },
                    },
                },
            },
        },
        "operator": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "who runs this LearnHub, as named in messages to learners",
            "properties": {
                "name": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "the organisation running LearnHub, e.g. Python for "
                    "Everybody (py4e.com); required to send breach notifications",
                },
                "contact_email": {
                    "type": ["string", "null"],
                    "default": None,
                    "pattern": "^[^@\\s]+@[^@\\s]+$",
                    "description": "where learners write with privacy questions, e.g. "
                    "privacy@example.edu",
                },
                "postal_address": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "the operator's postal address, one string; new lines allowed",
                },
            },
        },
    },
}


def option(path: str) -> dict[str, Any]:
    """The schema of one key of learnhub.yaml by its dotted path, e.g. lti.clock_skew."""
    node = SCHEMA
    for part in path.split("."):
        node = node["properties"][part]
    return node


def options(schema: dict[str, Any] = SCHEMA, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Every key of learnhub.yaml that holds a value (not a section), with its schema, in the
    schema's order."""
    for key, sub in schema["properties"].items():
        path = f"{prefix}{key}"
        if "properties" in sub:
            yield from options(sub, f"{path}.")
        else:
            yield path, sub


def trait_help(path: str) -> str:
    """A trait's help, made of its key's description, default and name."""
    prop = option(path)
    text = prop["description"]
    default = json.dumps(prop["default"])
    return f"{text[0].upper()}{text[1:]}. Default {default}. learnhub.yaml: {path}."


def trait_arguments(path: str) -> dict[str, Any]:
    """Keyword arguments of the LearnHub trait that the key `path` sets: its default, bounds
    and help come from the schema, so that the trait and learnhub.yaml cannot drift apart."""
    prop = option(path)
    arguments: dict[str, Any] = {
        "default_value": copy.deepcopy(prop["default"]),
        "config": True,
        "help": trait_help(path),
    }
    for bound, name in (("minimum", "min"), ("maximum", "max")):
        if bound in prop:
            arguments[name] = prop[bound]
    return arguments


# Secrets are read from these variables first, then from files in the state directory
# (created on first start, mode 0600). In production set the variables.
SECRET_ENV = {
    "crypt_key": "LEARNHUB_CRYPT_KEY",
    "pseudonym_key": "LEARNHUB_PSEUDONYM_KEY",
}
# The retention service's hub API token (the CLI acts with it too), made by init_state.
RETENTION_TOKEN_FILE = "retention-service-token"  # noqa: S105 (a file name, not a secret)


class SettingsError(ValueError):
    """A settings file that cannot be used, with a message naming the key and the fix."""


@dataclass(frozen=True)
class Settings:
    """Validated settings plus the resolved state directory and secrets.

    Reading settings writes nothing: the secrets come from the environment or from files of
    the state directory that init_state made (the step `learnhub init` and `learnhub run`
    take, and the hub's start), read when first asked for.
    """

    values: dict[str, Any]
    state_dir: Path
    source: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def crypt_key(self) -> bytes:
        return _secret(self.state_dir, "crypt_key", self.environ)

    @cached_property
    def pseudonym_key(self) -> bytes:
        return _secret(self.state_dir, "pseudonym_key", self.environ)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def value(self, path: str) -> Any:
        """The value of a key by its dotted path, e.g. lti.clock_skew."""
        node: Any = self.values
        for part in path.split("."):
            node = node[part]
        return node

    @property
    def public_url(self) -> str:
        return self.values["public_url"].rstrip("/")

    @property
    def bind_url(self) -> str:
        return (self.values["bind_url"] or self.values["public_url"]).rstrip("/")

    @property
    def database_url(self) -> str:
        return self.values["database"]["url"] or f"sqlite:///{self.state_dir / 'learnhub.sqlite'}"

    @property
    def is_loopback(self) -> bool:
        host = urlsplit(self.bind_url).hostname or ""
        return host in LOOPBACK_HOSTS


def _fill_defaults(schema: dict[str, Any], data: Any) -> Any:
    """Return data with every missing key that has a schema default filled in."""
    if schema.get("type") != "object" or not isinstance(data, dict):
        return data
    filled = dict(data)
    for key, sub in schema.get("properties", {}).items():
        if key not in filled and "default" in sub:
            filled[key] = copy.deepcopy(sub["default"])
        if key in filled:
            filled[key] = _fill_defaults(sub, filled[key])
    return filled


def _describe(error: jsonschema.ValidationError) -> str:
    """Turn a schema error into one sentence that names the key and the fix."""
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        hints = []
        for key in extra:
            close = difflib.get_close_matches(key, known, n=1)
            where = f"{path}.{key}" if error.absolute_path else key
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            hints.append(f"unknown key '{where}': {hint}")
        return "; ".join(hints)
    description = error.schema.get("description")
    fix = f" Expected {description}." if description else ""
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"'{path}' is {error.instance!r}: use one of {allowed}.{fix}"
    if error.validator in {"minimum", "maximum"}:
        return f"'{path}' is {error.instance!r}: {error.message}.{fix}"
    if error.validator == "type":
        return f"'{path}' must be of type {error.validator_value}, not {error.instance!r}.{fix}"
    return f"'{path}': {error.message}.{fix}"


# --- what the schema cannot say: one value bounded by another ------------------------------


def check_culler(values: dict[str, Any]) -> None:
    """culler.check_every is at most culler.idle_timeout."""
    culler = values["culler"]
    if culler["check_every"] > culler["idle_timeout"]:
        raise SettingsError(
            f"'culler.check_every' is {culler['check_every']}, longer than "
            f"'culler.idle_timeout' ({culler['idle_timeout']}): idle servers would run up to "
            f"{culler['check_every'] + culler['idle_timeout']} seconds; set "
            f"culler.check_every to at most {culler['idle_timeout']}"
        )


def check_grading(values: dict[str, Any]) -> None:
    """grading.notebook_timeout is at least grading.cell_timeout."""
    grading = values["grading"]
    if grading["notebook_timeout"] < grading["cell_timeout"]:
        raise SettingsError(
            "'grading.notebook_timeout' must be at least 'grading.cell_timeout' "
            f"({grading['cell_timeout']})"
        )


def check_retention(values: dict[str, Any]) -> None:
    """privacy.retention.delete_after_days is at least privacy.retention.scrub_after_days."""
    retention = values["privacy"]["retention"]
    if retention["delete_after_days"] < retention["scrub_after_days"]:
        raise SettingsError(
            f"'privacy.retention.delete_after_days' is {retention['delete_after_days']}, "
            f"shorter than 'privacy.retention.scrub_after_days' "
            f"({retention['scrub_after_days']}): a learner would be deleted before their name "
            f"and email are scrubbed; set delete_after_days to at least "
            f"{retention['scrub_after_days']}"
        )


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_smtp(values: dict[str, Any]) -> None:
    """smtp.security 'none' only with a loopback smtp.host: mail to another machine carries
    learners' addresses and the SMTP password, so it is encrypted."""
    smtp = values["smtp"]
    if smtp["security"] == "none" and smtp["host"] not in LOOPBACK_HOSTS:
        raise SettingsError(
            f"'smtp.host' is {smtp['host']!r} while smtp.security is 'none': unencrypted mail "
            f"only to a loopback host ({', '.join(LOOPBACK_HOSTS)}); set smtp.security to "
            "starttls or tls for any other host"
        )


def serves_https(values: dict[str, Any]) -> bool:
    """Browsers reach this LearnHub over HTTPS (public_url is https)."""
    return values["public_url"].startswith("https://")


def check_tls(values: dict[str, Any]) -> None:
    """tls.cert_file and tls.key_file are set together, never with tls.terminated_by_proxy;
    either one needs an https public_url."""
    tls = values["tls"]
    cert, key = tls["cert_file"], tls["key_file"]
    if bool(cert) != bool(key):
        missing = "tls.key_file" if cert else "tls.cert_file"
        raise SettingsError(
            f"'{missing}' is not set: tls.cert_file (the certificate chain, PEM) and "
            "tls.key_file (its private key, PEM) go together; set both or neither"
        )
    if cert and tls["terminated_by_proxy"]:
        raise SettingsError(
            "'tls.terminated_by_proxy' is true while tls.cert_file is set: either the proxy "
            "in front terminates TLS (remove tls.cert_file and tls.key_file) or LearnHub "
            "serves the certificate itself (set tls.terminated_by_proxy to false)"
        )
    if (cert or tls["terminated_by_proxy"]) and not serves_https(values):
        raise SettingsError(
            f"'public_url' is {values['public_url']!r} while TLS is configured: set it to the "
            "https:// address learners and LMSs use, e.g. https://learnhub.example.edu"
        )


# Every rule between keys, in one place: validate runs them on every settings file, and the
# configuration reference lists them (their docstrings).
def check_kubernetes(values: dict[str, Any]) -> None:
    """With spawner.backend kubernetes, grading.sandbox is not docker: the hub's pod has no
    Docker engine (the sandbox as a pod of its own is not built yet, docs/kubernetes.md)."""
    if values["spawner"]["backend"] == "kubernetes" and values["grading"]["sandbox"] == "docker":
        raise SettingsError(
            "'grading.sandbox' is docker but 'spawner.backend' is kubernetes, whose hub pod "
            "has no Docker engine: set grading.sandbox to process (see docs/kubernetes.md)"
        )


RULES = (check_culler, check_grading, check_kubernetes, check_retention, check_smtp, check_tls)


def validate(data: Any) -> dict[str, Any]:
    """Validate raw settings and return them with defaults filled in."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError("the settings file must hold a mapping of keys to values")
    errors = sorted(
        jsonschema.Draft202012Validator(SCHEMA).iter_errors(data),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        raise SettingsError("; ".join(_describe(e) for e in errors))
    values = _fill_defaults(SCHEMA, data)
    for rule in RULES:
        rule(values)
    return values


def _secret_from_environment(name: str, environ: Mapping[str, str]) -> bytes | None:
    env_name = SECRET_ENV[name]
    if not environ.get(env_name):
        return None
    try:
        value = bytes.fromhex(environ[env_name].strip())
    except ValueError:
        raise SettingsError(
            f"{env_name} must be hex, e.g. the output of `openssl rand -hex 32`"
        ) from None
    if len(value) < 32:
        raise SettingsError(f"{env_name} must hold at least 32 bytes (64 hex digits)")
    return value


def _secret(state_dir: Path, name: str, environ: Mapping[str, str]) -> bytes:
    """A 32-byte secret from the environment (hex) or from the state directory's file."""
    value = _secret_from_environment(name, environ)
    if value is not None:
        return value
    path = state_dir / f"{name}.hex"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise missing_state(path, f" and {SECRET_ENV[name]} is not set") from None


def missing_state(path: Path, unless: str = "") -> SettingsError:
    """The error for a file of the state directory that is not there: none was made here."""
    return SettingsError(
        f"{path} does not exist{unless}: this is not a LearnHub state directory yet. Run "
        "`learnhub init` to make one here (`learnhub run` does), or point LEARNHUB_STATE_DIR "
        "at the existing one"
    )


def init_state(settings: Settings) -> list[Path]:
    """Make the state directory (0700) and the secrets the environment does not give (0600
    files); what exists is kept. The files made."""
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    made = []
    wanted = [
        settings.state_dir / f"{name}.hex"
        for name in SECRET_ENV
        if _secret_from_environment(name, settings.environ) is None
    ]
    for path in [*wanted, settings.state_dir / RETENTION_TOKEN_FILE]:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        made.append(path)
    return made


def load_settings(path: str | os.PathLike | None = None, environ=None) -> Settings:
    """Read, validate and resolve the settings; nothing is written (see init_state)."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get("LEARNHUB_CONFIG")
    if path is None and Path(SETTINGS_FILE_NAME).exists():
        path = SETTINGS_FILE_NAME
    raw: Any = {}
    source = None
    if path is not None:
        source = Path(path)
        if not source.exists():
            raise SettingsError(f"settings file {source} does not exist")
        try:
            raw = yaml.safe_load(source.read_text())
        except yaml.YAMLError as e:
            raise SettingsError(f"{source} is not valid YAML: {e}") from None
    try:
        values = validate(raw)
    except SettingsError as e:
        where = f"{source}: " if source else ""
        raise SettingsError(f"{where}{e}") from None

    state_dir = Path(environ.get("LEARNHUB_STATE_DIR") or DEFAULT_STATE_DIR).resolve()
    # Only the variables of the secrets, so that Settings can be kept and passed along;
    # checked now, so that a bad one stops whatever starts.
    secret_environ = {name: environ[name] for name in SECRET_ENV.values() if name in environ}
    for name in SECRET_ENV:
        _secret_from_environment(name, secret_environ)
    return Settings(values=values, state_dir=state_dir, source=source, environ=secret_environ)
