"""Commands: what was asked of which station, and where each one stands.

The one package that reads and writes the ``commands`` table. A person creates a command
(``commands:send``; an ``UpdateConfig`` also needs ``config:write``, since it makes the
device's next desired configuration version); the dispatcher moves it. Every move is one
guarded ``UPDATE … WHERE id = … AND state IN (…)``, so two server replicas, a duplicate
answer or a late one can never move a command backwards, skip a state or leave a terminal
one:

- ``queued`` → ``sent`` once the broker has completed the QoS 2 hand-over (``mark_sent``);
- → ``delivered`` / ``succeeded`` / ``failed`` / ``rejected`` only on the station's own
  answer (``record_result``), accepted from ``sent`` or ``delivered``, and from ``queued``
  once a publish has begun (``attempts > 0``: the answer can beat ``mark_sent``'s commit);
- ``queued`` / ``sent`` → ``expired`` and ``delivered`` → ``timed_out`` at the deadline
  (``expire_due``), as the deadlines below say;
- ``queued`` → ``canceled`` by a person, only before any publish began: once a command has
  been handed to the broker it may reach the station, and cannot be withdrawn.

Creation, cancellation, every terminal state and every answer refused (an unverified one,
one for another device's command or an unknown id) or arriving too late are audited. Each
move is announced (``CommandChanged``) after its commit, so pages and the dispatcher follow.

An ``UpdateConfig`` that ends ``expired`` or ``canceled`` has its configuration version
withdrawn (core.services.command_withdrawal), so the station never applies a change whose
command says it did not happen.

Deadlines tell the truth. A station accepts a signed command up to
``protocol.ACCEPT_LEEWAY_MS`` past its ``expires_at`` by its own clock, a leeway for clocks
that disagree by up to that much; so in the server's time a station may accept it until
twice the leeway past ``expires_at``. The server ends a command only when no station whose
clock keeps within the leeway can still be running it unheard:

- never handed to the broker (``queued``, no publish begun): ``expired`` at ``expires_at``,
  since nothing is published after it (``attempt``);
- published but unanswered: ``expired`` at ``expires_at`` + ``EXPIRY_GRACE`` (twice the
  station's leeway, its shortest run and the answer's transit, computed from the station's
  own figures so the two sides cannot drift apart);
- ``delivered``: ``timed_out`` at ``EXPIRY_GRACE`` past the later of ``expires_at`` and the
  station's ``delivered``.

The grace is a fallback for a station that cannot be asked. At ``expires_at`` +
``ASK_AFTER`` a published command still unanswered is asked about, once (``ask_due``
records ``asked_at``; the dispatcher signs and publishes the ``command.query``, and asks
again whenever the device or the link comes back while it stays unanswered, within the
grace: ``asked_unanswered``). The station answers from its ledger without running
anything: what it ran is recorded as any answer is; one it never received it refuses from
then on and answers ``rejected`` ``protocol.NOT_RECEIVED``, which ends the command
``expired`` ("the station confirms it never received it before its deadline": it was not
run, and an ``UpdateConfig``'s version is withdrawn). So a lost command ends seconds after
its deadline, and no command runs past it because of the question.

An answer can still come later than that (a station clock further behind than the leeway,
or an answer held back by a broken link). ``expired`` says the station never ran it, so the
station's own verified word that it did (``delivered``, ``succeeded``, ``failed``) corrects
that record to what it said, audited as ``command.corrected``; it is the only terminal state
that moves, and only so. An ``UpdateConfig`` that ends ``succeeded`` after its version was
withdrawn has the version reinstated, so the configuration asked for is the one applied.

Where each part lives: a person's side (``create``, ``get``, ``search``, ``cancel``) in
``requests``; the dispatcher's moves before an answer (``pending``, ``attempt``,
``mark_sent``) in ``dispatch``; the station's answers (``record_result``) in ``answers``;
the deadlines and the question (``expire_due``, ``ask_due``, ``next_deadline``) in
``deadlines``; the guarded ``UPDATE`` every move makes, and the record of an end, in
``moves``. Callers use the names below, from this package.
"""

from core.services.commands.answers import NEVER_RECEIVED, Outcome, record_result
from core.services.commands.deadlines import (
    ASK_AFTER,
    EXPIRY_GRACE,
    SYSTEM,
    ask_due,
    asked_unanswered,
    expire_due,
    next_deadline,
)
from core.services.commands.dispatch import attempt, mark_sent, pending
from core.services.commands.moves import ACTIVE
from core.services.commands.requests import (
    MAX_ARGS_BYTES,
    MAX_PAGE,
    cancel,
    create,
    get,
    kinds_and_devices,
    list_for_device,
    search,
)

__all__ = [
    "ACTIVE",
    "ASK_AFTER",
    "EXPIRY_GRACE",
    "MAX_ARGS_BYTES",
    "MAX_PAGE",
    "NEVER_RECEIVED",
    "SYSTEM",
    "Outcome",
    "ask_due",
    "asked_unanswered",
    "attempt",
    "cancel",
    "create",
    "expire_due",
    "get",
    "kinds_and_devices",
    "list_for_device",
    "mark_sent",
    "next_deadline",
    "pending",
    "record_result",
    "search",
]
