"""The report of a run: who was notified, who failed and why, who has no address."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

REPORTS_DIR = "breach-reports"


@dataclass
class Report:
    """Who was notified, who failed with the server's answer, and who has no address."""

    incident: str
    affected: str
    dry_run: bool
    started: str
    finished: str = ""
    notified: list[str] = field(default_factory=list)
    would_notify: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    no_address: list[dict[str, str]] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "notified": len(self.notified),
            "would_notify": len(self.would_notify),
            "failed": len(self.failed),
            "no_address": len(self.no_address),
            "not_found": len(self.not_found),
        }

    def to_json(self) -> str:
        data = {**self.__dict__, "counts": self.counts()}
        if not self.dry_run:
            data.pop("would_notify")
        return json.dumps(data, indent=2) + "\n"

    def lines(self) -> list[str]:
        out = []
        if self.dry_run:
            out.append(f"Would notify ({len(self.would_notify)}):")
            out += [f"  {u}" for u in self.would_notify]
        else:
            out.append(f"Notified ({len(self.notified)}):")
            out += [f"  {u}" for u in self.notified]
            out.append(f"Failed ({len(self.failed)}):")
            out += [f"  {f['username']}: {f['error']}" for f in self.failed]
        out.append(f"No address ({len(self.no_address)}):")
        out += [f"  {n['username']}: {n['reason']}" for n in self.no_address]
        if self.not_found:
            out.append(f"Not a user of this hub ({len(self.not_found)}):")
            out += [f"  {u}" for u in self.not_found]
        return out


def write_report(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(report.to_json())


def default_report_path(settings, incident_file: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return settings.state_dir / REPORTS_DIR / f"{incident_file.stem}-{stamp}.json"
