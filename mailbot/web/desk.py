"""What every page and form of the desk shares: the App, the letters, the clock, the cookie rules.

The page modules take a ``Desk`` from here, and app.py builds one and hands
it to them: no page module imports the application that registers it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailbot.app import App
from mailbot.ledger.facts import seal_words
from mailbot.replies.render import Renderer
from mailbot.service.status import current_status, status_lines
from mailbot.web.overview import focus_areas


@dataclass(frozen=True)
class Desk:
    """What every view needs: the App, the letter templates, the clock, the cookie rules."""

    app: App
    letters: Renderer  # templates/web/reply/*.txt.j2, rendered as the replies are
    secure_cookies: bool
    clock: Callable[[], datetime]

    def now(self) -> datetime:
        return self.clock()

    def local(self, moment: datetime | None) -> str:
        """A moment in Beijing time (the call's time zone), as the log shows it."""
        if moment is None:
            return "-"
        return self.app.call.local(moment).strftime("%Y-%m-%d %H:%M:%S")

    def service(self) -> list[tuple[str, str]]:
        """The figures of `mailbot status`, for the strip atop every page."""
        digest = self.app.settings.digest
        tz = self.app.call.tz
        with self.app.db.transaction() as session:
            figures = current_status(
                session, self.app.call.id, tz, digest.at, digest.to, self.now()
            )
        return status_lines(figures, tz)

    def focus_area(self, code: str | None) -> tuple[str, str]:
        if not code or code == "-":
            return ("-", "")
        return focus_areas(self.app.call).get(code, (code, ""))

    def seal(self, seal: Mapping[str, Any] | None) -> tuple[str, str]:
        """What the seal check saw on the current version's PDF scan."""
        return seal_words(seal)

    def focus_area_text(self, code: str | None) -> str:
        zh, en = self.focus_area(code)
        return f"{zh} {en}".strip()
