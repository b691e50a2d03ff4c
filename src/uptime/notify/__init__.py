"""Notifications of incidents (issue 17, item 4): channels, an outbox, a deliverer.

* :mod:`uptime.notify.channels` — channels stored in MongoDB (``notification_channels``):
  an Apprise URL, or an ``http(s)://`` URL for the generic webhook signed the Standard
  Webhooks way; URL checks (hostile schemes, internal addresses) and redaction.
* :mod:`uptime.notify.outbox` — :func:`~uptime.notify.outbox.enqueue` writes one outbox
  document per (event, channel), inside the caller's transaction when given a session;
  :class:`~uptime.notify.outbox.Deliverer` claims due documents with a lease, sends them
  and records every attempt, with exponential backoff for at least 24 h.
* :mod:`uptime.notify.delivery` — one attempt to deliver one event to one channel
  (:func:`~uptime.notify.delivery.send`: the webhook's POST, or Apprise), and the test send.
* :mod:`uptime.notify.maintenance` — maintenance windows (one-off UTC, or weekly in each
  store's local time) and :func:`~uptime.notify.maintenance.in_maintenance`, which the
  incident detector calls (``pipelines/maintenance.v1.json``).
* :mod:`uptime.cli.notify` — ``uptime-monitor channels add|list|test|remove|mute|unmute|
  deliveries`` and ``uptime-monitor maintenance add|list|remove``; :mod:`uptime.web.routes.notify`
  — ``/channels``, ``/notifications`` and ``/maintenance``.

This package imports ``uptime.platform`` only.
"""
