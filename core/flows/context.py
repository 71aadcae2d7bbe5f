"""What a flow needs to answer one incoming message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.i18n import Catalogs, Translator
from core.knowledge import KnowledgeBase
from core.messages import Choice, Document, Reply
from core.question_tally import QuestionTally
from core.store import dialogue
from core.store.models import DialogueState, User


@dataclass
class Context:
    """One turn of a conversation: the resident, their language, the database session,
    and the dialogue state the flows read and change."""

    session: AsyncSession
    user: User
    t: Translator
    now: datetime
    kb: KnowledgeBase
    catalogs: Catalogs
    settings: Settings
    tally: QuestionTally
    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False  #: the resident asked to be forgotten during this turn
    #: The stored dialogue state as loaded at the start of the turn (None: there was none).
    state: DialogueState | None = None

    @property
    def lang(self) -> str:
        return self.t.code

    @property
    def today(self) -> date:
        """Today where the resident lives."""
        return self.now.astimezone(ZoneInfo(self.user.timezone)).date()

    def reply(
        self,
        text: str,
        intent: str,
        choices: tuple[Choice, ...] | list[Choice] = (),
        *,
        date_request: bool = False,
        document: Document | None = None,
    ) -> Reply:
        return Reply(
            text=text,
            intent=intent,
            language=self.lang,
            choices=tuple(choices),
            date_request=date_request,
            document=document,
        )

    def go(self, flow: str, step: str, **data: Any) -> None:
        """Move the dialogue to ``flow``/``step``; ``data`` replaces what the flow kept."""
        self.flow, self.step, self.data = flow, step, data

    def end(self) -> None:
        """Close the open flow: the next text is a question again."""
        self.flow, self.step, self.data = None, None, {}

    def use_language(self, code: str) -> None:
        self.t = self.catalogs.translator(code)

    async def save_dialogue(self) -> None:
        if self.deleted:
            return
        if self.flow is None:
            if self.state is not None:
                await dialogue.clear_state(self.session, self.user.id)
        else:
            await dialogue.save_state(
                self.session,
                self.user.id,
                self.state,
                self.flow,
                self.step or "",
                self.data,
                self.now,
            )
