"""deltaprop playground: backpropagation live in a local web page.

``deltaprop playground`` serves :func:`deltaprop.playground.server.create_app`; each page gets
a :class:`deltaprop.playground.session.Session` (the run, testable without the web layer)
and talks to it over one WebSocket (the protocol is in :mod:`deltaprop.playground.server`).
"""
