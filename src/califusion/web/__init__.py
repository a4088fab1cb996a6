"""web layer: the local dashboard served by ``califusion ui``.

Server-rendered Jinja2 pages with htmx for partial updates and uPlot for charts (both vendored
under ``static/vendor``); the Python agent in this process holds the keys and signs every
request to the coordinator, so the browser never sees a private key.

* ``app``         :class:`Dashboard` and :func:`create_app`: routes, static files, error pages
* ``security``    the local guard (Host, Origin, session, CSRF) and security headers
* ``local``       :class:`LocalAgent`: the signed client and the background work
* ``publishing``  create, open, start, cancel; the publisher loop; the final model
* ``training``    data checks, joining, trainer threads and their records
* ``jobform``     the create-job form → :class:`~califusion.protocol.JobSpec`
* ``money``       :class:`LedgerDesk`: balances, history, payouts, the client-side chain check
* ``escrow``      :class:`EscrowLink`: where the escrow is, the agents' money objects; the
                  escrow of one job as its page shows it (funding, stakes, payments)
* ``buying``      :class:`BuyerDesk`: pay for a model once, wait for its key, decrypt it
* ``moneyform``   the wallet's transfer and approve forms → ledger arguments
"""

from califusion.web.app import Dashboard, create_app
from califusion.web.config import DashboardConfig
from califusion.web.local import LocalAgent
from califusion.web.security import SessionStore

__all__ = ["Dashboard", "DashboardConfig", "LocalAgent", "SessionStore", "create_app"]
