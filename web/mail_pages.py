"""What a page says after it asked for account mail: sent, refused, delayed, failed or only logged.

Why these words (user trial 7): the pages said "We sent a message" while the
mail server had refused the address (550) or put it off (451). Each wording
fits every address alike, so a sign-up or reset page still says nothing of
whether an account exists (`jobs.account_mail` mails or asks about the same
address either way).
"""

from __future__ import annotations

from flask import render_template

from jobs.account_mail import Outcome, Result

# The page instead of "Check your email" when no mail server is set (the embedded default): nothing can
# arrive, and the link is only in the operator's log (`jobs.account_mail`). Says nothing of whether the
# address has an account.
NOT_SENT = (
    "This Lifeboat has no mail server set up (LIFEBOAT_SMTP_HOST), so no message can reach {email}. "
    "Whoever runs it finds the link in its log; once a mail server is set up, ask again."
)
REFUSED = (
    "The mail server refused to take mail for {email}, so nothing was sent there. "
    "Check that the address is spelled right, then try again with the right address. "
    "The mail server said: {reply}"
)
DELAYED = (
    "The mail server could not take mail for {email} just now, so nothing has arrived yet. "
    "Lifeboat tries again over the next few minutes: check your email a little later (and the spam folder). "
    "If nothing arrives, ask again."
)
FAILED = (
    "Lifeboat could not send mail to {email} because of a problem with its own mail settings, so nothing was "
    "sent. Try again later; if it keeps happening, tell whoever runs this Lifeboat."
)
TITLES = {
    Outcome.SENT: "Check your email",
    Outcome.REFUSED: "Message not delivered",
    Outcome.DELAYED: "Message delayed",
    Outcome.FAILED: "Message not sent",
    Outcome.LOGGED: "No email sent",
}


def words(result: Result, email: str, sent: str) -> str:
    """What to say of `result` for `email`; `sent` is the sentence for a message the server took."""
    if result.outcome is Outcome.SENT:
        return sent
    template = {
        Outcome.REFUSED: REFUSED,
        Outcome.DELAYED: DELAYED,
        Outcome.FAILED: FAILED,
        Outcome.LOGGED: NOT_SENT,
    }[result.outcome]
    return template.format(email=email, reply=result.reply or "no reason given")


def mail_page(result: Result, email: str, sent: str) -> str:
    """The page after a sign-up or reset request: `sent` under "Check your email" only if the server took it."""
    return render_template("message.html", title=TITLES[result.outcome], message=words(result, email, sent))
