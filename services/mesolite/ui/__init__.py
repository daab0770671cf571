"""The web UIs of the master, Marathon and Chronos: server-rendered jinja2 pages, one Flask blueprint per service.

Pages read the same JSON the services' REST APIs answer (the master's ``/master/state`` shapes; Marathon's ``/v2``
and Chronos' ``/v1/scheduler`` through :class:`mesolite.ui.common.LocalApi`), so what an operator sees is what any
client sees. Everything ships inside the package (templates, CSS, a little JavaScript): no CDN, no build step, and
jinja2's autoescaping is on for every page, so ids and names coming from users are always shown as text.
"""
