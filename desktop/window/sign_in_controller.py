"""Who may see and drive the station window: sign-in, sign-out, idle time, and re-checks.

The window opens locked. A sign-in is checked against the station's replica in a thread
(argon2 takes a few tenths of a second; the window stays responsive), so it works with the
server and the broker out of reach. While someone is signed in, every ``CHECK_MS`` the
controller reads them again from the replica: a sync that disabled or deleted them signs
them out, one that changed their roles changes what the window lets them do. No input for
the idle time signs them out too. Only the view locks: the agent samples all along.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from core.tasks import TaskSet
from desktop.agent.replica import Replica
from desktop.agent.sign_in import Person, SignInRefused, sign_in
from desktop.window.idle import IdleWatch
from desktop.window.options import WindowOptions
from desktop.window.session import Session, SignedOutError, sentence
from desktop.window.station_view import StationView

log = logging.getLogger(__name__)
CHECK_MS = 2_000  # how soon a sync that disabled or demoted the operator shows in the window

Note = Callable[[str, str], None]  # (kind, text) into the station's event log


class SignInController(QObject):
    """Locks and unlocks the station view for the person signed in."""

    signed_in = Signal(object)  # the Person
    signed_out = Signal(str)  # why, in words ("" when they chose to)

    def __init__(
        self,
        view: StationView,
        replica: Replica,
        *,
        options: WindowOptions | None = None,
        note: Note | None = None,
        check_ms: int = CHECK_MS,
    ) -> None:
        super().__init__(view)
        self.view = view
        self.replica = replica
        self.options = options or WindowOptions()
        self._note = note or (lambda kind, text: None)
        self.session: Session | None = None
        self.tasks = TaskSet("station window sign-in")
        form, bar = view.sign_in, view.operator_bar
        form.submit.clicked.connect(self._submit_clicked)
        form.password.returnPressed.connect(self._submit_clicked)
        form.username.returnPressed.connect(form.password.setFocus)
        bar.sign_out.clicked.connect(lambda: self.sign_out(""))
        minutes = f"{self.options.idle_minutes:g} min"
        bar.idle_note.setText(f"signs out after {minutes} without input")
        app = QApplication.instance()
        assert app is not None, "a QApplication exists before any window"
        self.idle = IdleWatch(self.options.idle_s, watched=app, parent=self)
        self.idle.idle.connect(lambda: self.sign_out(f"no input for {minutes}"))
        self.timer = QTimer(self)
        self.timer.setInterval(check_ms)
        self.timer.timeout.connect(lambda: self.tasks.spawn(self.check()))
        view.lock()

    @property
    def person(self) -> Person | None:
        """Who signed in (as they were then), or None."""
        return None if self.session is None else self.session.signed_in

    def _submit_clicked(self) -> None:
        if self.view.sign_in.submit.isEnabled():  # Return while a check runs does not count
            self.tasks.spawn(self.submit())

    async def submit(self) -> Person | None:
        """Check the form's username and password; unlock for them, or say why not."""
        form = self.view.sign_in
        username, password = form.username.text().strip(), form.password.text()
        if not username or not password:
            form.show_refusal("Enter your username and password.")
            return None
        form.set_busy(True)
        try:
            person = await asyncio.to_thread(
                sign_in,
                self.replica,
                username,
                password,
                max_failures=self.options.max_failures,
                lock_seconds=self.options.lock_seconds,
            )
        except SignInRefused as refused:
            form.set_busy(False)
            form.show_refusal(sentence(refused.reason))
            self._note("sign-in", f"sign-in as {username} refused: {refused.reason}")
            return None
        except Exception as error:  # a damaged or missing replica: said, never a crash
            log.exception("sign-in as %s could not be checked", username)
            form.set_busy(False)
            form.show_refusal(f"The sign-in could not be checked on this station: {error}")
            return None
        form.set_busy(False)
        self._start(person)
        return person

    def _start(self, person: Person) -> None:
        self.session = Session(self.replica, person)
        self.view.sign_in.reset()  # nothing typed stays behind the station
        self._show(person)
        self.view.unlock()
        self.idle.start()
        self.timer.start()
        self._note("sign-in", f"{person.username} signed in")
        self.signed_in.emit(person)

    def _show(self, person: Person) -> None:
        bar = self.view.operator_bar
        bar.show_person(person.display_name, person.username, person.roles)
        bar.allow(person.permissions)

    def sign_out(self, why: str) -> None:
        """Lock the view again; ``why`` is said on the sign-in page (empty: by choice)."""
        session, self.session = self.session, None
        if session is None:
            return
        self.idle.stop()
        self.timer.stop()
        self.view.lock(f"Signed out: {why}." if why else "")
        said = f"{session.signed_in.username} signed out"
        self._note("sign-in", f"{said}: {why}" if why else said)
        self.signed_out.emit(why)

    async def check(self) -> None:
        """Read the operator again: sign out a disabled or deleted one, show a changed one."""
        session = self.session
        if session is None:
            return
        try:
            person = await asyncio.to_thread(session.current)
        except SignedOutError as gone:
            if self.session is session:
                self.sign_out(gone.reason)
            return
        except Exception:  # the next check tries again; acting re-reads anyway
            log.exception("could not read the operator from the replica")
            return
        if self.session is session:
            self._show(person)

    async def stop(self) -> None:
        """Stop watching and checking, and end a check under way (the app closes the window)."""
        self.idle.stop()
        self.timer.stop()
        await self.tasks.cancel()
